"""The audit trail's entity id is as long as the name it may carry: an institution user's
`institution/username` (up to 120 characters, as `actor`), which the trail names when the user is added,
its password set or the user disabled.

Widening a varchar is a change of the catalogue alone: no row is rewritten, and no hash changes.

Revision ID: 0013_audit_entity_id
Revises: 0012_outbox_finished
Create Date: 2026-12-05 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_audit_entity_id"
down_revision: str | None = "0012_outbox_finished"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("audit_log", "entity_id", type_=sa.String(120), existing_type=sa.String(80))


def downgrade() -> None:
    # (refused while a row holds a longer id: the trail is append-only)
    op.alter_column("audit_log", "entity_id", type_=sa.String(80), existing_type=sa.String(120))
