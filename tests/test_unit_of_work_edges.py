"""Every route's unit of work commits at the edge, before the answer is sent (a function-scoped
dependency), so a client never sees a 2xx for work that then fails to commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from services.blocklist.app import build as blocklist
from services.coordination.app import build as coordination
from services.notifier.app import build as notifier


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:  # an included router
            yield from _api_routes(included.routes)


def _sessions(dependant: Dependant) -> Iterator[tuple[str, str | None]]:
    for dep in dependant.dependencies:
        if getattr(dep.call, "__name__", "") == "session_dep":
            yield dependant.name or "", dep.scope
        yield from _sessions(dep)


@pytest.mark.parametrize(
    "build", [coordination, notifier, blocklist], ids=["coordination", "notifier", "blocklist"]
)
def test_every_route_commits_before_it_answers(build: Callable[[], FastAPI]) -> None:
    app = build()
    routes = list(_api_routes(app.routes))
    using = {r.path + " " + ",".join(sorted(r.methods or ())): list(_sessions(r.dependant)) for r in routes}
    with_sessions = {route: scopes for route, scopes in using.items() if scopes}
    assert len(with_sessions) >= 5
    late = {
        route: scopes for route, scopes in with_sessions.items() if any(s != "function" for _, s in scopes)
    }
    assert late == {}
