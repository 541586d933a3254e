"""The simulator's institutions and API keys: created when missing, kept in `.local/simulator/keys.json`,
re-issued when the database no longer knows them (after a reset)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.credentials import create_institution, issue_key, parse_key
from services.institutions.models import ApiCredential, Institution
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.errors import NotAuthenticated
from services.simulator.model import INSTITUTIONS

DEFAULT_KEYS = Path(".local/simulator/keys.json")
KIND_NAMES = {"telecom": "Telecom", "bank": "Bank", "payment": "Payment provider"}
NAMES = {i: f"{KIND_NAMES[kind]} {i[-1].upper()} (simulated)" for i, kind in INSTITUTIONS.items()}


def load_keys(path: Path = DEFAULT_KEYS) -> dict[str, str]:
    if not path.exists():
        return {}
    keys: dict[str, str] = json.loads(path.read_text())
    return keys


def save_keys(keys: dict[str, str], path: Path = DEFAULT_KEYS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # The keys are secrets: readable by the owner only, and replaced atomically.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out, indent=2, sort_keys=True)
    tmp.replace(path)


async def provision(database_url: str, path: Path = DEFAULT_KEYS) -> dict[str, str]:
    """Ensure every simulated institution exists with a live key; return the keys by institution."""
    keys = load_keys(path)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            for institution, kind in INSTITUTIONS.items():
                found = await session.get(Institution, institution)
                if found is None:
                    await create_institution(
                        session, institution_id=institution, kind=kind, name=NAMES[institution]
                    )
                elif found.kind != kind:
                    raise ValueError(
                        f"institution {institution} exists with kind {found.kind}, expected {kind}"
                    )
                if not await _live(session, keys.get(institution), institution):
                    keys[institution] = await issue_key(session, institution_id=institution)
    finally:
        await engine.dispose()
    save_keys(keys, path)
    return keys


async def _live(session: AsyncSession, raw: str | None, institution: str) -> bool:
    """The saved key is still in the database, unrevoked, for this institution (else re-issue it)."""
    if raw is None:
        return False
    try:
        key_id, _ = parse_key(raw)
    except NotAuthenticated:
        return False
    row = (
        await session.execute(
            select(ApiCredential.institution_id).where(
                ApiCredential.key_id == key_id, ApiCredential.revoked_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    return row == institution
