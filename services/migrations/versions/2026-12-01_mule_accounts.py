"""The blocklist lists mule accounts too: an entry is a number or an account (institution and account),
with the same review, expiry and appeal; a freeze executed on an account is a source of its own.
blocklist_receipts: the ids of coordination's fraud-receivers messages already taken.

On the warnings and blocklist branch: blocklist_entries only. Existing entries are numbers.

Revision ID: 0008_mule_accounts
Revises: 0003_warnings
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_mule_accounts"
down_revision: str | None = "0003_warnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "blocklist_entries"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("kind", sa.String(length=8), server_default="number", nullable=False))
    op.add_column(
        TABLE, sa.Column("institution", sa.String(length=40), nullable=True, comment="of a listed account")
    )
    op.add_column(TABLE, sa.Column("account", sa.String(length=34), nullable=True))
    op.alter_column(TABLE, "number", existing_type=sa.String(length=20), nullable=True)
    op.drop_constraint(op.f("ck_blocklist_entries_source"), TABLE, type_="check")
    op.create_check_constraint(
        op.f("ck_blocklist_entries_source"),
        TABLE,
        "source in ('case', 'telecom_report', 'operator', 'freeze')",
    )
    op.create_check_constraint(op.f("ck_blocklist_entries_kind"), TABLE, "kind in ('number', 'account')")
    op.create_check_constraint(
        op.f("ck_blocklist_entries_subject"),
        TABLE,
        "(kind = 'number') = (number is not null) "
        "and (kind = 'account') = (institution is not null and account is not null)",
    )
    op.create_index(
        "uq_blocklist_entries_live_account",
        TABLE,
        ["institution", "account"],
        unique=True,
        postgresql_where=sa.text("status in ('proposed', 'active')"),
    )

    op.create_table(
        "blocklist_receipts",
        sa.Column("message_id", sa.String(length=80), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_blocklist_receipts")),
    )


def downgrade() -> None:
    op.drop_table("blocklist_receipts")
    op.execute(
        "delete from blocklist_appeals where entry_id in "
        "(select id from blocklist_entries where kind = 'account')"
    )
    op.execute("delete from blocklist_entries where kind = 'account'")
    op.drop_index("uq_blocklist_entries_live_account", table_name=TABLE)
    op.drop_constraint(op.f("ck_blocklist_entries_subject"), TABLE, type_="check")
    op.drop_constraint(op.f("ck_blocklist_entries_kind"), TABLE, type_="check")
    op.drop_constraint(op.f("ck_blocklist_entries_source"), TABLE, type_="check")
    op.create_check_constraint(
        op.f("ck_blocklist_entries_source"), TABLE, "source in ('case', 'telecom_report', 'operator')"
    )
    op.alter_column(TABLE, "number", existing_type=sa.String(length=20), nullable=False)
    op.drop_column(TABLE, "account")
    op.drop_column(TABLE, "institution")
    op.drop_column(TABLE, "kind")
