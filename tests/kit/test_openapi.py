"""Every service's OpenAPI documents its error answers in the kit's one error body, and the bodies the
routes read themselves (the event batch, gateway receipts), so a client or a fuzzer can generate them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from services.blocklist.app import build as build_blocklist
from services.coordination.app import build as build_coordination
from services.ingest.app import build as build_ingest
from services.notifier.app import build as build_notifier
from services.notifier.settings import NotifierSettings

ERRORS = {"401", "403", "404", "409", "413", "422", "429", "503"}


def _apps() -> dict[str, FastAPI]:
    return {
        "ingest": build_ingest(),
        "coordination": build_coordination(),
        "notifier": build_notifier(None, NotifierSettings(consume=False)),
        "blocklist": build_blocklist(),
    }


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, methods in schema["paths"].items()
        if path != "/health" and not path.startswith("/health/")  # probes: 200 or 503, nothing else
        for method, op in methods.items()
    ]


@pytest.mark.parametrize("service", ["ingest", "coordination", "notifier", "blocklist"])
def test_every_operation_documents_the_error_answers(service: str):
    schema = _apps()[service].openapi()
    for path, method, op in _operations(schema):
        assert ERRORS <= set(op["responses"]), (method, path)
        assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
        assert "Retry-After" in op["responses"]["429"]["headers"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_the_bodies_read_raw_are_documented():
    apps = _apps()
    events = apps["ingest"].openapi()
    body = events["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch = events["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert batch["properties"]["events"]["maxItems"] == 1000
    assert {"Transfer", "Call", "Payment"} <= set(events["components"]["schemas"])
    receipts = apps["notifier"].openapi()["paths"]["/v1/receipts/{channel}"]["post"]
    assert receipts["requestBody"]["content"]["application/json"]["schema"]["title"] == "Receipt"


def test_a_route_says_its_own_error_answers_in_the_kit_s_error_body():
    schema = build_coordination().openapi()
    refused = schema["paths"]["/v1/cases/{case_id}"]["patch"]["responses"]["409"]
    assert "details.blocking" in refused["description"]
    assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    other = schema["paths"]["/v1/cases/{case_id}/notes"]["post"]["responses"]["409"]
    assert other["description"].startswith("the resource's current state does not allow it")
