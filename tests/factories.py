"""Builders of test data: institutions with keys, events, scam scenarios."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.features.vector import FEATURE_NAMES
from models.training.table import FeatureTable
from services.institutions import credentials
from services.kit.db import unit_of_work
from services.kit.tokens import issue
from streams.schemas.alerts import Alert, Subject, incident_id_for

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def phone() -> str:
    """A fresh Chinese mobile number, so tests never share a person's state."""
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def shows_phone(text: str, phone: str) -> bool:
    """Whether `text` shows the number, whole (with or without +86) or by its last four digits as a masked
    number does ("尾号1234", "****1234"); the same four digits inside a longer run of letters and digits
    (the hotline 96110, an id) are not the number."""
    national = (phone, phone.removeprefix("+"), phone.removeprefix("+86"))  # +8613912345678, 86..., 139...
    last_four = rf"(?<![0-9A-Za-z]){re.escape(phone[-4:])}(?![0-9A-Za-z])"
    return any(n in text for n in national) or re.search(last_four, text) is not None


def account(prefix: str = "ACC") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


async def institution(sessions: async_sessionmaker[AsyncSession], kind: str) -> tuple[str, dict[str, str]]:
    """Create an institution; return its id and the headers that authenticate as it."""
    ident = unique(kind)
    async with unit_of_work(sessions) as session:
        await credentials.create_institution(session, institution_id=ident, kind=kind, name=ident)
        key = await credentials.issue_key(session, institution_id=ident)
    return ident, {"Authorization": f"Bearer {key}"}


def officer(role: str = "operator", sub: str | None = None, unit: str = "changji-psb") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(subject=sub or unique(role), role=role, unit=unit)}"}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def call(
    callee: str, *, caller: str | None = None, start: datetime, minutes: float, reported: bool = False
) -> dict[str, Any]:
    return {
        "type": "telecom.call",
        "event_id": unique("call"),
        "occurred_at": iso(start),
        "caller": caller or phone(),
        "callee": callee,
        "duration_s": int(minutes * 60),
        "caller_reported": reported,
    }


def transfer(
    payer_phone: str,
    *,
    payer_account: str,
    payee_account: str,
    amount: str,
    at: datetime,
    payee_bank: str = "bank-x",
) -> dict[str, Any]:
    return {
        "type": "bank.transfer",
        "event_id": unique("tr"),
        "occurred_at": iso(at),
        "payer_account": payer_account,
        "payer_phone": payer_phone,
        "payee_account": payee_account,
        "payee_institution": payee_bank,
        "amount": amount,
    }


def now() -> datetime:
    return datetime.now(UTC)


def minutes_ago(n: float) -> datetime:
    return now() - timedelta(minutes=n)


def alert(**fields: Any) -> Alert:
    """A valid alert message about nobody in particular; the fields given replace the defaults."""
    at = now()
    defaults: dict[str, Any] = {
        "alert_id": uuid.uuid4(),
        "typology": "call_then_transfer",
        "score": 0.9,
        "reasons": ["r"],
        "recommended_actions": ["warn_citizen"],
        "subject": Subject(),
        "triggering_event_ids": [f"bank-a:{unique('tr')}"],
        "event_time": at,
        "created_at": at,
        "scorer_version": "t",
    }
    return Alert(**{**defaults, **fields})


def victim_alert(
    *, mule_bank: str, mule: str, amount: str, score: float = 0.93, victim_phone: str | None = None
) -> Alert:
    """A victim's payment after a suspicious call, into `mule` at `mule_bank`, as the scorer alerts it."""
    return alert(
        typology="call_then_transfer",
        score=score,
        reasons=[
            "the person had a 41-minute call from a number that had never called before "
            "and paid 3 min after the call ended",
            "the payee account received money from 3 different people in the last hour",
        ],
        recommended_actions=["warn_citizen", "notify_police", "recommend_stop_payment"],
        subject=Subject(
            phone=victim_phone or phone(),
            account=account("V"),
            institution="victim-bank",
            payee_account=mule,
            payee_institution=mule_bank,
        ),
        triggering_event_ids=[f"telecom-a:{unique('call')}", f"victim-bank:{unique('tr')}"],
        amount_at_risk=amount,
        scorer_version="test",
        incident_id=incident_id_for(mule_bank, mule),
    )


def feature_table(X: np.ndarray, label: np.ndarray) -> FeatureTable:
    """A feature table over FEATURE_NAMES: one row a minute, the scam rows in one episode."""
    times = np.arange(len(label), dtype=np.float64) * 60
    return FeatureTable(
        FEATURE_NAMES,
        X,
        label,
        times,
        times.copy(),
        np.array([f"e{i}" for i in range(len(label))]),
        np.array(["ep" if y else "" for y in label]),
        np.array(["t" if y else "" for y in label]),
    )


def tiny_table(n: int = 600, seed: int = 0) -> FeatureTable:
    """A random feature table whose label follows the first feature (a model can learn it)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    label = (X[:, 0] + 0.3 * rng.normal(size=n) > 1.2).astype(np.int8)
    return feature_table(X, label)
