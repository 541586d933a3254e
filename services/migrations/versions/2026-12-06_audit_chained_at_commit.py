"""The audit chain extended by the database at commit: an action's entries are written to `audit_pending`
with the transaction's other rows, and a deferred trigger moves each into `audit_log`, linked to the chain's
head, as the transaction commits. The chain's lock is taken there, inside the commit, and released when the
commit is done: no append holds it while its client does anything else (the three round trips through a busy
client that every other append waited for, docs/benchmarks.md).

The hash is the one `services.kit.audit.service.entry_hash` computes: SHA-256 over the canonical JSON of the
entry, whose last key is the previous entry's hash. The application writes that JSON up to the previous
hash (`canonical`); the trigger appends the head it finds and `"}`, and hashes. Entries in `audit_log` keep
their ids in chain order (assigned under the lock), as before.

Under READ COMMITTED (Stopline's level) each statement of the trigger takes its own snapshot, so the head it
reads once the lock is granted is the entry the previous holder committed; under a stricter level it would
read the transaction's older snapshot and fork the chain: it refuses to run there (as 0023's function does).

Revision ID: 0024_audit_chained_at_commit
Revises: 0023_audit_chain_head
Create Date: 2026-12-06 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024_audit_chained_at_commit"
down_revision: str | None = "0023_audit_chain_head"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_unit", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity_type", sa.String(length=30), nullable=False),
        sa.Column("entity_id", sa.String(length=120), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_pending")),
        prefixes=["UNLOGGED"],  # empty whenever no transaction is open: nothing of it to log or recover
    )
    # 1459724497 = 0x5701A0D1, the chain's advisory lock (services.kit.audit.repository.CHAIN_LOCK)
    op.execute(
        """
        CREATE FUNCTION audit_chain_pending() RETURNS trigger
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            head text;
            entry audit_pending;
        BEGIN
            -- The transaction's first firing chains all its entries; the others find theirs gone.
            IF NOT EXISTS (SELECT 1 FROM audit_pending WHERE id = NEW.id) THEN
                RETURN NULL;
            END IF;
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'the audit chain is appended to under READ COMMITTED only';
            END IF;
            PERFORM pg_advisory_xact_lock(1459724497);
            head := coalesce((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), repeat('0', 64));
            -- What is chained is what is taken out, in one statement. Only this transaction's rows are there
            -- to see (every other's are gone when it commits), from its first on (the first fired): an index
            -- range, not a scan of the rows others left dead.
            FOR entry IN
                WITH moved AS (DELETE FROM audit_pending WHERE id >= NEW.id RETURNING *)
                SELECT * FROM moved ORDER BY id
            LOOP
                INSERT INTO audit_log (
                    at, actor, actor_role, actor_unit, action, entity_type, entity_id, case_id,
                    legal_basis, before, after, prev_hash, hash
                )
                VALUES (
                    entry.at, entry.actor, entry.actor_role, entry.actor_unit, entry.action,
                    entry.entity_type, entry.entity_id, entry.case_id, entry.legal_basis, entry.before,
                    entry.after, head,
                    encode(sha256(convert_to(entry.canonical || head || '"}', 'UTF8')), 'hex')
                )
                RETURNING hash INTO head;
            END LOOP;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER audit_pending_chained AFTER INSERT ON audit_pending
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_chain_pending()
        """
    )
    # 0023's function stays: during a rolling upgrade, the processes of the release before still call it,
    # and take the same lock, so their appends and these take turns (a later revision drops it).


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_pending_chained ON audit_pending")
    op.execute("DROP FUNCTION audit_chain_pending()")
    op.drop_table("audit_pending")
