"""The gateway stand-in shows what one person received and whether they answered (for the story)."""

from __future__ import annotations

import httpx

from deploy.local.gateway import Received, Receiver


async def test_messages_to_one_person_with_their_answers():
    r = Receiver("s", "p")
    for ident, to in (("m1", "+8613800000001"), ("m2", "+8613800000001"), ("m3", "+8613800000002")):
        r.messages[ident] = Received("sms", ident, 1.0, {"to": to, "language": "zh", "text": "warning"})
    r.answer_of["m1"] = ("defrauded", 200)
    r.answer_of["m3"] = None
    transport = httpx.ASGITransport(app=r.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        one = (await client.get("/messages", params={"to": "+8613800000001"})).json()
        other = (await client.get("/messages", params={"to": "+8613800000002"})).json()
        counts = (await client.get("/messages")).json()
    assert [(m["message_id"], m["answer"]) for m in one["items"]] == [("m1", "defrauded"), ("m2", "pending")]
    assert [m["answer"] for m in other["items"]] == ["none"]
    assert counts == {"count": 3, "answers": 0}
