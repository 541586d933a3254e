"""How an institution receives instructions: its Kafka topic, a signed webhook, or both.

The webhook signing secret is sealed at rest (STOPLINE_SECRETS_KEY). Rotating it keeps the previous one
signing too for an overlap (every webhook then carries both signatures), so the institution can switch
its receiver to the new secret without missing a message.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.models import Institution
from services.kit.errors import Conflict, InvalidInput
from services.kit.sealing import Sealer
from services.kit.settings import CommonSettings

ROTATION_OVERLAP = timedelta(days=7)


def secrets_sealer(common: CommonSettings | None = None) -> Sealer:
    common = common or CommonSettings()
    return Sealer(common.secrets_key, previous=[common.secrets_key_previous])


def _url_problem(url: str) -> str | None:
    """Why the relay could not post to this URL, if it could not (what httpx refuses, it refuses at every
    attempt: caught here, not found out by the relay at the first instruction)."""
    try:
        parsed = httpx.URL(url)
        scheme, host = parsed.scheme, parsed.host  # (the host is decoded here: idna may refuse it)
    except (httpx.InvalidURL, ValueError) as exc:  # (idna's refusal is a ValueError)
        return f"is not a URL: {exc}"
    if scheme not in ("http", "https") or not host:
        return "must be an http(s) URL with a host"
    return None


async def configure(
    session: AsyncSession,
    *,
    institution_id: str,
    kafka: bool | None,
    webhook_url: str | None,
    rotate_secret: bool = False,
    sealer: Sealer | None = None,
    overlap: timedelta = ROTATION_OVERLAP,
    force: bool = False,
) -> str | None:
    """Set the channels (`kafka` None: as they are); returns the webhook signing secret when one is (newly)
    made, else None. A rotation without a URL keeps the webhook's; one while the previous secret still
    signs needs `force`."""
    now = datetime.now(UTC)
    institution = await session.get(Institution, institution_id, with_for_update=True)
    if institution is None:
        raise InvalidInput(f"no institution {institution_id}")
    if rotate_secret and webhook_url is None:
        webhook_url = institution.webhook_url  # a rotation keeps the webhook it rotates the secret of
    if rotate_secret and webhook_url is None:
        raise InvalidInput("no webhook to rotate the secret of: give --webhook")
    in_overlap = institution.webhook_previous_until is not None and institution.webhook_previous_until > now
    if rotate_secret and in_overlap and not force:
        raise Conflict(
            f"the previous secret still signs until {institution.webhook_previous_until:%Y-%m-%d %H:%M} UTC;"
            " another rotation now would drop the secret the institution may still hold (force to do so)"
        )
    if webhook_url is not None and (problem := _url_problem(webhook_url)):
        raise InvalidInput(f"webhook_url {problem}", details=[{"field": "webhook_url", "reason": problem}])
    if kafka is None:
        kafka = institution.kafka_delivery
    if not kafka and webhook_url is None:
        raise InvalidInput("an institution needs at least one delivery channel")
    institution.kafka_delivery = kafka
    institution.webhook_url = webhook_url
    secret: str | None = None
    if webhook_url is None:
        institution.webhook_secret_sealed = None
        institution.webhook_previous_sealed = None
        institution.webhook_previous_until = None
    elif rotate_secret or institution.webhook_secret_sealed is None:
        secret = "whsec_" + secrets.token_urlsafe(32)
        if institution.webhook_secret_sealed is not None:
            institution.webhook_previous_sealed = institution.webhook_secret_sealed
            institution.webhook_previous_until = now + overlap
        institution.webhook_secret_sealed = seal_secret(sealer or secrets_sealer(), institution_id, secret)
    await session.flush()
    return secret


async def reseal(session: AsyncSession, *, sealer: Sealer, institution_ids: Sequence[str] = ()) -> int:
    """Seal the kept webhook secrets again under the current key (after STOPLINE_SECRETS_KEY changed, with
    the former key as STOPLINE_SECRETS_KEY_PREVIOUS): every institution's, or those named. Returns how
    many institutions were resealed; a secret that opens under neither key stops it, nothing written."""
    query = select(Institution).where(
        Institution.webhook_secret_sealed.is_not(None) | Institution.webhook_previous_sealed.is_not(None)
    )
    if institution_ids:
        query = query.where(Institution.id.in_(institution_ids))
    count = 0
    for institution in await session.scalars(query.order_by(Institution.id).with_for_update()):
        context = _context(institution.id)
        if institution.webhook_secret_sealed is not None:
            institution.webhook_secret_sealed = sealer.reseal(
                institution.webhook_secret_sealed, context=context
            )
        if institution.webhook_previous_sealed is not None:
            institution.webhook_previous_sealed = sealer.reseal(
                institution.webhook_previous_sealed, context=context
            )
        count += 1
    await session.flush()
    return count


def seal_secret(sealer: Sealer, institution_id: str, secret: str) -> bytes:
    return sealer.seal(secret.encode(), context=_context(institution_id))


def signing_secrets(institution: Institution, sealer: Sealer, *, now: datetime) -> list[str]:
    """The secrets webhooks to `institution` are signed with: the current one, and the previous one while
    its overlap lasts."""
    sealed = [institution.webhook_secret_sealed]
    if institution.webhook_previous_until is not None and institution.webhook_previous_until > now:
        sealed.append(institution.webhook_previous_sealed)
    context = _context(institution.id)
    return [sealer.open(s, context=context).decode() for s in sealed if s is not None]


def _context(institution_id: str) -> bytes:
    return f"webhook-secret:{institution_id}".encode()
