"""Local token issuer for development and tests:

python -m services.kit.tokens --sub officer-1 --role operator --unit changji-psb
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import jwt

from services.kit.auth import AuthSettings, Role


def issue(
    *, subject: str, role: Role | str, unit: str, ttl_s: int = 8 * 3600, settings: AuthSettings | None = None
) -> str:
    settings = settings or AuthSettings()
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": role,
        "unit": unit,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, settings.secret, algorithm="HS256")


def main() -> None:
    parser = argparse.ArgumentParser(description="issue a development operator token")
    parser.add_argument("--sub", required=True)
    parser.add_argument("--role", required=True, choices=["operator", "supervisor", "auditor"])
    parser.add_argument("--unit", required=True)
    parser.add_argument("--ttl", type=int, default=8 * 3600)
    args = parser.parse_args()
    sys.stdout.write(issue(subject=args.sub, role=args.role, unit=args.unit, ttl_s=args.ttl) + "\n")


if __name__ == "__main__":
    main()
