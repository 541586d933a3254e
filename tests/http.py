"""Posting as the services' clients do: a 503 is sent again."""

from __future__ import annotations

from typing import Any

import httpx

ATTEMPTS = 3  # in all; a 503 seen this often in a test is a failure to report, not to wait out


async def post_again_on_503(client: httpx.AsyncClient, url: str, **request: Any) -> httpx.Response:
    """`client.post(url, **request)`, the same request sent again on a 503, as a bank or an officer does:
    a 503 applied nothing (the service or its database was away; on a busy machine a transaction may
    outlast its timeout), so sending it again is safe. The answer of the last attempt, whatever it is."""
    for _ in range(ATTEMPTS - 1):
        answer = await client.post(url, **request)
        if answer.status_code != 503:
            return answer
    return await client.post(url, **request)
