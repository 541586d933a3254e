"""The outbox records which Kafka producer last published a message (its transactional id): a relay that
takes the message over fences that producer before it reads the topic back, so a publication still in
flight can no longer land after the look.

Revision ID: 0010_outbox_publisher
Revises: 0007_webhook_secrets_sealed
Create Date: 2026-12-02 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_outbox_publisher"
down_revision: str | None = "0007_webhook_secrets_sealed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column(
            "publisher",
            sa.String(200),
            nullable=True,
            comment="kafka: transactional id of the producer of the last attempt",
        ),
    )


def downgrade() -> None:
    op.drop_column("outbox", "publisher")
