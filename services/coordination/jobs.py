"""The periodic jobs that run beside the deadline scheduler, wherever it runs (the API with
`STOPLINE_COORDINATION_SCHEDULER` on, or `services.coordination.worker`): the gauges the dashboard and the
alert rules read (outbox backlog, audit verification) and the housekeeping of the outbox and of officers'
console sessions. One set per process that runs the scheduler; each is safe to run on several at once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination.audit.check import AuditCheck
from services.coordination.dashboard.gauges import DashboardGauges
from services.coordination.delivery.backlog import OutboxBacklog
from services.coordination.delivery.purge import OutboxPurge
from services.coordination.officers.sessions import SessionPurge
from services.coordination.settings import CoordinationSettings
from services.kit.periodic import PeriodicJob


def with_the_scheduler(
    sessions: async_sessionmaker[AsyncSession], settings: CoordinationSettings
) -> dict[str, PeriodicJob]:
    return {
        "dashboard_gauges": DashboardGauges(sessions, interval_s=settings.dashboard_interval_s),
        "outbox_backlog": OutboxBacklog(sessions, interval_s=settings.dashboard_interval_s),
        "audit_check": AuditCheck(
            sessions,
            interval_s=settings.audit_tail_interval_s,
            whole_interval_s=settings.audit_verify_interval_s,
        ),
        "outbox_purge": OutboxPurge(sessions, retention_days=settings.outbox_retention_days),
        "officer_session_purge": SessionPurge(sessions, retention_days=0),
    }
