"""Webhook signing secrets sealed at rest (AES-256-GCM under STOPLINE_SECRETS_KEY), with room for the
previous secret while a rotation overlaps. Secrets kept in clear until now are sealed here, with the key
of the environment the migration runs in (the same the services will read).

Revision ID: 0007_webhook_secrets_sealed
Revises: 0006_decision_note
Create Date: 2026-11-30 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.institutions.delivery import seal_secret, secrets_sealer

revision: str = "0007_webhook_secrets_sealed"
down_revision: str | None = "0006_decision_note"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("institutions", sa.Column("webhook_secret_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("institutions", sa.Column("webhook_previous_sealed", sa.LargeBinary(), nullable=True))
    op.add_column(
        "institutions", sa.Column("webhook_previous_until", sa.DateTime(timezone=True), nullable=True)
    )
    conn = op.get_bind()
    sealer = secrets_sealer()
    rows = conn.execute(
        sa.text("select id, webhook_secret from institutions where webhook_secret is not null")
    )
    for ident, secret in rows.fetchall():
        conn.execute(
            sa.text("update institutions set webhook_secret_sealed = :sealed where id = :id"),
            {"sealed": seal_secret(sealer, ident, secret), "id": ident},
        )
    op.drop_column("institutions", "webhook_secret")


def downgrade() -> None:
    # Sealed secrets are not unsealed into clear text: institutions with a webhook get a new secret.
    op.add_column("institutions", sa.Column("webhook_secret", sa.String(length=100), nullable=True))
    op.drop_column("institutions", "webhook_previous_until")
    op.drop_column("institutions", "webhook_previous_sealed")
    op.drop_column("institutions", "webhook_secret_sealed")
