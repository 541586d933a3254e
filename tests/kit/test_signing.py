"""Signed requests (`services.kit.signing`): what is refused, and why."""

from __future__ import annotations

import time

from services.kit import signing


def test_a_signature_header_with_a_non_ascii_character_is_a_bad_signature():
    now = time.time()
    for header in ("v1=\xff", "v1=é," + signing.signature("s", int(now), b"{}")):
        problem = signing.refusal(
            "s", timestamp=str(int(now)), signatures=header, body=b"{}", now=now, tolerance_s=300
        )
        assert problem == "bad signature"


def test_any_of_the_active_secrets_signature_is_taken():
    now = time.time()
    header = signing.sign(["old", "new"], int(now), b"{}")
    for secret in ("old", "new"):
        assert (
            signing.refusal(
                secret, timestamp=str(int(now)), signatures=header, body=b"{}", now=now, tolerance_s=300
            )
            is None
        )
