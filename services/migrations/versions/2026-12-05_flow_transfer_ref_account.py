"""A transfer out of a queried account is named in its case by its institution, the account and the bank's
transfer id (`<institution>:<account>:<transfer id>`), no longer by the institution and transfer id alone:
a bank's transfer ids need not be unique across its accounts, and the second account's transfer of the same
id was taken for the first's and dropped.

The rows recorded before are renamed to the new form (their source account is the transfer's
`from_account_id`): a later query of the same account, listing the same transfers again, finds them and
records nothing twice. A transfer dropped before this revision is not restored here; its answer is kept in
`instruction_responses.query_result`. (A varchar widened is a change of the catalogue only, no rewrite.)

Revision ID: 0014_flow_transfer_ref_account
Revises: 0013_audit_entity_id
Create Date: 2026-12-05 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_flow_transfer_ref_account"
down_revision: str | None = "0013_audit_entity_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Institution ids and accounts have no `%` or `_`: LIKE patterns of them match literally. Every old ref is
# renamed, even one whose bank transfer id happens to start with `<account>:` (the revision runs once).
RENAME = """
update flow_transfers t
   set ref = a.institution_id || ':' || a.account || ':' || substr(t.ref, length(a.institution_id) + 2)
  from flow_accounts a
 where a.id = t.from_account_id
   and t.ref like a.institution_id || ':%'
"""
# Back to the old form where it names one transfer of the case; the others (two accounts' transfers of the
# same id, which the old form cannot tell apart) keep the new one.
RENAME_BACK = """
with back as (
    select t.id, t.case_id,
           a.institution_id || ':' || substr(t.ref, length(a.institution_id) + length(a.account) + 3) as old
      from flow_transfers t join flow_accounts a on a.id = t.from_account_id
     where t.ref like a.institution_id || ':' || a.account || ':%'
), first as (
    select distinct on (case_id, old) id, case_id, old from back order by case_id, old, id
)
update flow_transfers t
   set ref = first.old
  from first
 where t.id = first.id
   and not exists (select 1 from flow_transfers o where o.case_id = first.case_id and o.ref = first.old)
"""


def upgrade() -> None:
    op.alter_column(
        "flow_transfers",
        "ref",
        existing_type=sa.String(length=120),
        type_=sa.String(length=140),
        existing_nullable=False,
        comment="institution:account:transfer id, or report:n",
        existing_comment="institution:transfer id, or report:n",
    )
    op.execute(RENAME)


def downgrade() -> None:
    # The column stays 140 wide: the refs left in the new form may not fit 120.
    op.execute(RENAME_BACK)
    op.alter_column(
        "flow_transfers",
        "ref",
        existing_type=sa.String(length=140),
        existing_nullable=False,
        comment="institution:transfer id, or report:n",
        existing_comment="institution:account:transfer id, or report:n",
    )
