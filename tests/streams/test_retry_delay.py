"""How long a consumer waits before trying a failed batch again."""

from __future__ import annotations

from streams.consumer import retry_delay


def test_an_outage_is_tried_again_at_least_every_second():
    # The batch (and the runner's readiness) comes back within a second of the database's return.
    assert [retry_delay(n, outage=True) for n in range(1, 7)] == [0.4, 0.8, 1.0, 1.0, 1.0, 1.0]


def test_any_other_failure_backs_off_to_five_seconds():
    assert [retry_delay(n, outage=False) for n in range(1, 7)] == [0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
