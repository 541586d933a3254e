"""The compose site: Docker Compose itself (v2, `docker compose config`) accepts it with the secrets
make-secrets.sh writes; three KRaft brokers with SASL/SCRAM and the StandardAuthorizer; every service
with its readiness as healthcheck, after the migration and the Kafka setup; secrets only as files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, docker_compose, run, settings_read_by

SITE = DEPLOY / "compose"
SERVICES = ("ingest", "scorer-persons", "scorer-accounts", "coordination", "notifier", "blocklist", "console")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the site as an operator prepares it: secrets made, settings copied from the example."""
    where = tmp_path_factory.mktemp("site") / "compose"
    shutil.copytree(SITE, where, ignore=shutil.ignore_patterns("secrets", "site.env"))
    run("/bin/sh", where / "make-secrets.sh")
    shutil.copy(where / "site.env.example", where / "site.env")
    return where


@pytest.fixture(scope="module")
def config(site: Path) -> dict[str, Any]:
    run(docker_compose(), "config", "--quiet", cwd=site)
    return yaml.safe_load(run(docker_compose(), "config", "--format", "yaml", cwd=site))


def test_make_secrets_writes_every_secret_the_site_mounts(site: Path, config: dict[str, Any]):
    for name, secret in config["secrets"].items():
        path = Path(secret["file"])
        assert path.is_file() and path.read_text(), name
        # Readable by the containers' users (Compose bind-mounts the file as it is), reached only through
        # directories that are the operator's alone.
        assert path.stat().st_mode & 0o444 == 0o444, f"{name} is not readable in its containers"
        assert all(d.stat().st_mode & 0o077 == 0 for d in (site / "secrets", path.parent)), name
    url = (site / "secrets" / "database-url").read_text()
    assert (
        url.endswith("@postgres:5432/stopline")
        and (site / "secrets" / "postgres-password").read_text() in url
    )
    before = (site / "secrets" / "kafka" / "stopline-admin").read_text()
    run("/bin/sh", site / "make-secrets.sh")  # a second run keeps what a running site uses
    assert (site / "secrets" / "kafka" / "stopline-admin").read_text() == before


def test_three_kafka_nodes_with_scram_and_the_authorizer(site: Path, config: dict[str, Any]):
    nodes = [config["services"][f"kafka-{n}"] for n in (1, 2, 3)]
    for n, node in enumerate(nodes, start=1):
        assert node["image"] == "apache/kafka:4.1.1"
        assert node["environment"]["KAFKA_NODE_ID"] == str(n)
        assert node["environment"]["KAFKA_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert "healthcheck" in node
        assert "ports" not in node  # Kafka is reached on the site's internal network only
    start = (site / "kafka" / "start.sh").read_text()
    for line in (
        "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        "connections.max.reauth.ms=300000",  # a revoked password stops connections already open
        "min.insync.replicas=2",
        "default.replication.factor=3",
    ):
        assert f"\n{line}\n" in start, line
    assert config["networks"]["kafka"]["internal"] and config["networks"]["db"]["internal"]


def test_every_service_is_there_ready_checked_and_after_the_setup_jobs(config: dict[str, Any]):
    services = config["services"]
    assert set(SERVICES) | {"kafka-1", "kafka-2", "kafka-3", "postgres", "migrate", "kafka-setup"} == set(
        services
    )
    assert services["migrate"]["command"] == ["services.migrate", "upgrade"]
    assert services["kafka-setup"]["command"][:2] == ["streams.acls", "services"]
    for job in ("migrate", "kafka-setup"):
        assert services[job]["restart"] == "no"
    for name in SERVICES:
        service = services[name]
        assert service["image"].startswith("stopline")
        assert "/health/ready" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] and service["cap_drop"] == ["ALL"]
        after = {s: c["condition"] for s, c in service["depends_on"].items()}
        if name == "console":  # it works through the coordination and notifier APIs
            assert after == {"coordination": "service_healthy", "notifier": "service_healthy"}
        else:
            done = "service_completed_successfully"
            assert after == {"migrate": done, "kafka-setup": done}
        env = service["environment"]
        assert env[f"STOPLINE_{name.split('-')[0].upper()}_PORT"] == "8080"
        assert env["STOPLINE_INSTANCE"].startswith(name)


def test_every_setting_the_site_gives_is_one_the_process_reads(site: Path, config: dict[str, Any]):
    # site.env goes to every service (each reads its own part); the rest is each container's own.
    shared = {
        line.split("=", 1)[0]
        for line in (site / "site.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert shared <= set().union(*(settings_read_by(name) for name in SERVICES))
    for name in (*SERVICES, "migrate", "kafka-setup"):
        # The entrypoint reads NAME_FILE into NAME.
        given = {variable.removesuffix("_FILE") for variable in config["services"][name]["environment"]}
        assert ("STOPLINE_KAFKA_BOOTSTRAP" in given) == (name not in ("console", "migrate")), name
        assert given - shared - settings_read_by(name) == set(), name


def test_no_secret_is_written_in_the_files(site: Path, config: dict[str, Any]):
    secrets = {p.read_text() for p in (site / "secrets").rglob("*") if p.is_file()}
    for name, service in config["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            assert value not in secrets, f"{name}: {variable} holds a secret"
            if any(word in variable for word in ("PASSWORD", "SECRET", "_KEY", "DATABASE_URL")):
                assert variable.endswith("_FILE"), f"{name}: {variable} must come from a file"
    text = (SITE / "compose.yaml").read_text() + (SITE / "site.env.example").read_text()
    assert not any(secret in text for secret in secrets)


@pytest.mark.integration
def test_a_kafka_node_of_the_site_formats_its_storage_with_kafkas_own_tool(site: Path, tmp_path: Path):
    """kafka/start.sh run against the local stack's Kafka jars (the version the image pins): Kafka's
    StorageTool reads the configuration the script writes (KafkaConfig checks every setting) and
    formats the storage with the broker's and administrator's SCRAM credentials; a restart keeps it."""
    from deploy.local import kafka

    dist = tmp_path / "kafka"
    (dist / "bin").mkdir(parents=True)
    storage = dist / "bin" / "kafka-storage.sh"
    storage.write_text(
        f'#!/bin/sh\nexec "{kafka.java()}" -cp "{kafka.classpath()}" kafka.tools.StorageTool "$@"\n'
    )
    server = dist / "bin" / "kafka-server-start.sh"  # the broker itself is not started here
    server.write_text('#!/bin/sh\necho "would start with $1"\n')
    for script in (storage, server):
        script.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_NODE_ID": "2",
        "KAFKA_VOTERS": "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093",
        "STOPLINE_KAFKA_DIST": str(dist),
        "STOPLINE_SECRETS_DIR": str(site / "secrets"),
        "STOPLINE_KAFKA_DATA": str(tmp_path / "data"),
        "STOPLINE_KAFKA_WORK": str(tmp_path),
    }
    for _ in range(2):  # the first start formats; a restart finds the storage formatted and keeps it
        out = run("/bin/sh", site / "kafka" / "start.sh", env=env)
        assert f"would start with {tmp_path / 'server.properties'}" in out
    meta = dict(
        line.split("=", 1)
        for line in (tmp_path / "data" / "meta.properties").read_text().splitlines()
        if "=" in line
    )
    assert meta["node.id"] == "2"
    assert meta["cluster.id"] == (site / "secrets" / "kafka-cluster-id").read_text()
    assert (tmp_path / "data" / "bootstrap.checkpoint").stat().st_size > 0  # the SCRAM credentials' records
