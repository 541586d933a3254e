"""The FastAPI dependency that authenticates an institution: by its API key (`Bearer slk_...`) or,
where the routes allow people (the console's institution portal), by a user's session (`Bearer sls_...`)."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.institutions import users as institution_users
from services.institutions.credentials import PREFIX, Caller, CredentialVerifier, parse_key
from services.kit.errors import NotAuthenticated
from services.kit.ratelimit import AuthGuard

_bearer = HTTPBearer(auto_error=False)


def institution_dependency(
    verifier: CredentialVerifier,
    *,
    on_reject: Callable[[], None] | None = None,
    users: institution_users.SessionVerifier | None = None,
    guard: AuthGuard | None = None,
) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """`on_reject` is called on every refused key (the ingest API counts them). With `users`, a signed-in
    institution user's session is taken too, with the rights of the institution's key. Requests are
    limited per credential and failed attempts per client address (`guard`)."""
    guard = guard or AuthGuard()

    async def caller(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Caller:
        if refusal := guard.spent(request):
            # Out of failures: a key verified recently is still taken; nothing is looked up for the rest.
            known = verifier.known(creds.credentials) if creds is not None else None
            if creds is None or known is None:
                raise refusal
            guard.succeeded(parse_key(creds.credentials)[0])
            return known
        try:
            if (
                creds is not None
                and users is not None
                and creds.credentials.startswith(institution_users.PREFIX)
            ):
                who = await users.verify(creds.credentials)
                credential = "session:" + creds.credentials.partition(".")[0]
            else:
                if creds is None:
                    raise NotAuthenticated(f"missing API key: send `Authorization: Bearer {PREFIX}...`")
                if not creds.credentials.startswith(PREFIX):
                    # An officer's token, a typo: say what is wrong, not that nothing was sent.
                    raise NotAuthenticated(f"not an institution's API key: it begins `{PREFIX}`")
                who = await verifier.verify(creds.credentials)
                credential = parse_key(creds.credentials)[0]
        except NotAuthenticated:
            if on_reject is not None:
                on_reject()
            guard.failed(request)
            raise
        guard.succeeded(credential)
        return who

    return caller
