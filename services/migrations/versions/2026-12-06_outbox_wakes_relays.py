"""Relays woken by the database: a statement-level trigger on `outbox` notifies the relays' channel with the
delivery channels a statement queued, as the application's own `pg_notify` did after each insert. One round
trip less for every action that queues a message (an issue among them, docs/benchmarks.md), and no insert
that forgets to wake them. Delivered when (and only if) the transaction commits, as before; the payload is
the same, so a process of the release before, which still notifies itself during a rolling upgrade, sends
the very notification the trigger does (PostgreSQL delivers a transaction's identical ones once).

Revision ID: 0025_outbox_wakes_relays
Revises: 0024_audit_chained_at_commit
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_outbox_wakes_relays"
down_revision: str | None = "0024_audit_chained_at_commit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION outbox_wake_relays() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            queued text;
        BEGIN
            SELECT string_agg(DISTINCT channel, ',' ORDER BY channel) INTO queued FROM queued_rows;
            IF queued IS NOT NULL THEN
                PERFORM pg_notify('stopline_outbox', queued);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER outbox_wakes_relays AFTER INSERT ON outbox
        REFERENCING NEW TABLE AS queued_rows
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake_relays()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_wakes_relays ON outbox")
    op.execute("DROP FUNCTION outbox_wake_relays()")
