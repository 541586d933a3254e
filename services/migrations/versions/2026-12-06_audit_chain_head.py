"""The audit chain's lock and head in one statement: `audit_chain_head_locked(key)` takes the chain's advisory
lock and returns the hash of the chain's last entry as committed once the lock is held. Every append holds the
lock to its commit, so each statement made under it is a round trip that every other append waits for; this
saves one of them.

A PL/pgSQL function, VOLATILE: under READ COMMITTED (Stopline's level) its query takes a snapshot of its own,
after the lock is granted, and so sees the entries of the append that held the lock before (a single SQL
statement would read the head as of its start, before its wait for the lock). Under a stricter level the
transaction's snapshot predates the lock and the chain would fork: the function refuses to run there.

Revision ID: 0023_audit_chain_head
Revises: 0022_flow_transfer_victim
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_audit_chain_head"
down_revision: str | None = "0022_flow_transfer_victim"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION audit_chain_head_locked(chain_lock bigint) RETURNS text
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'the audit chain is appended to under READ COMMITTED only';
            END IF;
            PERFORM pg_advisory_xact_lock(chain_lock);
            RETURN (SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_chain_head_locked(bigint)")
