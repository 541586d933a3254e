"""API shapes of the money-flow tree and of proposals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class FlowNode(BaseModel):
    """One account the case's money reached. `gone` is what its institution listed moving out of it
    (followed into its children), all of it: with other victims' money it may exceed `received`;
    `stopped`, `frozen` are held now; `returned` went back to the victim."""

    id: int
    institution_id: str
    account: str
    depth: int
    parent_id: int | None
    received: Decimal
    stopped: Decimal
    frozen: Decimal
    returned: Decimal
    gone: Decimal


class FlowTotals(BaseModel):
    lost: Decimal
    stopped: Decimal
    frozen: Decimal
    returned: Decimal
    recovered: Decimal = Field(
        description="stopped + frozen + returned, at most `lost` (holds along the flow may keep other "
        "victims' money too)"
    )
    outstanding: Decimal = Field(description="lost − recovered (never below 0)")


class FlowView(BaseModel):
    nodes: list[FlowNode]
    totals: FlowTotals


class ProposalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    institution_id: str
    account: str
    amount: Decimal
    depth: int
    status: str
    decided_by: str | None
    decided_at: datetime | None


class Accept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        None, max_length=500, description="default: every open proposal"
    )
    follow_with_query: StrictBool = Field(True, description="also query each account, to find the next layer")
