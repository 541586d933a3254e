"""Console sessions: sealed, so a changed or foreign cookie is no session; they end at their absolute
end and when idle; and a form posted without the session's CSRF token changes nothing."""

from __future__ import annotations

import base64
import time
from dataclasses import asdict, replace

import httpx
import orjson
import pytest

from services.console.session import COOKIE, Sessions, User
from services.console.settings import DEV_SESSION_KEY
from tests import factories as f
from tests.console.conftest import Site

OTHER_KEY = base64.b64encode(b"k" * 32).decode()


def _sessions(key: str = DEV_SESSION_KEY) -> Sessions:
    return Sessions(key, ttl_s=3600, idle_s=600)


def _user(sessions: Sessions):
    return sessions.start(
        kind="officer",
        subject="o-1",
        role="operator",
        unit="u",
        token="t",
        credential_ends_at=time.time() + 60,
    )


def test_a_session_reads_back_only_from_its_own_sealed_cookie():
    sessions = _sessions()
    user = _user(sessions)
    cookie = sessions.seal(user)
    assert sessions.open(cookie) == user
    assert "o-1" not in base64.urlsafe_b64decode(cookie).decode(errors="replace")  # sealed, not signed only
    tampered = cookie[:-6] + ("A" if cookie[-6] != "A" else "B") + cookie[-5:]
    assert sessions.open(tampered) is None
    assert _sessions(OTHER_KEY).open(cookie) is None  # another deployment's key
    assert sessions.open("not a cookie") is None and sessions.open(None) is None


def test_a_session_ends_with_its_credential_and_when_idle():
    sessions = _sessions()
    user = _user(sessions)
    assert user.ends_at <= time.time() + 60  # the credential ends before the session TTL
    assert sessions.open(sessions.seal(replace(user, ends_at=time.time() - 1))) is None
    assert sessions.open(sessions.seal(replace(user, seen_at=time.time() - 601))) is None
    touched = sessions.touched(replace(user, seen_at=time.time() - 61))
    assert touched is not None and touched.seen_at > time.time() - 5


@pytest.mark.integration
async def test_a_form_without_the_csrf_token_changes_nothing(site: Site):
    async with httpx.AsyncClient(base_url=site.console, timeout=10) as browser:
        signed = await browser.post(
            "/signin/officer", data={"subject": "officer-csrf", "unit": "changji-psb", "role": "operator"}
        )
        assert signed.status_code == 303
        incident = "0123456789abcdef0123"
        forged = await browser.post(
            f"/incidents/{incident}/status",
            data={"status": "dismissed", "csrf": "not-the-token"},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 403 and "reload the page" in forged.json()["message"]
        note = await browser.post(f"/cases/{f.unique('x')}/notes", data={"text": "hi"})
        assert note.status_code == 422  # not even a well-formed case id: refused before anything


@pytest.mark.integration
async def test_an_action_of_the_pages_script_keeps_the_session_alive_and_one_after_it_ended_is_told_so(
    site: Site,
):
    sessions = _sessions()  # the test console's key (its idle limit is its own: 30 minutes)
    async with httpx.AsyncClient(base_url=site.console, timeout=10) as browser:
        signed = await browser.post(
            "/signin/officer", data={"subject": "officer-idle", "unit": "changji-psb", "role": "operator"}
        )
        assert signed.status_code == 303
        user = sessions.open(browser.cookies[COOKIE])
        assert user is not None
        action = {"status": "dismissed", "csrf": user.csrf}
        json = {"Accept": "application/json"}

        browser.cookies.set(COOKIE, sessions.seal(replace(user, seen_at=time.time() - 120)))
        acted = await browser.post("/incidents/0123456789abcdef0123/status", data=action, headers=json)
        renewed = sessions.open(acted.cookies.get(COOKIE))  # whatever the API said of the incident
        assert renewed is not None and renewed.seen_at > time.time() - 10

        browser.cookies.set(COOKIE, sessions.seal(replace(user, seen_at=time.time() - 31 * 60)))
        late = await browser.post("/incidents/0123456789abcdef0123/status", data=action, headers=json)
        assert late.status_code == 401 and late.json()["signin"] == "/signin" and not late.json()["ok"]
        live = await browser.get("/live/queue", headers={"Accept": "text/event-stream"})
        assert live.status_code == 200 and "event: signedout" in live.text


@pytest.mark.integration
async def test_a_sign_in_posted_from_another_site_is_refused(site: Site):
    """Login CSRF: another site's page posting the sign-in form would sign the person's browser in as the
    attacker (whose portal then gets what the person types). The browser names the page it posts from."""
    inst, username, password = await site.institution_user("bank")
    forms = {
        "/signin/institution": {"institution": inst, "username": username, "password": password},
        "/signin/officer": {"subject": "o-cross", "unit": "changji-psb", "role": "operator"},
    }
    for url, form in forms.items():
        for sender in (
            {"Origin": "https://attacker.example", "Referer": "https://attacker.example/x"},
            {"Origin": "null"},  # a sandboxed frame
            {"Referer": "https://attacker.example/x"},
        ):
            async with httpx.AsyncClient(base_url=site.console, timeout=10) as browser:
                forged = await browser.post(url, data=form, headers=sender)
                assert forged.status_code == 403 and 'data-testid="signin-error"' in forged.text
                assert COOKIE not in browser.cookies
        async with httpx.AsyncClient(base_url=site.console, timeout=10) as browser:
            own = await browser.post(url, data=form, headers={"Origin": site.console})
            assert own.status_code == 303 and COOKIE in browser.cookies


def _sealed_from_before(sessions: Sessions, user: User) -> str:
    """The cookie of `user` as a console from before officers' sessions at the API sealed it (no
    `session_id`)."""
    fields = {k: v for k, v in asdict(user).items() if k != "session_id"}
    sealed = sessions.sealer.seal(orjson.dumps(fields), context=COOKIE.encode())
    return base64.urlsafe_b64encode(sealed).decode()


@pytest.mark.integration
async def test_a_cookie_from_before_the_upgrade_keeps_institution_users_and_tells_officers_why(site: Site):
    sessions = _sessions()
    inst, username, password = await site.institution_user("bank")
    signins = {
        "/signin/institution": {"institution": inst, "username": username, "password": password},
        "/signin/officer": {"subject": f.unique("officer-old"), "unit": "changji-psb", "role": "operator"},
    }
    old: dict[str, str] = {}
    for url, form in signins.items():
        async with httpx.AsyncClient(base_url=site.console, timeout=10) as browser:
            assert (await browser.post(url, data=form)).status_code == 303
            user = sessions.open(browser.cookies[COOKIE])
            assert user is not None
            old[url] = _sealed_from_before(sessions, user)

    cookies = {COOKIE: old["/signin/institution"]}
    async with httpx.AsyncClient(base_url=site.console, cookies=cookies, timeout=10) as staff:
        portal = await staff.get("/portal")
        assert portal.status_code == 200 and username in portal.text

    cookies = {COOKIE: old["/signin/officer"], "stopline_lang": "en"}
    async with httpx.AsyncClient(base_url=site.console, cookies=cookies, timeout=10) as officer:
        queue = await officer.get("/")
        assert queue.status_code == 303 and queue.headers["location"] == "/signin?next=%2F"
        removed = [c for c in queue.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
        assert len(removed) == 1 and "Max-Age=0" in removed[0]  # (so the message is shown once)
        signin = await officer.get(queue.headers["location"])
        assert "The console was upgraded: sign in again" in signin.text
