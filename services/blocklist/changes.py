"""What every change to a blocklist entry leaves behind: its audit entry (before and after) and its
count."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.blocklist import metrics
from services.blocklist.models import Entry
from services.kit.audit import service as audit
from services.kit.db import after_commit

ENTITY = "blocklist_entry"


def snapshot(entry: Entry) -> dict[str, Any]:
    subject = (
        {"number": entry.number}
        if entry.kind == "number"
        else {
            "institution": entry.institution,
            "account": entry.account,
        }
    )
    return subject | {
        "kind": entry.kind,
        "status": entry.status,
        "category": entry.category,
        "reports": entry.reports,
        "expires_at": entry.expires_at,
        "version": entry.version,
    }


async def record(
    session: AsyncSession,
    entry: Entry,
    *,
    actor: audit.Actor,
    action: str,
    basis: str,
    before: dict[str, Any] | None,
    case_id: uuid.UUID | None | Literal["entry's"] = "entry's",
) -> None:
    """`case_id` is the case the change was made under: the entry's own, unless the change names another
    (a second proposal from another case, or from none, is that case's act, found by its trail)."""
    await audit.record(
        session,
        actor=actor,
        action=f"blocklist.{action}",
        entity_type=ENTITY,
        entity_id=entry.id,
        case_id=entry.case_id if case_id == "entry's" else case_id,
        legal_basis=basis,
        before=before,
        after=snapshot(entry),
    )
    after_commit(session, metrics.CHANGES.labels(action).inc)
