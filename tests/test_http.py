"""The tests' post that sends a request again on a 503: the same request, and a bounded number of times."""

from __future__ import annotations

import httpx

from tests.http import ATTEMPTS, post_again_on_503


def _service(*statuses: int) -> tuple[httpx.AsyncClient, list[bytes]]:
    """A client of a service answering `statuses` in turn (the last one from then on); the bodies it got."""
    bodies: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(statuses[min(len(bodies), len(statuses)) - 1])

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://service"), bodies


async def test_a_503_is_sent_again_the_same_until_answered():
    client, bodies = _service(503, 503, 200)
    async with client:
        answer = await post_again_on_503(client, "/v1/answers", content=b'{"outcome": "executed"}')
    assert answer.status_code == 200
    assert bodies == [b'{"outcome": "executed"}'] * 3


async def test_a_service_away_for_good_is_its_last_503_after_a_bounded_number_of_attempts():
    client, bodies = _service(503)
    async with client:
        answer = await post_again_on_503(client, "/signin/officer", data={"subject": "s"})
    assert (answer.status_code, len(bodies)) == (503, ATTEMPTS)


async def test_any_other_answer_is_not_sent_again():
    for status in (200, 303, 409, 422, 500):
        client, bodies = _service(status)
        async with client:
            answer = await post_again_on_503(client, "/v1/answers", json={})
        assert (answer.status_code, len(bodies)) == (status, 1)
