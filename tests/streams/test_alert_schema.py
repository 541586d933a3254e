"""The alert message: alerts from before the model's input was carried stay valid, and its lists and
values are bounded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import get_args

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError
from sqlalchemy import String

from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from services.notifier.warnings.models import CitizenWarning
from services.notifier.warnings.service import episode_of
from streams.schemas.alerts import (
    MAX_FEATURES,
    MAX_PAYMENTS,
    MAX_TRIGGERS,
    Typology,
    alert_adapter,
    event_ref,
)
from streams.schemas.decode import decode_alerts
from streams.schemas.events import EVENT_ID_MAX, INSTITUTION_ID_MAX

OLD_MESSAGE = {
    "alert_id": str(uuid.uuid4()),
    "typology": "call_then_transfer",
    "score": 0.9,
    "reasons": ["a long call from a number that had never called before"],
    "recommended_actions": ["warn_citizen"],
    "subject": {"phone": "+8613900001111", "account": "ACC1", "institution": "bank-a"},
    "triggering_event_ids": ["telecom-a:c1", "bank-a:t1"],
    "amount_at_risk": "5000.00",
    "event_time": datetime.now(UTC).isoformat(),
    "created_at": datetime.now(UTC).isoformat(),
    "scorer_version": "0.1.0+m-1",
    "schema_version": 1,
}


def test_an_alert_without_features_is_still_valid() -> None:
    alert = alert_adapter.validate_json(orjson.dumps(OLD_MESSAGE))
    assert alert.features is None and alert.feature_set is None


def test_features_round_trip() -> None:
    row = [float(i) / 3 for i in range(len(FEATURE_NAMES))]
    message = {**OLD_MESSAGE, "features": row, "feature_set": FEATURE_SET_HASH}
    alert = alert_adapter.validate_json(orjson.dumps(message))
    back = alert_adapter.validate_json(alert.model_dump_json())
    assert back.features == row and back.feature_set == FEATURE_SET_HASH


def test_a_feature_list_over_the_bound_is_refused() -> None:
    message = {**OLD_MESSAGE, "features": [0.0] * (MAX_FEATURES + 1), "feature_set": FEATURE_SET_HASH}
    with pytest.raises(ValidationError) as err:
        alert_adapter.validate_json(orjson.dumps(message))
    assert err.value.errors()[0]["loc"] == ("features",)
    assert alert_adapter.validate_json(orjson.dumps({**message, "features": [0.0] * MAX_FEATURES}))


def _batch(*messages: dict[str, object]) -> dict[TopicPartition, list[ConsumerRecord]]:
    tp = TopicPartition("alerts", 0)
    records = [
        ConsumerRecord("alerts", 0, i, 0, 0, None, orjson.dumps(m), None, 0, 0, ())
        for i, m in enumerate(messages)
    ]
    return {tp: records}


def test_consumers_ignore_fields_of_a_newer_scorer_but_not_bad_values():
    newer = {**OLD_MESSAGE, "a_field_of_a_later_version": [1, 2, 3]}
    bad = {**OLD_MESSAGE, "score": 7}
    alerts, invalid = decode_alerts(_batch(newer, bad))
    assert [str(a.alert_id) for a in alerts] == [OLD_MESSAGE["alert_id"]]
    assert len(invalid) == 1
    # The scorer's own writing stays strict: a field it does not know is its own bug.
    with pytest.raises(ValidationError, match="a_field_of_a_later_version"):
        alert_adapter.validate_json(orjson.dumps(newer))


def test_consumers_refuse_values_their_columns_cannot_hold():
    """An amount at risk is a sum (a mule's hour of inflows) and may pass what NUMERIC(15, 2) holds; the
    scorer's version is stored in 64 characters. Refused at decoding, counted, as any invalid alert: one
    such alert would otherwise fail its whole batch at every attempt."""
    bad = [
        {**OLD_MESSAGE, "amount_at_risk": f"{11 * 999_999_999_999:.2f}"},
        {**OLD_MESSAGE, "amount_at_risk": "5000.001"},
        {**OLD_MESSAGE, "amount_at_risk": "-5.00"},
        {**OLD_MESSAGE, "amount_at_risk": "NaN"},
        {**OLD_MESSAGE, "scorer_version": "v" * 65},
    ]
    good = [
        {**OLD_MESSAGE, "alert_id": str(uuid.uuid4()), "amount_at_risk": "9999999999999.99"},
        {**OLD_MESSAGE, "alert_id": str(uuid.uuid4()), "amount_at_risk": "0.00", "scorer_version": "v" * 64},
    ]
    alerts, invalid = decode_alerts(_batch(*bad, *good))
    assert len(invalid) == len(bad)
    assert [str(a.alert_id) for a in alerts] == [m["alert_id"] for m in good]


def test_event_refs_are_bounded_to_what_their_parts_allow():
    """An event ref is `institution:event_id`, so no longer than the longest of each: the notifier keeps an
    alert's first trigger in its warning's episode (VARCHAR(200)) and each payment's ref (VARCHAR(200)),
    where a longer one would fail its batch at every attempt. Refused by the scorer's own `Alert` too: the
    scorer cannot write one (its inputs' ids are bounded alike)."""
    longest = event_ref("b" * INSTITUTION_ID_MAX, "e" * EVENT_ID_MAX)
    too_long = longest + "e"
    payment = {"event_ref": longest, "amount": "5.00", "occurred_at": OLD_MESSAGE["event_time"]}
    bad = [
        {**OLD_MESSAGE, "triggering_event_ids": [too_long]},
        {**OLD_MESSAGE, "triggering_event_ids": ["bank-a:t1"] * (MAX_TRIGGERS + 1)},
        {**OLD_MESSAGE, "payments": [{**payment, "event_ref": too_long}]},
    ]
    alert_id = str(uuid.uuid4())
    good = {**OLD_MESSAGE, "alert_id": alert_id, "triggering_event_ids": [longest] * MAX_TRIGGERS}
    alerts, invalid = decode_alerts(_batch(*bad, {**good, "payments": [payment]}))
    assert [detail.split(":")[0] for _, detail in invalid] == [
        "triggering_event_ids.0",
        "triggering_event_ids",
        "payments.0.event_ref",
    ]
    assert [str(a.alert_id) for a in alerts] == [alert_id]
    for message in bad:
        with pytest.raises(ValidationError):
            alert_adapter.validate_json(orjson.dumps(message))
    # The longest episode the notifier makes fits its column.
    longest_kind = max(get_args(Typology), key=len)
    episode = episode_of(alert_adapter.validate_python({**good, "typology": longest_kind}))
    column = CitizenWarning.__table__.c.episode.type
    assert isinstance(column, String) and column.length is not None and len(episode) <= column.length


def test_consumers_refuse_payments_whose_sum_no_column_holds():
    """Each payment's amount is valid (below 10^12), but 200 of them sum past NUMERIC(15, 2), which holds
    what the consumers make of the sum: the warning's amount at risk, an alert's merged one, a case's loss."""
    payment = {"amount": "999999999999.99", "occurred_at": OLD_MESSAGE["event_time"]}
    payments = [{**payment, "event_ref": f"bank-a:t{i}"} for i in range(MAX_PAYMENTS)]
    fitting = str(uuid.uuid4())
    alerts, invalid = decode_alerts(
        _batch(
            {**OLD_MESSAGE, "payments": payments},
            {**OLD_MESSAGE, "alert_id": fitting, "payments": payments[:10]},
        )
    )
    assert [detail for _, detail in invalid] == [
        "payments: Value error, their sum is 10^13 or more, past what the consumers' NUMERIC(15, 2) holds"
    ]
    assert [str(a.alert_id) for a in alerts] == [fitting]  # 9,999,999,999,999.90 in all
