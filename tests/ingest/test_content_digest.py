"""What makes a repeat of an event id the same event (services.ingest.claims): how it is written does not
count, nor a field at its default, even one a later release adds; any value that differs does."""

from __future__ import annotations

from pydantic import Field

from services.ingest.claims import _content_digest
from streams.schemas.events import Call, event_adapter
from tests import factories as f


class _CallOfALaterRelease(Call):
    """The same event as a later release may read it: with a field that did not exist, at its default."""

    spoofed: bool = Field(False)


def test_a_retry_is_the_same_event_however_written_and_across_a_release_adding_a_defaulted_field():
    sent = f.call(f.phone(), start=f.minutes_ago(5), minutes=3)
    first = event_adapter.validate_python(sent)
    written_otherwise = event_adapter.validate_python(
        {**{k: sent[k] for k in reversed(sent) if k != "caller_reported"}}  # a default left out
    )
    later = _CallOfALaterRelease.model_validate(sent)
    assert _content_digest(first) == _content_digest(written_otherwise) == _content_digest(later)
    other = event_adapter.validate_python({**sent, "duration_s": sent["duration_s"] + 1})
    assert _content_digest(other) != _content_digest(first)
