"""Ingest claims an event id before producing it and settles the claim once Kafka has answered: a claim
still in doubt carries the end of its lease (`pending_until`); a settled one, none.

On the institutions branch (the ledger refers to institutions): one nullable column and a partial index
of the claims in doubt, which the sweeper reads.

Revision ID: 0007_ingest_claims
Revises: 0005_institution_users
Create Date: 2026-12-01 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ingest_claims"
down_revision: str | None = "0005_institution_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ingested_events",
        sa.Column(
            "pending_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="a claim in doubt until Kafka answers: the end of its lease; null once settled",
        ),
    )
    op.create_index(
        "ix_ingested_events_pending",
        "ingested_events",
        ["pending_until"],
        unique=False,
        postgresql_where=sa.text("pending_until is not null"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_ingested_events_pending",
        table_name="ingested_events",
        postgresql_where=sa.text("pending_until is not null"),
    )
    op.drop_column("ingested_events", "pending_until")
