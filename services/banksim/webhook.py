"""The simulated institutions' webhook receiver: `POST /webhooks/<institution>`, signature checked."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.banksim.bank import SimBanks
from streams.schemas.instructions import for_institution_adapter


def app(banks: SimBanks) -> FastAPI:
    api = FastAPI(title="Simulated institutions' webhooks")

    @api.post("/webhooks/{institution}")
    async def receive(institution: str, request: Request) -> JSONResponse:
        body = await request.body()
        if not banks.check_webhook(institution, dict(request.headers), body):
            return JSONResponse({"error": "bad signature"}, 401)
        try:
            message = for_institution_adapter.validate_json(body)
        except ValidationError:
            return JSONResponse({"error": "not an instruction"}, 422)
        if message.institution_id != institution:
            return JSONResponse({"error": "not addressed to this institution"}, 422)
        fresh = banks.receive(message, channel="webhook")
        return JSONResponse({"status": "accepted" if fresh else "duplicate"}, 200)

    return api
