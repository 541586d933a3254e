"""The ingest ledger keeps a digest of each accepted event's content, so that an event id used again for
other content is refused (409 over HTTPS, the dead-letter topic from Kafka) instead of being taken for a
repeat and its new content dropped.

One nullable column, no backfill: the content of events accepted before is not kept anywhere, so their
rows keep a null digest and are compared by id only (a repeat of such an id is a duplicate, whatever its
content), as before, until the retention purge forgets them.

Revision ID: 0013_ingest_content_digest
Revises: 0007_ingest_claims
Create Date: 2026-12-05 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_ingest_content_digest"
down_revision: str | None = "0007_ingest_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ingested_events",
        sa.Column(
            "content_digest",
            sa.LargeBinary(),
            nullable=True,
            comment="sha-256 of the event's canonical content; null on older rows (compared by id only)",
        ),
    )


def downgrade() -> None:
    op.drop_column("ingested_events", "content_digest")
