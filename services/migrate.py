"""Applies the database migrations: `python -m services.migrate [upgrade|revision -m MSG]`."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

from services.blocklist import models as _blocklist  # noqa: F401
from services.coordination.alerts import models as _alerts  # noqa: F401 - registers tables
from services.coordination.audit import models as _audit  # noqa: F401
from services.coordination.cases import models as _cases  # noqa: F401
from services.coordination.delivery import models as _delivery  # noqa: F401
from services.coordination.instructions import models as _instructions  # noqa: F401
from services.coordination.money import models as _money  # noqa: F401
from services.ingest import models as _ingest  # noqa: F401
from services.institutions import models as _institutions  # noqa: F401
from services.kit.db import Base
from services.kit.settings import CommonSettings
from services.notifier.delivery import models as _deliveries  # noqa: F401
from services.notifier.desk import models as _desk  # noqa: F401
from services.notifier.warnings import models as _warnings  # noqa: F401

target_metadata = Base.metadata
HERE = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision. Runs in its own thread, so callers inside an event
    loop (tests, services) can use it: the Alembic environment starts its own loop."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            # "heads": each domain (coordination, notifier, ...) branches its migrations from the
            # foundation, so independent schema changes never fight over one linear history.
            command.upgrade(alembic_config(database_url), "heads")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description="database migrations")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("upgrade")
    rev = sub.add_parser("revision")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args()
    url = CommonSettings().database_url
    if args.command == "revision":
        command.revision(alembic_config(url), message=args.message, autogenerate=True)
    else:
        upgrade(url)


if __name__ == "__main__":
    main()
