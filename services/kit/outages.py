"""What a dependency being down looks like: an API answers 503 for it, a consumer retries until it is back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import sqlalchemy.exc

from services.kit import errors
from services.kit.logging import log_fields

# What the database driver raises while PostgreSQL is down, restarting or refusing connections.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.CannotConnectNowError,  # 57P03: starting up, replaying its log after a crash
    # There, but not able to do the work now; the same work succeeds when tried again.
    asyncpg.DeadlockDetectedError,  # 40P01: one of two transactions locking in other orders
    asyncpg.SerializationError,  # 40001
    asyncpg.QueryCanceledError,  # 57014: a statement past statement_timeout (a server under load)
    asyncpg.InsufficientResourcesError,  # class 53: out of connections (53300), memory or disk
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a standby refusing writes until a failover promotes it
)


def database_down(exc: BaseException) -> bool:
    """A driver error that says the server is restarting or gone (starting up, recovering after a crash,
    shut down, the connection cut) or cannot do the work now (a deadlock, a statement timeout, too many
    clients, a standby not promoted yet); any other database error is a bug and stays one."""
    return any(
        isinstance(link, DATABASE_DOWN)
        or (isinstance(link, sqlalchemy.exc.DBAPIError) and link.connection_invalidated)
        for link in causes(exc)
    )


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps, each once: SQLAlchemy wraps the driver's error in its own (`orig`),
    and errors raised from others keep them (`__cause__`)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        if isinstance(link, sqlalchemy.exc.DBAPIError):
            todo.append(link.orig)
        todo.append(link.__cause__)


def innermost(exc: BaseException) -> BaseException:
    """What failed under its wrappers: the driver's error under SQLAlchemy's `DBAPIError`, which only says
    the database refused (the last of `causes`)."""
    last = exc
    for last in causes(exc):  # noqa: B007 - the loop is to reach the last
        pass
    return last


def unavailable(exc: BaseException) -> bool:
    """The database or Kafka is down (or Kafka has not confirmed yet): the same work succeeds once it is
    back. Anything else (a bug, bad data) is not an outage."""
    return database_down(exc) or isinstance(exc, errors.Unavailable) or _from_kafka(exc)


def _from_kafka(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiokafka")


def log_failure(logger: logging.Logger, exc: BaseException, message: str, **fields: Any) -> None:
    """A background job's failed round, retried at its next: an outage is a warning line naming what was
    raised (a traceback each round, for as long as the database is down, says nothing more); anything
    else is an error with its traceback."""
    if unavailable(exc):
        logger.warning(
            f"{message}: a dependency is down", extra=log_fields(**fields, error=type(exc).__name__)
        )
    else:
        logger.error(message, exc_info=exc, extra=log_fields(**fields))
