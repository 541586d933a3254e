"""Warning rules: who is warned for which alert (one warning per scam episode and person, rate
limited), and what the person's answer does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.public import ReportSource
from services.kit.audit import service as audit
from services.kit.auth import Officer
from services.kit.db import after_commit
from services.kit.errors import Conflict, Forbidden, NotFound
from services.kit.logging import pseudonym
from services.kit.sealing import Sealer
from services.notifier import metrics
from services.notifier.delivery import service as delivery
from services.notifier.desk import service as desk
from services.notifier.settings import NotifierSettings
from services.notifier.warnings import repository, tokens
from services.notifier.warnings.models import CitizenWarning
from streams.schemas.alerts import Alert

Answer = Literal["safe", "defrauded"]
OUTCOME_OF_ANSWER = {"safe": "dissuaded", "defrauded": "reached_too_late"}
CITIZEN = audit.Actor("citizen", "citizen", "public")  # the person, through their one-time link


class TokenUsed(Conflict):
    code = "token_used"


class TokenExpired(Conflict):
    code = "token_expired"


class CaseBridge(Protocol):
    """Opens or updates the coordination case of a person who says they are being defrauded (`source`:
    their answer, the desk's word, or a payment joining their warning after it), in the caller's
    transaction; drafts a stop on each payee that has none."""

    async def defrauded(
        self, session: AsyncSession, *, warning: CitizenWarning, actor: str, source: ReportSource
    ) -> uuid.UUID | None: ...


def wants_warning(alert: Alert) -> bool:
    return "warn_citizen" in alert.recommended_actions and alert.subject.phone is not None


def episode_of(alert: Alert) -> str:
    """The scam episode: the first triggering event (the scam call); every transfer it leads to shares it."""
    return f"{alert.typology}|{alert.triggering_event_ids[0]}"


def payments_of(alert: Alert) -> list[dict[str, Any]]:
    """The alert's payments; one that lists none (an older scorer's) counts as one: its newest trigger, for
    its amount at risk, to its payee."""
    if alert.payments:
        return [p.model_dump() for p in alert.payments]
    if alert.amount_at_risk is None:
        return []
    return [
        {
            "event_ref": alert.triggering_event_ids[-1],
            "amount": Decimal(alert.amount_at_risk),
            "occurred_at": alert.event_time,
            "payee_account": alert.subject.payee_account,
            "payee_institution": alert.subject.payee_institution,
        }
    ]


@dataclass
class Received:
    created: list[uuid.UUID]
    channels: int


async def receive(
    session: AsyncSession,
    *,
    alerts: Sequence[Alert],
    settings: NotifierSettings,
    sealer: Sealer,
    bridge: CaseBridge,
    now: datetime,
) -> Received:
    """Turn alerts into warnings and queued messages; redelivered alerts change nothing."""
    out = Received(created=[], channels=0)
    known = await repository.known_alerts(session, [a.alert_id for a in alerts])
    for alert in alerts:
        if alert.alert_id in known:
            after_commit(session, metrics.DECISIONS.labels("duplicate").inc)
        elif wants_warning(alert):
            known[alert.alert_id] = await _one(session, alert, settings, sealer, now, out)
        else:
            known[alert.alert_id] = None
            after_commit(session, metrics.DECISIONS.labels("no_warning").inc)
        # An alert over the desk's threshold has the person called back: the warning's first, or one that
        # joined it (a revision: the episode's next payment; the same episode; the rate limit's window).
        warning_id = known[alert.alert_id]
        # A redelivered alert adds no payments (they are kept already), so it neither locks nor rewrites.
        if warning_id is not None and await repository.add_payments(
            session, warning_id=warning_id, payments=payments_of(alert)
        ):
            await repository.grow(session, warning_id)
            await _draft_on_new_payees(session, warning_id, bridge)
        if warning_id is not None and alert.typology == "call_then_transfer":
            # Once call_then_transfer, an alert stays so (a late call's revision may make it so).
            await repository.called(session, warning_id)
        if warning_id is not None and alert.score >= settings.desk_score:
            await desk.high_risk(session, warning_id=warning_id, priority=alert.score, reopen=False)
    return out


async def _draft_on_new_payees(session: AsyncSession, warning_id: uuid.UUID, bridge: CaseBridge) -> None:
    """Money that left after the person said they are being defrauded (answering, or to the desk; a case
    opened or noted by either says so too) gets its stop drafted now: nobody else would ask for it. The
    desk's word is kept apart from the answer: with nothing at risk yet there was no case to open. Locked
    by `grow`, the warning cannot be answered or closed meanwhile; an answer or close that came first is
    seen, one that comes after drafts on these payments itself."""
    warning = await repository.get(session, warning_id, for_update=True)
    assert warning is not None
    said = warning.answer == "defrauded" or warning.desk_defrauded_at is not None
    if said or warning.case_id is not None:
        case_id = await bridge.defrauded(session, warning=warning, actor="system", source="payment")
        warning.case_id = case_id or warning.case_id
        await session.flush()


async def _one(
    session: AsyncSession,
    alert: Alert,
    settings: NotifierSettings,
    sealer: Sealer,
    now: datetime,
    out: Received,
) -> uuid.UUID:
    """The warning the alert made or joined."""
    phone = alert.subject.phone
    assert phone is not None
    person, episode = pseudonym(phone), episode_of(alert)
    existing = await repository.by_episode(session, episode=episode, person=person)
    joined = "episode"
    if existing is None and settings.rate_limit_s > 0:
        # The rate limit spares the person a flood of messages while a warning waits for them; once they
        # answered or the desk closed the call, a new episode is news to tell them, and a scammer who had
        # them tap "I am safe" must not buy silence for the rest of the window.
        existing = await repository.latest_open_since(
            session, person=person, since=now - timedelta(seconds=settings.rate_limit_s)
        )
        joined = "rate_limit"
    if existing is not None:
        await repository.link_alert(session, alert_id=alert.alert_id, warning_id=existing.id, joined=joined)
        after_commit(
            session, metrics.DECISIONS.labels("episode" if joined == "episode" else "rate_limited").inc
        )
        return existing.id
    contact = await repository.contact(session, phone)
    token, token_sha256 = tokens.new_token()
    values = {
        "id": uuid.uuid4(),
        "person": person,
        "episode": episode,
        "phone": phone,
        "language": contact.language if contact else settings.default_language,
        "typology": alert.typology,
        "score": alert.score,
        "amount_at_risk": Decimal(alert.amount_at_risk) if alert.amount_at_risk else None,
        "account": alert.subject.account,
        "institution": alert.subject.institution,
        "payee_account": alert.subject.payee_account,
        "payee_institution": alert.subject.payee_institution,
        "first_alert_id": alert.alert_id,
        "event_time": alert.event_time,
        "status": "open",
        "token_sha256": token_sha256,
        "token_expires_at": now + timedelta(seconds=settings.token_ttl_s),
        "created_at": now,
    }
    if not await repository.insert_warning(session, values):
        # Another consumer instance warned this episode a moment ago: the constraint kept it to one.
        winner = await repository.by_episode(session, episode=episode, person=person)
        assert winner is not None
        await repository.link_alert(session, alert_id=alert.alert_id, warning_id=winner.id, joined="episode")
        after_commit(session, metrics.DECISIONS.labels("episode").inc)
        return winner.id
    warning = CitizenWarning(**values)
    await repository.link_alert(session, alert_id=alert.alert_id, warning_id=warning.id, joined="created")
    channels = await delivery.enqueue(
        session,
        warning=warning,
        token=token,
        push_id=contact.push_id if contact else None,
        settings=settings,
        sealer=sealer,
        now=now,
    )
    if not channels:  # (a risky one's call back is `receive`'s, as for every alert)
        await desk.open_task(session, warning_id=warning.id, reason="undelivered", priority=alert.score)
    after_commit(session, metrics.DECISIONS.labels("created").inc)
    out.created.append(warning.id)
    out.channels += len(channels)
    return warning.id


async def answer(
    session: AsyncSession, *, token: str, answer: Answer, bridge: CaseBridge, now: datetime
) -> CitizenWarning:
    """Record the person's answer once; but "safe" may be followed by one "defrauded" (a mis-tap, or a
    scammer's coaching undone), never the reverse. An unknown token, a used one and an expired one are
    refused alike in what they reveal: nothing about whom the token was for."""
    warning = await repository.by_token(session, tokens.digest(token))
    if warning is None:
        metrics.TOKENS_REFUSED.labels("unknown").inc()
        raise NotFound("this link is not valid")
    if warning.token_used_at is not None and (warning.answer, answer) != ("safe", "defrauded"):
        metrics.TOKENS_REFUSED.labels("used").inc()
        raise TokenUsed("this link has already been used")
    if warning.token_expires_at <= now:
        metrics.TOKENS_REFUSED.labels("expired").inc()
        raise TokenExpired("this link has expired")
    before = _snapshot(warning)
    after_commit(
        session, metrics.ANSWERS.labels(f"{warning.answer}_then_{answer}" if warning.answer else answer).inc
    )
    warning.token_used_at = warning.token_used_at or now
    warning.answer = answer
    warning.answered_at = now
    warning.status = "answered"
    await _set_outcome(session, warning, OUTCOME_OF_ANSWER[answer], actor=CITIZEN, before=before)
    if answer == "defrauded":
        warning.case_id = await bridge.defrauded(session, warning=warning, actor="citizen", source="answer")
    await session.flush()
    return warning


def _snapshot(warning: CitizenWarning) -> dict[str, str | None]:
    return {"status": warning.status, "answer": warning.answer, "outcome": warning.outcome}


async def _set_outcome(
    session: AsyncSession,
    warning: CitizenWarning,
    outcome: str,
    *,
    actor: audit.Actor,
    before: dict[str, str | None],
) -> None:
    """The first outcome stands (a later desk call does not rewrite what the person told us), except that
    money gone ("reached_too_late", from the person or the desk) replaces a "dissuaded" or "not_reached":
    the summary must not count a defrauded person as saved. A replaced outcome is audited."""
    if warning.outcome is not None and (outcome != "reached_too_late" or warning.outcome == outcome):
        return
    replaced = warning.outcome is not None
    after_commit(
        session, metrics.OUTCOMES.labels(f"{warning.outcome}_then_{outcome}" if replaced else outcome).inc
    )
    warning.outcome = outcome
    if replaced:
        await audit.record(
            session,
            actor=actor,
            action="warning.outcome_replaced",
            entity_type="citizen_warning",
            entity_id=warning.id,
            legal_basis=f"citizen warning {warning.id}",
            before=before,
            after=_snapshot(warning),
        )


async def close_by_desk(
    session: AsyncSession,
    *,
    warning_id: uuid.UUID,
    outcome: str,
    defrauded: bool,
    officer: Officer,
    bridge: CaseBridge,
    now: datetime,
) -> CitizenWarning:
    warning = await repository.get(session, warning_id, for_update=True)
    if warning is None:
        raise NotFound(f"no warning {warning_id}")
    before = _snapshot(warning)
    warning.status = "closed"
    await _set_outcome(session, warning, outcome, actor=audit.Actor.of(officer), before=before)
    if defrauded:  # also with a case: the desk's word is noted, and a payee without a stop gets one
        warning.desk_defrauded_at = warning.desk_defrauded_at or now
        case_id = await bridge.defrauded(session, warning=warning, actor=officer.subject, source="desk")
        warning.case_id = case_id or warning.case_id
    await session.flush()
    return warning


async def set_contact(
    session: AsyncSession, *, phone: str, language: str, push_id: str | None, by: str, now: datetime
) -> None:
    """Only the subscriber's operator sets the push id and language (they route the warnings); the first
    operator to report a number owns it until it releases it (a port-out)."""
    if not await repository.upsert_contact(
        session, phone=phone, language=language, push_id=push_id, by=by, at=now
    ):
        raise Forbidden("the number is another operator's subscriber; it must release it first (port-out)")


async def release_contact(session: AsyncSession, *, phone: str, by: str) -> None:
    """A port-out: the operator gives the number up; its contact is forgotten."""
    if not await repository.release_contact(session, phone=phone, by=by):
        raise NotFound("no contact of this number reported by you")
