"""The ingest API application: routes, and the producer and database it holds for its lifetime."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPBearer

from services.ingest import metrics, service
from services.ingest.claims import Claims
from services.ingest.intake import Intake
from services.ingest.purge import LedgerPurge
from services.ingest.settings import IngestSettings, check_dedup_covers_history
from services.institutions.auth import institution_dependency
from services.institutions.credentials import Caller, CredentialVerifier
from services.institutions.directory import Directory
from services.kit.db import make_engine, make_sessionmaker, ping
from services.kit.errors import InvalidInput, NotFound, Unstorable
from services.kit.http import (
    consumer_liveness,
    create_app,
    error_response,
    group_health,
    not_json,
    serve,
    task_health,
)
from services.kit.inputs import sent_as_json
from services.kit.settings import CommonSettings
from streams import acls
from streams.connection import connection
from streams.producer import START_WITHIN_S, Producer
from streams.schemas.events import EVENT_TYPES, batch_schema, json_schemas

log = logging.getLogger(__name__)
bearer = HTTPBearer(auto_error=False)


def build(common: CommonSettings | None = None, settings: IngestSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or IngestSettings()
    common.check_production_secrets()
    check_dedup_covers_history(common, settings)
    engine = make_engine(common.database_url)
    sessions = make_sessionmaker(engine)
    kafka = connection(common, acls.INGEST)
    producer = Producer(kafka, client_id="stopline-ingest")
    verifier = CredentialVerifier(sessions, ttl_s=settings.credential_cache_s)
    directory = Directory(sessions)
    claims = Claims(sessions, producer, kafka, topic_prefix=common.topic_prefix)
    intake = Intake(common, sessions, producer, claims, directory)
    purge = LedgerPurge(sessions, retention_days=settings.dedup_retention_days)
    tasks: dict[str, asyncio.Task[None]] = {}
    schemas = json_schemas()
    batch = batch_schema(settings.max_batch_events)
    bounds = common.event_time_bounds()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await producer.start(within_s=START_WITHIN_S)
        tasks["purge"] = asyncio.create_task(purge.run(), name="purge")
        tasks["claims"] = asyncio.create_task(claims.sweep(), name="claims")
        if settings.intake:
            tasks["intake"] = asyncio.create_task(intake.runner.run(), name="intake")
        try:
            yield
        finally:
            intake.runner.stop()
            tasks["claims"].cancel()
            tasks["purge"].cancel()  # (a delete cut short rolls back: the next start purges)
            await asyncio.wait(tasks.values(), timeout=15)
            await claims.stop()
            await producer.stop()
            await engine.dispose()

    consumers = {"intake": intake.runner} if settings.intake else {}

    async def health() -> dict[str, Any]:
        database, kafka = await asyncio.gather(ping(engine), producer.ping())  # the probe waits for one
        checks = {"database": database, "kafka": kafka, **task_health(tasks)}
        return checks | group_health(consumers)

    app = create_app(
        title="Stopline ingest API",
        description="Institutions post telecom, bank and payment events; see /v1/schemas.",
        health=health,
        liveness=lambda: task_health(tasks) | consumer_liveness(consumers),
        max_body_bytes=settings.max_body_bytes,
        too_large=metrics.REJECTED.labels("unknown", "too_large").inc,  # before its sender is known
        lifespan=lifespan,
        components={**batch.pop("$defs"), "EventBatch": batch},
    )

    async def unstorable(request: Request, exc: Exception) -> Response:
        """A batch the edge rule refused (before its sender is known): counted, and its problems said
        with each event's index and id."""
        assert isinstance(exc, Unstorable)
        if request.url.path == "/v1/events":
            body = await request.body()
            exc, events = service.unstorable_batch(exc, body, max_events=settings.max_batch_events)
            metrics.REJECTED.labels("unknown", "invalid").inc(events)
        return error_response(exc)

    app.add_exception_handler(Unstorable, unstorable)

    caller = institution_dependency(
        verifier, on_reject=metrics.REJECTED.labels("unknown", "unauthenticated").inc
    )

    @app.post(
        "/v1/events",
        tags=["events"],
        summary="Post a batch of events (all or nothing)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}},
            }
        },
    )
    async def post_events(request: Request, who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        """Body: `{"events": [...]}`, each event one of the schemas under /v1/schemas. Answers only after
        Kafka has acknowledged every new event. Events already accepted before are listed as duplicates; an
        event id accepted before for other content refuses the batch (409)."""
        if not sent_as_json(request):
            metrics.REJECTED.labels(who.kind, "invalid").inc()
            raise not_json(request)
        raw: list[Any] = []
        try:
            raw = service.parse_batch(await request.body(), max_events=settings.max_batch_events)
            events = service.validate_events(raw, bounds=bounds)
        except InvalidInput:
            # All or nothing: every event of the batch is refused (one that cannot be read counts one).
            metrics.REJECTED.labels(who.kind, "invalid").inc(len(raw) or 1)
            raise
        service.check_kinds(who, events)
        unknown = await service.unknown_payees(directory, events)
        result = await claims.accept(caller=who, events=events, answer_within_s=settings.answer_timeout_s)
        service.refuse_conflicts(who, events, result.conflicts)
        service.count_unknown_payees(who, events, unknown, result)
        return {"accepted": result.accepted, "duplicates": result.duplicates}

    @app.get("/v1/schemas", tags=["schemas"], summary="Names of the event schemas")
    async def list_schemas() -> dict[str, list[str]]:
        return {"event_types": sorted(EVENT_TYPES), "kafka": ["envelope"]}

    @app.get("/v1/schemas/{name}", tags=["schemas"], summary="JSON Schema of one event type")
    async def get_schema(name: str) -> dict[str, Any]:
        if name not in schemas:
            raise NotFound(f"no schema {name}")
        return schemas[name]

    return app


def main() -> None:
    serve(build, IngestSettings(), service="ingest")


if __name__ == "__main__":
    main()
