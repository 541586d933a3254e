"""What the routers of the coordination API are built with: the request's unit of work, the caller
(an officer's JWT or an institution's API key) and the decision context (policy, topic prefix)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.instructions.service import Context
from services.institutions.credentials import Caller
from services.kit.auth import Officer


@dataclass(frozen=True)
class Deps:
    session: Callable[..., Coroutine[Any, Any, AsyncSession]]  # the request's unit of work
    officer: Callable[..., Coroutine[Any, Any, Officer]]
    institution: Callable[..., Coroutine[Any, Any, Caller]]
    ctx: Context
