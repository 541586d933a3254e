"""A site of a run's own on the stack's servers: a migrated database and a topic prefix, removed
afterwards, so a benchmark or a test run on them neither sees nor leaves anyone else's data (nor has
anyone else's relay, scheduler or consumer group work on its own)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.kit.db import scratch_database
from services.kit.settings import CommonSettings
from services.migrate import upgrade
from streams import acls, admin
from streams.connection import connection


@contextlib.asynccontextmanager
async def scratch_site(
    common: CommonSettings, *, database: str, prefix: str
) -> AsyncIterator[CommonSettings]:
    """`common` with a database `database` (made, migrated) and the topics under `prefix` (made) on its
    servers; both dropped at the end."""
    url = await scratch_database(common.database_url, database, create=True)
    kafka = connection(common, acls.ADMIN)
    try:
        await asyncio.to_thread(upgrade, url)
        await admin.ensure_topics(kafka, prefix)
        yield common.model_copy(update={"database_url": url, "topic_prefix": prefix})
    finally:
        await admin.delete_topics(kafka, prefix)
        await scratch_database(common.database_url, database, create=False)
