"""What a dependency being down looks like: an API answers 503 for it, a consumer retries until it is back."""

from __future__ import annotations

import asyncpg
import sqlalchemy.exc

from services.kit import errors

# What the database driver raises while PostgreSQL is down, restarting or refusing connections.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


def database_down(exc: BaseException) -> bool:
    """A driver error that says the server is restarting or gone (not yet accepting connections, shut down
    by an administrator, the connection cut); any other database error is a bug and stays one."""
    if isinstance(exc, DATABASE_DOWN):
        return True
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    cause = getattr(exc, "orig", None) or exc.__cause__
    if isinstance(cause, DATABASE_DOWN) or exc.connection_invalidated:
        return True
    text = str(exc).lower()
    return "not yet accepting connections" in text or "shutting down" in text


def unavailable(exc: BaseException) -> bool:
    """The database or Kafka is down (or Kafka has not confirmed yet): the same work succeeds once it is
    back. Anything else (a bug, bad data) is not an outage."""
    return database_down(exc) or isinstance(exc, errors.Unavailable) or _from_kafka(exc)


def _from_kafka(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiokafka")
