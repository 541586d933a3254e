"""`make run`: a person at each simulated bank and payment provider who signs in to the console's
institution portal (user `staff`), with a password made fresh for the run and printed once."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import select

from services.institutions import users
from services.institutions.models import Institution, InstitutionUser
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.errors import DomainError
from services.kit.settings import CommonSettings

USERNAME = "staff"


async def _provide(institutions: list[str], password: str) -> list[str]:
    engine = make_engine(CommonSettings().database_url, pool_size=1)
    done: list[str] = []
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            for ident in institutions:
                if await session.get(Institution, ident) is None:
                    continue  # the simulator has not provisioned it yet
                found = await session.execute(
                    select(InstitutionUser.id).where(
                        InstitutionUser.institution_id == ident, InstitutionUser.username == USERNAME
                    )
                )
                if found.first() is None:
                    await users.add_user(session, institution_id=ident, username=USERNAME)
                await users.set_password(session, institution_id=ident, username=USERNAME, password=password)
                done.append(ident)
    finally:
        await engine.dispose()
    return done


class Staff:
    """Tries on each round of `make run`'s loop until every institution exists; then says how to sign in."""

    def __init__(self, institutions: list[str]) -> None:
        self.waiting = list(institutions)
        self.password = secrets.token_urlsafe(9)
        self.ready: list[str] = []

    def poll(self) -> list[str]:
        """The institutions newly given a user this round."""
        if not self.waiting:
            return []
        try:
            done = asyncio.run(_provide(self.waiting, self.password))
        except (OSError, DomainError):
            return []
        self.waiting = [i for i in self.waiting if i not in done]
        self.ready += done
        return done
