"""Webhook signing secrets are sealed at rest, bound to their institution, and rotate with an overlap in
which every webhook is signed with both the new and the previous secret."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import text

from services.coordination.delivery import signing
from services.institutions import delivery
from services.institutions.models import Institution
from services.kit.db import unit_of_work
from services.kit.errors import Conflict, InvalidInput
from services.kit.sealing import Sealer
from services.kit.settings import CommonSettings
from tests import factories as f

pytestmark = pytest.mark.integration
URL = "https://bank.example/stopline"


async def _configure(sessions, ident: str, **kwargs):
    async with unit_of_work(sessions) as session:
        return await delivery.configure(session, institution_id=ident, kafka=False, webhook_url=URL, **kwargs)


async def _secrets(sessions, ident: str, at: datetime) -> list[str]:
    async with sessions() as session:
        institution = await session.get(Institution, ident)
        return delivery.signing_secrets(institution, delivery.secrets_sealer(), now=at)


async def test_a_secret_is_stored_sealed_and_opens_only_for_its_institution(sessions):
    ident, _ = await f.institution(sessions, "bank")
    other, _ = await f.institution(sessions, "bank")
    secret = await _configure(sessions, ident)
    assert secret and await _secrets(sessions, ident, datetime.now(UTC)) == [secret]
    async with sessions() as session:
        row = await session.execute(text("select * from institutions where id = :id"), {"id": ident})
        stored = row.one()
    assert secret not in str(tuple(stored))
    assert all(secret.encode() not in value for value in stored if isinstance(value, bytes))
    async with unit_of_work(sessions) as session:  # a sealed secret copied onto another row does not open
        await session.execute(
            text(
                "update institutions set webhook_secret_sealed = :sealed, webhook_url = :url where id = :id"
            ),
            {"sealed": stored.webhook_secret_sealed, "url": URL, "id": other},
        )
    with pytest.raises(InvalidTag):
        await _secrets(sessions, other, datetime.now(UTC))


async def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends(sessions):
    ident, _ = await f.institution(sessions, "bank")
    first = await _configure(sessions, ident)
    second = await _configure(sessions, ident, rotate_secret=True, overlap=timedelta(days=2))
    assert first and second and first != second
    now = datetime.now(UTC)
    both = await _secrets(sessions, ident, now)
    assert both == [second, first]

    body = b'{"type":"instruction"}'
    headers = signing.headers(both, body, "m-1")
    assert signing.verify(first, headers, body)  # a receiver still on the old secret
    assert signing.verify(second, headers, body)  # and one that switched
    assert not signing.verify("whsec_other", headers, body)
    for stamp in ("²", "1" * 5000):  # str.isdigit() says yes, int() no: refused, not raised
        assert not signing.verify(first, {**headers, signing.TIMESTAMP: stamp}, body)

    assert await _secrets(sessions, ident, now + timedelta(days=2, seconds=1)) == [second]
    unchanged = await _configure(sessions, ident)  # no rotation asked: the secret stays
    assert unchanged is None and (await _secrets(sessions, ident, now))[0] == second


async def test_a_change_of_secrets_key_loses_no_secret(sessions):
    """STOPLINE_SECRETS_KEY rotated: with the former key as the previous one, secrets it sealed still open
    (webhooks keep their signatures), and `reseal` seals them all under the current key, after which the
    former key can go."""
    former = base64.b64encode(os.urandom(32)).decode()
    ident, _ = await f.institution(sessions, "bank")
    async with unit_of_work(sessions) as session:
        first = await delivery.configure(
            session, institution_id=ident, kafka=False, webhook_url=URL, sealer=Sealer(former)
        )
        second = await delivery.configure(
            session,
            institution_id=ident,
            kafka=False,
            webhook_url=URL,
            rotate_secret=True,
            sealer=Sealer(former),
        )
    current = delivery.secrets_sealer()  # the session's key, which sealed every other institution's
    now = datetime.now(UTC)
    with pytest.raises(InvalidTag):
        await _secrets(sessions, ident, now)
    rotating = delivery.secrets_sealer(CommonSettings(secrets_key_previous=former))
    async with sessions() as session:
        institution = await session.get(Institution, ident)
        assert delivery.signing_secrets(institution, rotating, now=now) == [second, first]

    async with unit_of_work(sessions) as session:
        assert await delivery.reseal(session, sealer=rotating, institution_ids=[ident]) == 1
    async with sessions() as session:
        institution = await session.get(Institution, ident)
        assert delivery.signing_secrets(institution, current, now=now) == [second, first]
    with pytest.raises(InvalidTag):
        Sealer(former).open(institution.webhook_secret_sealed, context=f"webhook-secret:{ident}".encode())


async def test_a_webhook_url_the_relay_could_never_post_to_is_refused_and_nothing_changes(sessions):
    ident, _ = await f.institution(sessions, "bank")
    for url in (
        "http://bank.example:8o80/hook",
        "http://xn--zz.com/hook",
        "ftp://bank.example/",
        "http:///x",
    ):
        with pytest.raises(InvalidInput) as refused:
            async with unit_of_work(sessions) as session:
                await delivery.configure(session, institution_id=ident, kafka=False, webhook_url=url)
        assert [d["field"] for d in refused.value.details] == ["webhook_url"]
    async with sessions() as session:
        institution = await session.get(Institution, ident)
        assert institution.webhook_url is None and institution.webhook_secret_sealed is None


async def test_a_rotation_without_a_url_keeps_the_webhook_and_a_second_one_in_the_overlap_needs_force(
    sessions,
):
    ident, _ = await f.institution(sessions, "bank")
    first = await _configure(sessions, ident)  # webhook only
    async with unit_of_work(sessions) as session:  # as `cli delivery <id> --rotate-secret`
        second = await delivery.configure(
            session, institution_id=ident, kafka=None, webhook_url=None, rotate_secret=True
        )
    async with sessions() as session:
        institution = await session.get(Institution, ident)
        # The channels as they were: the webhook kept, and no Kafka topic, whose copy would pass for a
        # delivery when the webhook fails.
        assert (institution.webhook_url, institution.kafka_delivery) == (URL, False)
    assert await _secrets(sessions, ident, datetime.now(UTC)) == [second, first]
    with pytest.raises(Conflict, match="previous secret still signs"):
        await _configure(sessions, ident, rotate_secret=True)
    assert await _secrets(sessions, ident, datetime.now(UTC)) == [second, first]  # nothing changed
    third = await _configure(sessions, ident, rotate_secret=True, force=True)
    assert await _secrets(sessions, ident, datetime.now(UTC)) == [third, second]
