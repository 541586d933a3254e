"""Run the simulated banks and payment providers: `python -m services.banksim`.

Creates the institutions when missing (same ids as the traffic simulator), gives them fresh API keys,
points the webhook institutions at this process's receiver, and answers instructions until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvicorn

from services.banksim import webhook
from services.banksim.bank import SimBanks
from services.banksim.settings import BanksimSettings
from services.institutions import credentials, delivery
from services.institutions.models import Institution
from services.kit.collector import freeze_startup
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.logging import configure_logging
from services.kit.settings import CommonSettings
from services.simulator.model import INSTITUTIONS
from services.simulator.provision import NAMES


async def provision(
    common: CommonSettings, settings: BanksimSettings
) -> tuple[dict[str, str], dict[str, str]]:
    """API keys of every simulated institution, and webhook secrets of the webhook ones."""
    engine = make_engine(common.database_url, pool_size=1)
    keys: dict[str, str] = {}
    secrets: dict[str, str] = {}
    base = f"http://{settings.webhook_host}:{settings.webhook_port}/webhooks"
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            for ident in settings.institutions:
                if await session.get(Institution, ident) is None:
                    # Named and kinded as the simulator does, whichever of the two creates it first.
                    kind = INSTITUTIONS.get(ident, "payment" if ident.startswith("pay") else "bank")
                    name = NAMES.get(ident, ident)
                    await credentials.create_institution(session, institution_id=ident, kind=kind, name=name)
                keys[ident] = await credentials.issue_key(session, institution_id=ident)
                is_hook = ident in settings.webhook_institutions
                secret = await delivery.configure(
                    session,
                    institution_id=ident,
                    kafka=not is_hook,
                    webhook_url=f"{base}/{ident}" if is_hook else None,
                    rotate_secret=is_hook,
                )
                if secret:
                    secrets[ident] = secret
    finally:
        await engine.dispose()
    return keys, secrets


async def main() -> None:
    common, settings = CommonSettings(), BanksimSettings()
    configure_logging(service="banksim", level=common.log_level, pseudonym_key=common.pseudonym_key)
    keys, secrets = await provision(common, settings)
    banks = SimBanks(common, settings, api_keys=keys, webhook_secrets=secrets)
    await banks.start()
    freeze_startup()
    server = uvicorn.Server(
        uvicorn.Config(
            webhook.app(banks),
            host=settings.webhook_host,
            port=settings.webhook_port,
            log_config=None,
            access_log=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serving, 10)
    await banks.stop()


if __name__ == "__main__":
    asyncio.run(main())
