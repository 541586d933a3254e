"""A stand-in child process for the supervisor's tests.

`python -m tests.deploy.child <seconds> <exit code>` lives that long, then exits with that code.
`python -m tests.deploy.child serve <port> <delay>` answers `/health/live` on the port from `delay`
seconds after its start (it is "starting" until then) until it is stopped.
`python -m tests.deploy.child kit <port>` is an empty service run as every service is (`services.kit.http`);
`GET /hang` blocks its event loop.
`python -m tests.deploy.child peer <mine> <theirs>` writes `<mine>.ready` once it takes SIGTERM; told to
stop, it writes `<mine>` and waits up to 10 s for `<theirs>`: it exits 0 if the other was told too, else 1.
"""

import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class _Live(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200 if self.path == "/health/live" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _kit(port: int) -> None:
    import types

    from fastapi import FastAPI

    from services.kit.http import create_app, serve

    async def ready() -> dict[str, str]:
        return {}

    def build(common: object, _: object) -> FastAPI:
        app = create_app(title="child", health=ready)

        @app.get("/hang")
        async def hang_the_loop() -> None:
            time.sleep(3600)  # noqa: ASYNC251 - the event loop blocked, as a hung service's

        return app

    settings = types.SimpleNamespace(host="127.0.0.1", port=port)
    serve(build, settings, service="child")


def _peer(mine: str, theirs: str) -> None:
    from pathlib import Path

    def told(*_: object) -> None:
        Path(mine).touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if Path(theirs).exists():
                sys.exit(0)
            time.sleep(0.05)
        sys.exit(1)

    signal.signal(signal.SIGTERM, told)
    Path(f"{mine}.ready").touch()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    if sys.argv[1] == "peer":
        _peer(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "kit":
        _kit(int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1] == "serve":
        time.sleep(float(sys.argv[3]))
        HTTPServer(("127.0.0.1", int(sys.argv[2])), _Live).serve_forever()
    time.sleep(float(sys.argv[1]))
    sys.exit(int(sys.argv[2]))
