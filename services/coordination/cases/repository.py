"""SQL of cases, their linked alerts and notes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts.models import AlertRow
from services.coordination.cases.models import Case, CaseAlert, CaseNote
from services.kit.errors import Conflict


async def add(session: AsyncSession, case: Case) -> None:
    session.add(case)
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_cases_case_number" in str(exc.orig):
            raise Conflict(f"case number {case.case_number} is taken") from exc
        raise


# A case's row lock: "update" for a close or a change of the case; "share" for work that must not cross a
# close but may run beside other such work (issuing instructions); "key_share" for work that must not cross
# a change of the case but may run beside the work that shares it (a query's answer feeding the money tree).
#
# The order of the locks: a case's row before any of its instructions' rows (an issue, an approval, and an
# answer that checks the case, `answers._locked`, each take it first), and a follow-up (an extension, release
# or return: `parent_id`) before the hold it acts on (an answer to an extension or release holds it, then
# renews or releases its stop-payment or freeze); a case's stop-payments and freezes of one account by id
# (an answer that may put one in force takes them all first, `answers._lock`: it converts the stop-payment
# when the other is in force). An approval holding the case while it waits for the hold,
# and the hold's late answer holding the hold while it waits for the case, would each wait for the other:
# PostgreSQL aborts one (a 503, to retry). Only the answers that may put a failed
# instruction in effect lock the case; the instructions' timed jobs and the relay lock instructions only.
# Several at once (a relay giving up or marking delivered a batch takes all its instructions first: two
# relays locking the same two one by one in other orders would deadlock) are taken in that order too, by
# `instructions.repository.get_many_for_update` alone: the follow-ups before the holds they act on, then by
# id. In plain id order a batch with a hold and its extension could hold the hold and wait for the extension
# that an answer to it holds while it waits for the hold (to renew it); a batch with a stop-payment and a
# freeze of an account, crossing an answer to one of them that took its own row first, likewise.
# An instruction's row comes before its outbox messages' rows: a withdrawal (dropping its unsent copies) and
# a relay giving a message up hold the instruction, then update the message; a relay marking messages sent
# takes their instructions first too (`delivery.relay.mark_delivered`). The other way round, the relay
# would hold a copy it marks sent while it waits for the instruction that a withdrawal holds while it waits
# for that copy (a deadlock).
# A case's row comes before its money tree's lock too: a citizen's report holds the case for update and
# takes the tree; a query's answer, holding the tree, made nodes whose foreign key waited for the case (a
# deadlock). So `money.repository.lock_tree` takes the case's row for key share first (it waits for a holder
# for update only, not for issues' and approvals' share), then the tree. A query's answer that feeds the tree
# takes its case before its instruction (`answers._locked`), as the other answers that lock a case do: for key
# share, or for update on a victim's account (the case's loss grows). Holding the query while it waited for
# the case for update, it would wait for an approval (or a citizen's report) holding the case while it waits
# for a hold that a relay's batch of the hold and the query holds while it waits for the query (a deadlock of
# three). Its key share does not conflict with issues' and approvals' share: they do not wait for it.
Lock = Literal["update", "share", "key_share"]


async def get(session: AsyncSession, case_id: uuid.UUID, *, lock: Lock | None = None) -> Case | None:
    """The case; locked, as it is now (a case already in the session is read again: what the lock waited
    for, e.g. a close, has changed it)."""
    stmt = select(Case).where(Case.id == case_id)
    if lock is not None:
        read, key_share = lock != "update", lock == "key_share"
        stmt = stmt.with_for_update(read=read, key_share=key_share).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, *, unit: str | None, status: str | None, before: datetime | None, limit: int
) -> list[Case]:
    stmt = select(Case)
    if unit is not None:
        stmt = stmt.where(Case.unit == unit)
    if status is not None:
        stmt = stmt.where(Case.status == status)
    if before is not None:
        stmt = stmt.where(Case.opened_at < before)
    stmt = stmt.order_by(Case.opened_at.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def alert(session: AsyncSession, alert_id: uuid.UUID) -> AlertRow | None:
    return await session.get(AlertRow, alert_id)


async def link_alert(session: AsyncSession, *, case_id: uuid.UUID, alert_id: uuid.UUID, by: str) -> bool:
    stmt = (
        insert(CaseAlert)
        .values(case_id=case_id, alert_id=alert_id, linked_by=by)
        .on_conflict_do_nothing()
        .returning(CaseAlert.alert_id)
    )
    return (await session.execute(stmt)).first() is not None


async def open_case_for_alerts(session: AsyncSession, alert_ids: list[uuid.UUID]) -> uuid.UUID | None:
    """The first opened case still open that one of these alerts is linked to."""
    if not alert_ids:
        return None
    stmt = (
        select(Case.id)
        .join(CaseAlert, CaseAlert.case_id == Case.id)
        .where(CaseAlert.alert_id.in_(alert_ids), Case.status == "open")
        .order_by(Case.opened_at)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_number(session: AsyncSession, case_number: str) -> uuid.UUID | None:
    return (
        await session.execute(select(Case.id).where(Case.case_number == case_number))
    ).scalar_one_or_none()


async def alert_ids(session: AsyncSession, case_id: uuid.UUID) -> list[uuid.UUID]:
    stmt = select(CaseAlert.alert_id).where(CaseAlert.case_id == case_id).order_by(CaseAlert.linked_at)
    return list((await session.execute(stmt)).scalars())


async def alert_payees(session: AsyncSession, case_id: uuid.UUID) -> list[tuple[str, str]]:
    """The payee accounts (institution, account) of the case's alerts."""
    stmt = (
        select(AlertRow.subject["payee_institution"].astext, AlertRow.subject["payee_account"].astext)
        .join(CaseAlert, CaseAlert.alert_id == AlertRow.id)
        .where(CaseAlert.case_id == case_id)
    )
    return [(i, a) for i, a in (await session.execute(stmt)).all() if i and a]


async def alert_payers(session: AsyncSession, case_id: uuid.UUID) -> list[tuple[str | None, str, str]]:
    """The accounts (phone, institution, account) the case's alerts about a payment were paid from, with
    the payer's phone where the alert names it: the victims' (an alert about a payment names the payer as
    its subject and the payee beside it; an alert about an account collecting money, the collecting
    account alone)."""
    subject = AlertRow.subject
    stmt = (
        select(subject["phone"].astext, subject["institution"].astext, subject["account"].astext)
        .join(CaseAlert, CaseAlert.alert_id == AlertRow.id)
        .where(CaseAlert.case_id == case_id, subject["payee_account"].astext.is_not(None))
    )
    return [(p, i, a) for p, i, a in (await session.execute(stmt)).all() if i and a]


async def add_note(session: AsyncSession, note: CaseNote) -> None:
    session.add(note)
    await session.flush()


async def notes(session: AsyncSession, case_id: uuid.UUID) -> list[CaseNote]:
    stmt = select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class LinkedCase:
    case_number: str
    status: str
    outcome: str | None


@dataclass(frozen=True)
class AlertWithCases:
    """An alert's model input and triage status, with the cases it is linked to; no personal data."""

    id: uuid.UUID
    typology: str
    status: str
    features: list[float] | None
    feature_set: str | None
    triggering_event_ids: list[str]
    event_time: datetime
    created_at: datetime
    cases: list[LinkedCase] = field(default_factory=list)


async def alerts_with_cases(
    session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None
) -> list[AlertWithCases]:
    """Alerts created in [since, until), oldest first, each with its linked cases (first closed first):
    what models.training.feedback turns into training labels. Subjects (phones, accounts) are not read."""
    stmt = (
        select(
            AlertRow.id,
            AlertRow.typology,
            AlertRow.status,
            AlertRow.features,
            AlertRow.feature_set,
            AlertRow.triggering_event_ids,
            AlertRow.event_time,
            AlertRow.created_at,
            Case.case_number,
            Case.status.label("case_status"),
            Case.outcome,
        )
        .outerjoin(CaseAlert, CaseAlert.alert_id == AlertRow.id)
        .outerjoin(Case, Case.id == CaseAlert.case_id)
        .order_by(AlertRow.created_at, AlertRow.id, Case.closed_at.asc().nulls_last(), Case.case_number)
    )
    if since is not None:
        stmt = stmt.where(AlertRow.created_at >= since)
    if until is not None:
        stmt = stmt.where(AlertRow.created_at < until)
    out: dict[uuid.UUID, AlertWithCases] = {}
    for r in await session.execute(stmt):
        alert = out.get(r.id)
        if alert is None:
            alert = out[r.id] = AlertWithCases(
                r.id,
                r.typology,
                r.status,
                r.features,
                r.feature_set,
                r.triggering_event_ids,
                r.event_time,
                r.created_at,
            )
        if r.case_number is not None:
            alert.cases.append(LinkedCase(r.case_number, r.case_status, r.outcome))
    return list(out.values())
