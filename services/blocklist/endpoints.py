"""Routes of the blocklist: telecom reports and sync, banks' sync of mule accounts (API keys), officers'
proposals, review, renewals, appeals."""

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.blocklist import repository, service
from services.blocklist.models import Entry
from services.blocklist.schemas import (
    AccountProposalIn,
    AccountSyncPage,
    AppealDecision,
    AppealIn,
    AppealRead,
    EntryPage,
    EntryRead,
    ProposalIn,
    RenewalIn,
    RenewalRead,
    ReportIn,
    ReportReceipt,
    Review,
    SyncPage,
)
from services.blocklist.settings import BlocklistSettings
from services.institutions.credentials import Caller
from services.kit import pages
from services.kit.audit.service import Actor
from services.kit.auth import Officer, require_role
from services.kit.errors import Forbidden

SessionDep = Callable[[], AsyncIterator[AsyncSession]]

# From 0 the page holds only what is listed now: what expired or was removed before is not in it, so a
# reader that merged it into its old list would keep blocking those.
SINCE = (
    "the `version` of your last sync: every change after it (listings, expiries, removals). 0: a snapshot"
    " of what is listed now (no expiries or removals), which replaces your list rather than merging into it"
)
JOINED = "the number or account has a live entry (proposed or listed): the proposal joined it, on the record"
UNKNOWN_CURSOR = (
    "`since` is above the current version (this server never issued it): sync again from `since=0`"
)


def _telecom(caller: Caller) -> Caller:
    if caller.kind != "telecom":
        raise Forbidden("the blocklist is for telecom operators")
    return caller


def _account_holder(caller: Caller) -> Caller:
    if caller.kind not in service.ACCOUNT_HOLDERS:
        raise Forbidden("the mule accounts are for banks and payment providers")
    return caller


def router(
    session_dep: SessionDep,
    officer_dep: Callable[..., Coroutine[Any, Any, Officer]],
    institution_dep: Callable[..., Coroutine[Any, Any, Caller]],
    settings: BlocklistSettings,
) -> APIRouter:
    api = APIRouter(prefix="/v1/blocklist", tags=["blocklist"])
    Session = Annotated[AsyncSession, Depends(session_dep, scope="function")]
    Who = Annotated[Officer, Depends(officer_dep)]
    Institution = Annotated[Caller, Depends(institution_dep)]

    @api.get(
        "",
        response_model=SyncPage,
        responses={409: {"description": UNKNOWN_CURSOR}},
        summary="Incremental sync for telecoms (ETag / version)",
    )
    async def sync(
        session: Session,
        caller: Institution,
        response: Response,
        since: Annotated[int, Query(ge=0, description=SINCE)] = 0,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> SyncPage | Response:
        _telecom(caller)
        page = await _page(session, "number", since, settings.sync_page, if_none_match, response)
        return page if isinstance(page, Response) else SyncPage.model_validate(page)

    @api.get(
        "/accounts",
        response_model=AccountSyncPage,
        responses={409: {"description": UNKNOWN_CURSOR}},
        summary="Incremental sync of mule accounts for banks and payment providers (ETag / version)",
    )
    async def sync_accounts(
        session: Session,
        caller: Institution,
        response: Response,
        since: Annotated[int, Query(ge=0, description=SINCE)] = 0,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> AccountSyncPage | Response:
        _account_holder(caller)
        page = await _page(session, "account", since, settings.sync_page, if_none_match, response)
        return page if isinstance(page, Response) else AccountSyncPage.model_validate(page)

    @api.post(
        "/accounts",
        response_model=EntryRead,
        status_code=201,
        responses={200: {"description": JOINED}},
        summary="A supervisor lists a mule account (reviewed by a second officer)",
    )
    async def propose_account(
        body: AccountProposalIn, session: Session, who: Who, response: Response
    ) -> EntryRead:
        require_role(who, "supervisor")
        entry, joined = await service.propose_account(
            session,
            institution=body.institution,
            account=body.account,
            source="operator",
            reason=body.reason,
            case_id=body.case_id,
            actor=Actor.of(who),
            now=datetime.now(UTC),
        )
        return _proposed(entry, joined, response)

    @api.post(
        "/reports", response_model=ReportReceipt, status_code=202, summary="A telecom reports a fraud number"
    )
    async def report(body: ReportIn, session: Session, caller: Institution) -> ReportReceipt:
        _telecom(caller)
        row = await service.report(
            session,
            number=body.number,
            category=body.category,
            note=body.note,
            request_id=body.request_id,
            actor=Actor.of(caller),
            now=datetime.now(UTC),
        )
        return ReportReceipt.model_validate(row)

    @api.post(
        "/proposals",
        response_model=EntryRead,
        status_code=201,
        responses={200: {"description": JOINED}},
        summary="Propose a number from a case",
    )
    async def propose(body: ProposalIn, session: Session, who: Who, response: Response) -> EntryRead:
        require_role(who, "operator", "supervisor")
        entry, joined = await service.propose(
            session,
            number=body.number,
            category=body.category,
            reason=body.reason,
            case_id=body.case_id,
            actor=Actor.of(who),
            now=datetime.now(UTC),
        )
        return _proposed(entry, joined, response)

    @api.get("/entries", response_model=EntryPage, summary="Entries, newest first, by pages")
    async def entries(
        session: Session,
        who: Who,
        status: Literal["proposed", "active", "rejected", "expired", "removed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: str | None = None,
    ) -> EntryPage:
        require_role(who, "operator", "supervisor", "auditor")
        after = pages.after(cursor) if cursor else None
        rows = await repository.list_entries(session, status=status, limit=limit + 1, after=after)
        page = rows[:limit]
        next_cursor = pages.cursor_of(page[-1].proposed_at, page[-1].id) if len(rows) > limit else None
        return EntryPage(items=[EntryRead.model_validate(e) for e in page], next_cursor=next_cursor)

    @api.post("/entries/{entry_id}/review", response_model=EntryRead, summary="Approve or reject a proposal")
    async def review(entry_id: uuid.UUID, body: Review, session: Session, who: Who) -> EntryRead:
        require_role(who, "operator", "supervisor")
        entry = await service.review(
            session,
            entry_id=entry_id,
            approve=body.decision == "approve",
            note=body.note,
            actor=Actor.of(who),
            ttl_s=settings.entry_ttl_s,
            now=datetime.now(UTC),
        )
        return EntryRead.model_validate(entry)

    @api.post(
        "/entries/{entry_id}/renewals",
        response_model=RenewalRead,
        status_code=201,
        responses={409: {"description": "the listing has ended, or a renewal of it is pending"}},
        summary="Propose to keep a listing listed for a new period, before it expires",
    )
    async def renew(entry_id: uuid.UUID, body: RenewalIn, session: Session, who: Who) -> RenewalRead:
        require_role(who, "operator", "supervisor")
        row = await service.propose_renewal(
            session, entry_id=entry_id, reason=body.reason, actor=Actor.of(who), now=datetime.now(UTC)
        )
        return RenewalRead.model_validate(row)

    @api.post(
        "/renewals/{renewal_id}/review",
        response_model=RenewalRead,
        summary="Approve (a new listing period from now) or reject a renewal",
    )
    async def review_renewal(renewal_id: uuid.UUID, body: Review, session: Session, who: Who) -> RenewalRead:
        require_role(who, "operator", "supervisor")
        row = await service.review_renewal(
            session,
            renewal_id=renewal_id,
            approve=body.decision == "approve",
            note=body.note,
            actor=Actor.of(who),
            ttl_s=settings.entry_ttl_s,
            now=datetime.now(UTC),
        )
        return RenewalRead.model_validate(row)

    @api.post(
        "/entries/{entry_id}/appeals", response_model=AppealRead, status_code=201, summary="File an appeal"
    )
    async def appeal(entry_id: uuid.UUID, body: AppealIn, session: Session, who: Who) -> AppealRead:
        require_role(who, "operator", "supervisor")
        row = await service.file_appeal(
            session, entry_id=entry_id, statement=body.statement, actor=Actor.of(who), now=datetime.now(UTC)
        )
        return AppealRead.model_validate(row)

    @api.post(
        "/appeals/{appeal_id}/decision", response_model=AppealRead, summary="Uphold (remove) or dismiss"
    )
    async def decide(appeal_id: uuid.UUID, body: AppealDecision, session: Session, who: Who) -> AppealRead:
        require_role(who, "supervisor")
        row = await service.decide_appeal(
            session,
            appeal_id=appeal_id,
            uphold=body.uphold,
            note=body.note,
            actor=Actor.of(who),
            now=datetime.now(UTC),
        )
        return AppealRead.model_validate(row)

    return api


def _proposed(entry: Entry, joined: bool, response: Response) -> EntryRead:
    """A new proposal is 201; one that joined the live entry of its subject is 200, with that entry."""
    if joined:
        response.status_code = 200
    return EntryRead.model_validate(entry)


async def _page(
    session: AsyncSession, kind: str, since: int, limit: int, if_none_match: str | None, response: Response
) -> dict[str, Any] | Response:
    """One sync page of numbers or accounts; 304 when the reader already holds the version, else the
    page with its version as the ETag."""
    version, more, changes = await service.sync(session, kind=kind, since=since, limit=limit)
    etag = f'"{version}"'
    if if_none_match is not None and _holds(if_none_match, etag) and not changes:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return {"version": version, "more": more, "changes": changes}


def _holds(if_none_match: str, etag: str) -> bool:
    """Whether If-None-Match names the version: a list of entity tags, weak (`W/"7"`) or strong, compared
    weakly as RFC 9110 says for it, or `*`."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)
