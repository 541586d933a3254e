"""The console's client of the Stopline APIs: every call carries the signed-in person's credential,
so the API applies to the console exactly the checks it applies to any other client."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The API said no (4xx) or could not be reached (status 503): `message` is the API's own."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class Api:
    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        try:
            response = await self.client.request(
                method, self.base_url + path, json=json, params=params, headers=self.headers
            )
        except httpx.HTTPError as exc:
            raise ApiError(
                503, "unavailable", f"{self.base_url} did not answer: {type(exc).__name__}"
            ) from exc
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            status = response.status_code if response.status_code < 500 else 503
            raise ApiError(
                status,
                str(error.get("code", "error")),
                str(error.get("message", response.reason_phrase)),
                error.get("details"),
            )
        return body

    async def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None and v != ""}
        return await self.call("GET", path, params=clean)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.call("POST", path, json=json)
