"""Applies the database migrations: `python -m services.migrate [upgrade|revision -m MSG]`."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config

from services.blocklist import models as _blocklist  # noqa: F401
from services.coordination.alerts import models as _alerts  # noqa: F401 - registers tables
from services.coordination.cases import models as _cases  # noqa: F401
from services.coordination.delivery import models as _delivery  # noqa: F401
from services.coordination.instructions import models as _instructions  # noqa: F401
from services.coordination.money import models as _money  # noqa: F401
from services.coordination.officers import models as _officers  # noqa: F401
from services.ingest import models as _ingest  # noqa: F401
from services.institutions import models as _institutions  # noqa: F401
from services.kit.audit import models as _audit  # noqa: F401
from services.kit.db import Base
from services.kit.settings import DEV_SECRETS_KEY, CommonSettings, refuse_development_secrets
from services.notifier.delivery import models as _deliveries  # noqa: F401
from services.notifier.desk import models as _desk  # noqa: F401
from services.notifier.warnings import models as _warnings  # noqa: F401

target_metadata = Base.metadata
HERE = Path(__file__).parent / "migrations"
T = TypeVar("T")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision (callers inside an event loop, tests and services, can
    use it: see `in_thread`)."""
    # "heads": each domain (coordination, notifier, ...) branches its migrations from the
    # foundation, so independent schema changes never fight over one linear history.
    in_thread(lambda: command.upgrade(alembic_config(database_url), "heads"))


def in_thread(work: Callable[[], T]) -> T:
    """Run an Alembic command in a thread of its own: the Alembic environment starts its own event
    loop, which cannot run inside the caller's. Its error is raised again here."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description="database migrations")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("upgrade")
    rev = sub.add_parser("revision")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args()
    common = CommonSettings()
    try:
        # A migration seals the webhook secrets a former schema kept in clear: under the public development
        # key they would be as good as clear, and the services (given the real key) could not open them.
        refuse_development_secrets(
            common.environment, {"STOPLINE_SECRETS_KEY": (common.secrets_key, DEV_SECRETS_KEY)}
        )
    except ValueError as exc:
        parser.exit(2, f"error: {exc} (run it where the service's secrets are: docs/deployment.md)\n")
    url = common.database_url
    if args.command == "revision":
        command.revision(alembic_config(url), message=args.message, autogenerate=True)
    else:
        upgrade(url)


if __name__ == "__main__":
    main()
