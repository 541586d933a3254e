"""Domain errors carry their meaning; `http.py` maps them to HTTP status codes in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class DomainError(Exception):
    """Base of every error a client can cause; `code` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    """A 422: `details` lists each problem's `field` (`body.x`, `query.x`, `path.x`, as pydantic's own
    refusals name it) and `reason`; `field` alone names the one field the message is the reason of."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message, details=[{"field": field, "reason": message}] if field else details)


class Unstorable(InvalidInput):
    """A value no route can store (`services.kit.inputs`), found before the route ran."""


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class Unavailable(DomainError):
    """A dependency (Kafka, the database) did not answer in time; the client may retry after
    `retry_after_s` seconds (the answer's Retry-After)."""

    code = "unavailable"
    retry_after_s = 1


class InDoubt(Unavailable):
    """Work was handed to a dependency that has not confirmed it yet: it may still be done. A retry is
    told the outcome once it is known, and nothing is done twice meanwhile."""

    code = "in_doubt"
    retry_after_s = 2


class TooManyRequests(DomainError):
    """A rate limit: the client may retry after `retry_after_s` seconds."""

    code = "too_many_requests"

    def __init__(self, message: str, *, details: Any = None, retry_after_s: int = 1) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = max(1, retry_after_s)


# What a 422 says of a body that is not JSON, and of one that does not validate (its details name each field).
UNPARSED = "request body could not be parsed"
FAILED_VALIDATION = "request failed validation"


def field_problems(errors: Iterable[Mapping[str, Any]], *, under: str = "") -> list[dict[str, str]]:
    """Validation errors (pydantic's) as the problems a 422 lists: each one's `field` (its path, after
    `under`) and `reason`."""
    return [
        {"field": ".".join(str(p) for p in ([under] if under else []) + list(e["loc"])), "reason": e["msg"]}
        for e in errors
    ]
