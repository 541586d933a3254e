"""Route of /v1/institutions: the registered institutions as an officer chooses one to instruct (the
console's issue form offers them). What it shows is what the choice needs: id, name, kind and whether
instructions can go to it; never a credential, a webhook's URL or its secret."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.models import Institution
from services.kit.auth import Officer, require_role
from streams.schemas.events import INSTITUTION_ID_PATTERN

Kind = Literal["telecom", "bank", "payment"]
# Instructions (every kind: query, stop-payment, freeze, ...) go to banks and payment providers only, as
# issuing them checks (services.coordination.instructions.service); a telecom receives none.
INSTRUCTED: tuple[Kind, ...] = ("bank", "payment")


class InstitutionListed(BaseModel):
    id: str
    name: str
    kind: Kind
    receives_instructions: bool = Field(
        description="a bank or payment provider with a delivery channel (its Kafka topic or a webhook)"
    )


class InstitutionList(BaseModel):
    items: list[InstitutionListed]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


def listed(row: Institution) -> InstitutionListed:
    return InstitutionListed(
        id=row.id,
        name=row.name,
        kind=row.kind,  # (the table's check holds it to the three)
        receives_instructions=row.kind in INSTRUCTED and (row.kafka_delivery or row.webhook_url is not None),
    )


def router(session_dep: Callable[..., Any], officer_dep: Callable[..., Any]) -> APIRouter:
    api = APIRouter(prefix="/v1/institutions", tags=["institutions"])
    Session = Annotated[AsyncSession, Depends(session_dep)]
    Who = Annotated[Officer, Depends(officer_dep)]

    @api.get("", response_model=InstitutionList, summary="Registered institutions, by id")
    async def list_institutions(
        session: Session,
        who: Who,
        kind: Annotated[list[Kind] | None, Query(description="only these kinds (repeat it)")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 500,
        cursor: Annotated[
            str | None, Query(pattern=INSTITUTION_ID_PATTERN, description="the last id of the previous page")
        ] = None,
    ) -> InstitutionList:
        # Officers only (an institution's key or user is no officer: 401): an institution does not
        # list the others.
        require_role(who, "operator", "supervisor", "auditor")
        query = select(Institution).order_by(Institution.id).limit(limit + 1)
        if kind:
            query = query.where(Institution.kind.in_(kind))
        if cursor is not None:
            query = query.where(Institution.id > cursor)
        rows = list(await session.scalars(query))
        page = rows[:limit]
        return InstitutionList(
            items=[listed(r) for r in page], next_cursor=page[-1].id if len(rows) > limit else None
        )

    return api
