"""The institution routes as a bank's integrator meets them: what a body sent wrong is told, and the
instructions listed page by page."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from tests import factories as f
from tests.coordination.conftest import bank, case_body, issue, open_case, stop_issued

pytestmark = pytest.mark.integration


async def _streamed(body: bytes) -> AsyncIterator[bytes]:
    """The body with 3 MiB of padding, in chunks."""
    yield body[:-1] + b', "padding": "'
    for _ in range(50):
        yield b"x" * 65_536
    yield b'"}'


async def test_a_body_sent_wrong_is_told_what_is_wrong(coord, sessions):
    """Every route with a body (here an institution's answer and an officer's case): one not sent as JSON
    is told the content type (415), malformed JSON the parse error at `body` (not `body.<offset>`)."""
    c = coord.client
    op = f.officer()
    _, key, _, stop = await stop_issued(coord, sessions, op, "300.00")
    answer = orjson.dumps({"response_id": str(uuid.uuid4()), "outcome": "acknowledged"})
    routes = [
        (f"/v1/institution/instructions/{stop['id']}/responses", answer, key),
        ("/v1/cases", orjson.dumps(case_body()), op),
    ]
    for path, body, headers in routes:
        # curl -d: a form's content type
        as_form = await c.post(
            path, content=body, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}
        )
        assert as_form.status_code == 415, as_form.text
        error = as_form.json()["error"]
        assert error["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error["message"]
        assert "application/x-www-form-urlencoded" in error["message"]
        assert [p["field"] for p in error["details"]] == ["body"]
        untyped = await c.post(path, content=body, headers=headers)
        assert untyped.status_code == 415 and "no Content-Type" in untyped.json()["error"]["message"]

        malformed = await c.post(
            path, content=body[:15], headers={**headers, "Content-Type": "application/json"}
        )
        assert malformed.status_code == 422, malformed.text
        [problem] = malformed.json()["error"]["details"]
        assert problem["field"] == "body"
        assert problem["reason"].startswith("not JSON: ") and "at character 15" in problem["reason"]

        # No Content-Length: found over the limit while FastAPI reads it for the route's model.
        too_large = await c.post(
            path, content=_streamed(body), headers={**headers, "Content-Type": "application/json"}
        )
        assert too_large.status_code == 413, too_large.text  # it was 422, "could not be parsed"
        assert too_large.json()["error"]["code"] == "payload_too_large"
    # Sent as JSON, the same answer is taken.
    taken = await c.post(routes[0][0], content=answer, headers={**key, "Content-Type": "application/json"})
    assert taken.status_code == 200, taken.text


async def test_the_instructions_are_listed_page_by_page(coord, sessions):
    """Past any one page (at most 500): a cursor takes the bank to the next, newest first, each once."""
    c = coord.client
    op = f.officer()
    inst, key, case_id, first = await stop_issued(coord, sessions, op, "100.00")
    more = [
        await issue(c, op, case_id, kind="query", institution_id=inst, account=f.account("Q"))
        for _ in range(2)
    ]
    other_case = await open_case(c, op, (inst, f.account("O"), "50.00"))
    more.append(await issue(c, op, other_case, kind="query", institution_id=inst, account=f.account("Q")))
    seen: list[str] = []
    cursor: str | None = None
    for size in (3, 1):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        got = await c.get("/v1/institution/instructions", params=params, headers=key)
        assert got.status_code == 200, got.text
        page = got.json()
        assert len(page["items"]) == size
        seen += [i["message"]["instruction_id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == [i["id"] for i in reversed([first, *more])]
    bad = await c.get("/v1/institution/instructions", params={"cursor": "not-a-cursor"}, headers=key)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "query.cursor"


async def test_an_instruction_approved_later_comes_first_to_a_bank_that_polls(coord, sessions):
    """Listed by when each was sent to the bank: a freeze made before a query but approved after it comes
    on top, where a bank reading down to the newest one it already knows finds it."""
    c = coord.client
    op, sup = f.officer(unit="poll-unit"), f.officer("supervisor", unit="poll-unit")
    inst, key, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "700.00"))
    hold = {"institution_id": inst, "account": account, "amount": "700.00", "document_number": "DOC-9"}
    freeze = await issue(c, op, case_id, kind="freeze", **hold)  # waits for the supervisor
    query = await issue(c, op, case_id, kind="query", institution_id=inst, account=f.account("Q"))

    async def newest() -> list[str]:
        got = await c.get("/v1/institution/instructions", params={"limit": 1}, headers=key)
        return [i["message"]["instruction_id"] for i in got.json()["items"]]

    assert await newest() == [query["id"]]  # what the bank has seen
    assert (await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)).status_code == 200
    assert await newest() == [freeze["id"]]
