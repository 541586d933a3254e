"""Route of delivery receipts, posted (signed) by the SMS gateway and the push provider."""

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.errors import InvalidInput, field_problems
from services.kit.ratelimit import RateLimiter, RateLimitSettings, client_address
from services.notifier import signing
from services.notifier.delivery import service
from services.notifier.settings import NotifierSettings
from streams.schemas.warnings import Receipt

SessionDep = Callable[[], AsyncIterator[AsyncSession]]


def router(session_dep: SessionDep, settings: NotifierSettings) -> APIRouter:
    api = APIRouter(prefix="/v1/receipts", tags=["gateways"])
    Session = Annotated[AsyncSession, Depends(session_dep, scope="function")]
    secrets = {"sms": settings.sms_secret, "push": settings.push_secret}
    limit = RateLimitSettings().receipts_per_s
    per_address = RateLimiter(per_s=limit, burst=2 * limit)

    # The body is read raw (its signature covers the bytes), so its schema is given to OpenAPI by hand.
    body_doc = {"required": True, "content": {"application/json": {"schema": Receipt.model_json_schema()}}}

    @api.post(
        "/{channel}",
        status_code=204,
        summary="A signed delivery receipt from a gateway",
        openapi_extra={"requestBody": body_doc},
    )
    async def receipt(channel: Literal["sms", "push"], request: Request, session: Session) -> None:
        per_address.take(client_address(request), "receipts from this address")
        body = await request.body()
        signing.verify(
            secrets[channel],
            timestamp=request.headers.get(signing.TIMESTAMP),
            sig=request.headers.get(signing.SIGNATURE),
            body=body,
            now=time.time(),
            tolerance_s=settings.receipt_tolerance_s,
        )
        try:
            parsed = Receipt.model_validate_json(body)
        except ValidationError as exc:
            details = field_problems(exc.errors(), under="body")
            raise InvalidInput("malformed receipt", details=details) from exc
        await service.record_receipt(session, channel=channel, receipt=parsed, now=datetime.now(UTC))

    return api
