"""Production mode cannot be dodged: the environment is one of three words in any case, an unknown word
refuses to start, and production refuses every service's development secrets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from deploy.local.common import REPO_ROOT
from services.blocklist.app import build as build_blocklist
from services.console.app import build as build_console
from services.console.settings import ConsoleSettings
from services.coordination.app import build as build_coordination
from services.ingest.app import build as build_ingest
from services.kit.settings import DEV_SECRETS_KEY, CommonSettings, Environment
from services.notifier.app import build as build_notifier
from services.notifier.settings import NotifierSettings

SECRET = "a-real-secret-of-this-deployment-0123456789"


@pytest.mark.parametrize("word", ["production", "Production", "PRODUCTION", " production "])
def test_production_in_any_case_is_production(word: str):
    common = CommonSettings(environment=word)
    assert common.environment is Environment.PRODUCTION
    with pytest.raises(ValueError, match="STOPLINE_PSEUDONYM_KEY"):
        common.check_production_secrets()


@pytest.mark.parametrize("word", ["prod", "staging", "", "production!"])
def test_an_unknown_environment_refuses_to_start(word: str):
    with pytest.raises(ValidationError, match="environment"):
        CommonSettings(environment=word)


def test_the_environment_is_read_from_the_environment_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STOPLINE_ENVIRONMENT", "PRODUCTION")
    assert CommonSettings().environment is Environment.PRODUCTION
    monkeypatch.setenv("STOPLINE_ENVIRONMENT", "prod")
    with pytest.raises(ValidationError):
        CommonSettings()


def _production(**extra: Any) -> CommonSettings:
    key = "c2VhbGluZy1rZXktb2YtdGhpcy1kZXBsb3ltZW50ISE="  # 32 bytes, base64
    return CommonSettings(
        **{"environment": "Production", "pseudonym_key": SECRET, "kafka_password": SECRET, "secrets_key": key}
        | extra
    )


def test_production_refuses_the_development_kafka_password():
    # Empty means the local stack's password, derived from a public key (streams.connection).
    key = "c2VhbGluZy1rZXktb2YtdGhpcy1kZXBsb3ltZW50ISE="
    with pytest.raises(ValueError, match="STOPLINE_KAFKA_PASSWORD"):
        CommonSettings(
            environment="production", pseudonym_key=SECRET, secrets_key=key
        ).check_production_secrets()
    CommonSettings(
        environment="production", pseudonym_key=SECRET, kafka_password=SECRET, secrets_key=key
    ).check_production_secrets()


@pytest.mark.parametrize("build", [build_coordination, build_blocklist, build_notifier])
def test_operator_services_refuse_the_development_jwt_secret(build: Any):
    with pytest.raises(ValueError, match="STOPLINE_JWT_PUBLIC_KEY"):
        if build is build_notifier:
            build(_production(), _notifier_secrets())
        else:
            build(_production())


@pytest.mark.parametrize("build", [build_ingest, build_coordination, build_blocklist, build_notifier])
def test_every_service_refuses_the_development_pseudonym_key(build: Any):
    with pytest.raises(ValueError, match="STOPLINE_PSEUDONYM_KEY"):
        build(CommonSettings(environment="PRODUCTION"))


def test_coordination_refuses_the_development_secrets_key():
    # It signs the webhooks, so it opens the secrets sealed under the key; no other service is given it.
    with pytest.raises(ValueError, match="STOPLINE_SECRETS_KEY"):
        build_coordination(_production(secrets_key=DEV_SECRETS_KEY))
    _production(secrets_key=DEV_SECRETS_KEY).check_production_secrets()


def test_the_console_needs_no_kafka_password():
    # It has no Kafka client, and so no principal: production asks it for no Kafka password.
    console = ConsoleSettings(
        session_key="c2VjcmV0LWtleS1vZi10aGlzLWRlcGxveW1lbnQtMDE=",
        dev_sign_in=False,
        oidc_issuer="https://sso.example.org/realms/police",
        oidc_client_secret=SECRET,
        secure_cookies=True,
    )
    app = build_console(CommonSettings(environment="production", pseudonym_key=SECRET), console)
    assert app.title
    with pytest.raises(ValueError, match="STOPLINE_PSEUDONYM_KEY"):
        build_console(CommonSettings(environment="production"), console)


def _notifier_secrets(**override: str) -> NotifierSettings:
    key = "c2VjcmV0LWtleS1vZi10aGlzLWRlcGxveW1lbnQtMDE="  # 32 bytes, base64
    secrets: dict[str, Any] = {
        "sms_secret": SECRET,
        "push_secret": SECRET,
        "payload_key": key,
        "sms_url": "https://sms.example.org/send",
    }
    return NotifierSettings(**{**secrets, **override})


@pytest.mark.parametrize(
    ("left", "variable"),
    [
        ({"sms_secret": NotifierSettings().sms_secret}, "STOPLINE_NOTIFIER_SMS_SECRET"),
        ({"push_secret": NotifierSettings().push_secret}, "STOPLINE_NOTIFIER_PUSH_SECRET"),
        ({"payload_key": NotifierSettings().payload_key}, "STOPLINE_NOTIFIER_PAYLOAD_KEY"),
        ({"sms_secret": ""}, "STOPLINE_NOTIFIER_SMS_SECRET"),
    ],
)
def test_the_notifier_refuses_each_development_secret(left: dict[str, str], variable: str):
    with pytest.raises(ValueError, match=variable):
        build_notifier(_production(), _notifier_secrets(**left))


def test_the_notifier_refuses_to_start_in_production_with_no_channel():
    """Without an SMS gateway or a push provider every warning would go to the phone desk, unsent."""
    with pytest.raises(ValueError, match="STOPLINE_NOTIFIER_SMS_URL or STOPLINE_NOTIFIER_PUSH_URL"):
        _notifier_secrets(sms_url="").check_production_secrets(Environment.PRODUCTION)
    _notifier_secrets(sms_url="", push_url="https://push.example.org/v1").check_production_secrets(
        Environment.PRODUCTION
    )


def test_development_and_test_start_with_development_secrets():
    for word in ("development", "TEST"):
        common = CommonSettings(environment=word)
        common.check_production_secrets()
        NotifierSettings().check_production_secrets(common.environment)


def test_a_secret_from_a_file_is_read_without_its_last_newline(monkeypatch: pytest.MonkeyPatch):
    """`kubectl create secret --from-file` keeps a file's last newline in the env var; the Kafka setup
    job strips it from the password it registers, so a service must too, or every login is refused."""
    monkeypatch.setenv("STOPLINE_KAFKA_PASSWORD", "s3cret-of-this-site\n")
    monkeypatch.setenv("STOPLINE_NOTIFIER_SMS_SECRET", f"{SECRET}\n")
    common = CommonSettings()
    assert common.kafka_password.get_secret_value() == "s3cret-of-this-site"
    assert NotifierSettings().sms_secret == SECRET


@pytest.mark.parametrize(
    ("command", "refused"),
    [
        (
            ["services.coordination.worker"],  # its relay signs webhooks with the sealed secrets
            "STOPLINE_KAFKA_PASSWORD, STOPLINE_PSEUDONYM_KEY, STOPLINE_SECRETS_KEY must be set",
        ),
        (["services.institutions.cli", "reseal"], "STOPLINE_PSEUDONYM_KEY, STOPLINE_SECRETS_KEY must be set"),
        (
            ["services.institutions.cli", "delivery", "bank-a", "--webhook", "https://bank-a.example/hook"],
            "STOPLINE_PSEUDONYM_KEY, STOPLINE_SECRETS_KEY must be set",
        ),
        (["services.institutions.cli", "issue-key", "bank-a"], "STOPLINE_PSEUDONYM_KEY must be set"),
        (["services.migrate", "upgrade"], "STOPLINE_SECRETS_KEY must be set"),  # it seals clear secrets
    ],
)
def test_the_worker_and_the_operators_commands_refuse_development_secrets(command: list[str], refused: str):
    """Started with nothing listening at the database's and Kafka's addresses: the refusal, naming the
    secrets, comes before any connection (one would fail otherwise)."""
    secrets = ("STOPLINE_PSEUDONYM_KEY", "STOPLINE_SECRETS_KEY", "STOPLINE_KAFKA_PASSWORD")
    env = {name: value for name, value in os.environ.items() if name not in secrets} | {
        "STOPLINE_ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql://stopline@127.0.0.1:9/stopline",
        "STOPLINE_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert f"{refused} to secret values in production" in done.stderr
    if command[0] != "services.coordination.worker":  # an operator's command: a one-line error, exit 2
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "command", [["institution", "bank-a", "--kind", "bank"], ["institutions", "bank-a:bank"]]
)
def test_an_institution_is_not_given_the_public_development_password_in_production(command: list[str]):
    """Refused before anything reaches Kafka (nothing listens at its address)."""
    env = os.environ | {"STOPLINE_ENVIRONMENT": "production", "STOPLINE_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "streams.acls", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "in production an institution's password comes from --password-file" in done.stderr


# What a production start is given for each variable it asks for (any other: a secret of the site's own).
PRODUCTION_VALUES = {
    "STOPLINE_SECRETS_KEY": "c2VhbGluZy1rZXktb2YtdGhpcy1kZXBsb3ltZW50ISE=",  # 32 bytes, base64
    "STOPLINE_NOTIFIER_PAYLOAD_KEY": "c2VjcmV0LWtleS1vZi10aGlzLWRlcGxveW1lbnQtMDE=",
    "STOPLINE_CONSOLE_SESSION_KEY": "c2VjcmV0LWtleS1vZi10aGlzLWRlcGxveW1lbnQtMDE=",
    "STOPLINE_JWT_JWKS_URL": "https://sso.example.org/realms/police/certs",
    "STOPLINE_JWT_PUBLIC_KEY": "",  # the other way, JWKS_URL, is taken
    "STOPLINE_NOTIFIER_SMS_URL": "https://sms.example.org/send",
    "STOPLINE_NOTIFIER_PUSH_URL": "",
    "STOPLINE_CONSOLE_OIDC_ISSUER": "https://sso.example.org/realms/police",
    "STOPLINE_CONSOLE_DEV_SIGN_IN": "false",
    "STOPLINE_CONSOLE_SECURE_COOKIES": "true",
}
STARTS: dict[str, Any] = {
    "ingest": lambda: build_ingest(CommonSettings()),
    "scorer": lambda: CommonSettings().check_production_secrets(),  # all the scorer's start checks
    "coordination": lambda: build_coordination(CommonSettings()),
    "notifier": lambda: build_notifier(CommonSettings(), NotifierSettings()),
    "blocklist": lambda: build_blocklist(CommonSettings()),
    "console": lambda: build_console(CommonSettings(), ConsoleSettings()),
}


@pytest.mark.parametrize("service", STARTS)
def test_every_variable_production_asks_for_is_in_security_md(service: str, monkeypatch: pytest.MonkeyPatch):
    """Started in production with nothing set, each service names what it lacks; given that, it starts (or
    names more). Every name it gave is in security.md's list, which an operator sets up a site from."""
    monkeypatch.setenv("STOPLINE_ENVIRONMENT", "production")
    asked: set[str] = set()
    while True:
        try:
            STARTS[service]()
            break
        except ValueError as refused:
            names = set(re.findall(r"STOPLINE_[A-Z_]+", str(refused))) - asked
            assert names, f"{service} refuses again: {refused}"
            asked |= names
            for name in names:
                monkeypatch.setenv(name, PRODUCTION_VALUES.get(name, SECRET))
    page = (REPO_ROOT / "docs" / "security.md").read_text()
    production = page.split("## Production mode")[1].split("\n## ")[0]
    assert sorted(n for n in asked if f"`{n}`" not in production) == []
