"""The Helm chart: `helm lint --strict` passes; what `helm template` renders validates (strictly: no
unknown field) against the Kubernetes OpenAPI schemas of the oldest and newest versions it supports
(kubernetes-validate, offline); each service has its probes, resources, disruption budget, stable
instance name and secrets by reference; the hooks migrate and provision Kafka before the services."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import CHART, DASHBOARD, RULES, run, settings_read_by, tool

KUBE_VERSIONS = ("1.27.0", "1.37.0")  # Chart.yaml's kubeVersion floor, and the newest schemas here
SERVICES = ("ingest", "scorer-persons", "scorer-accounts", "coordination", "notifier", "blocklist", "console")
# What a site must give that the chart cannot default: where the officers' token issuer's keys are.
SITE = ("--set", "jwt.jwksUrl=https://sso.example.org/realms/police/protocol/openid-connect/certs")
EVERYTHING = [
    *("--set", "metrics.serviceMonitor.enabled=true"),
    *("--set", "metrics.prometheusRule.enabled=true"),
    *("--set", "metrics.grafanaDashboard.enabled=true"),
    *("--set", "kafka.ca.existingSecret=kafka-ca"),
    *("--set", "jwt.publicKeyConfigMap.name=issuer"),
    *("--set", "image.digest=sha256:" + "a" * 64),
]


def _template(*args: str, kube: str = KUBE_VERSIONS[-1]) -> list[dict[str, Any]]:
    out = run(tool("helm"), "template", "site", CHART, "--kube-version", kube, *SITE, *args)
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return _template(*EVERYTHING)


def _by(rendered: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"].removeprefix("site-stopline-"): d for d in rendered if d["kind"] == kind}


def test_helm_lint_passes():
    for kube in KUBE_VERSIONS:
        run(tool("helm"), "lint", "--strict", "--kube-version", kube, CHART, *SITE)
        run(tool("helm"), "lint", "--strict", "--kube-version", kube, CHART, *SITE, *EVERYTHING)


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("values", [[], EVERYTHING], ids=["defaults", "everything"])
def test_the_manifests_validate_against_the_kubernetes_schemas(kube: str, values: list[str]):
    checked = 0
    for doc in _template(*values, kube=kube):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator's kinds: not in Kubernetes' schemas (the rules: promtool)
        kubernetes_validate.validate(doc, kube, strict=True)
        checked += 1
    assert checked == 2 + 2 * len(SERVICES) + (len(SERVICES) if not values else len(SERVICES) + 1)


def test_a_bad_manifest_is_refused_by_the_validator():
    # The validator is strict: an unknown field (a typo) fails, as does a wrong type.
    doc = _template("--show-only", "templates/pdb.yaml")[0]
    doc["spec"]["maxUnavailabel"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBE_VERSIONS[-1], strict=True)


def test_values_out_of_range_are_refused():
    # A scorer stage scales to the event topics' partition count: a seventh instance would hold nothing.
    with pytest.raises(pytest.fail.Exception, match="maximum"):
        _template("--set", "components.scorer-persons.replicas=7")
    with pytest.raises(pytest.fail.Exception, match="scorer-person"):
        _template("--set", "components.scorer-person.replicas=2")


def test_production_without_the_token_issuers_keys_is_refused_at_render():
    # The officers' services would refuse to start (crash-looping): the chart says so first.
    with pytest.raises(pytest.fail.Exception, match="jwt.jwksUrl, jwt.publicKey or jwt.publicKeyConfigMap"):
        _template("--set", "jwt.jwksUrl=")


def test_the_issuers_keys_come_from_its_jwks_unless_one_key_is_given():
    jwks = _env(_container(_by(_template(), "Deployment")["coordination"]))
    assert (
        jwks["STOPLINE_JWT_JWKS_URL"]["value"].startswith("https://")
        and "STOPLINE_JWT_PUBLIC_KEY" not in jwks
    )
    one = _env(
        _container(_by(_template("--set", "jwt.publicKeyConfigMap.name=issuer"), "Deployment")["ingest"])
    )
    assert one["STOPLINE_JWT_PUBLIC_KEY"]["valueFrom"]["configMapKeyRef"]["name"] == "issuer"
    assert "STOPLINE_JWT_JWKS_URL" not in one


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_each_service_is_probed_bounded_and_budgeted(rendered: list[dict[str, Any]]):
    workloads = _by(rendered, "Deployment") | _by(rendered, "StatefulSet")
    assert set(workloads) == set(SERVICES)
    # The scorer stages keep their names across restarts and updates: their static group membership.
    assert set(_by(rendered, "StatefulSet")) == {"scorer-persons", "scorer-accounts"}
    budgets = _by(rendered, "PodDisruptionBudget")
    for name, workload in workloads.items():
        container = _container(workload)
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert set(container["resources"]) == {"requests", "limits"}, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        env = _env(container)
        assert env["STOPLINE_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert budgets[name]["spec"]["selector"] == workload["spec"]["selector"]
        # Pods not ready in an outage (all of a service's) do not block a drain.
        assert budgets[name]["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    notifier = _env(_container(workloads["notifier"]))
    assert {"STOPLINE_NOTIFIER_SMS_URL", "STOPLINE_NOTIFIER_PUSH_URL"} <= set(
        notifier
    )  # a channel: the site's
    stages = {
        n: _env(_container(workloads[n]))["STOPLINE_SCORER_STAGES"]["value"]
        for n in workloads
        if "scorer" in n
    }
    assert stages == {"scorer-persons": '["persons"]', "scorer-accounts": '["accounts"]'}
    args = {name: _container(w)["args"] for name, w in workloads.items()}
    assert args["coordination"] == ["services.coordination.app"] and args["ingest"] == ["services.ingest.app"]


def test_every_setting_the_chart_gives_is_one_the_process_reads(rendered: list[dict[str, Any]]):
    processes = _by(rendered, "Deployment") | _by(rendered, "StatefulSet") | _by(rendered, "Job")
    assert len(processes) == len(SERVICES) + 2
    for name, process in processes.items():
        given = set(_env(_container(process)))
        assert "STOPLINE_KAFKA_BOOTSTRAP" in given, name
        assert given - settings_read_by(name) == set(), name


def test_kafka_and_postgresql_are_the_sites_own_given_by_values():
    bootstrap = "kafka-a.example.org:9093,kafka-b.example.org:9093,kafka-c.example.org:9093"
    rendered = _template(
        *("--set", "kafka.bootstrap=" + bootstrap.replace(",", r"\,")),  # --set splits on a bare comma
        *("--set", "kafka.existingSecret=site-scram"),
        *("--set", "database.existingSecret=site-postgres"),
        *("--set", "database.key=dsn"),
    )
    processes = _by(rendered, "Deployment") | _by(rendered, "StatefulSet") | _by(rendered, "Job")
    with_database = set()
    for name, process in processes.items():
        env = _env(_container(process))
        assert env["STOPLINE_KAFKA_BOOTSTRAP"]["value"] == bootstrap, name
        if "STOPLINE_KAFKA_PASSWORD" in env:
            assert env["STOPLINE_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "site-scram"
        if "DATABASE_URL" in env:
            assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "site-postgres", "key": "dsn"}
            with_database.add(name)
    assert with_database == {"ingest", "coordination", "notifier", "blocklist", "migrate"}
    # Neither runs in the chart: what it runs is the services and their two jobs.
    assert set(processes) == {*SERVICES, "migrate", "kafka-setup"}


def test_secrets_come_by_reference_only(rendered: list[dict[str, Any]]):
    workloads = [*_by(rendered, "Deployment").values(), *_by(rendered, "StatefulSet").values()]
    jobs = list(_by(rendered, "Job").values())
    secret_words = ("PASSWORD", "SECRET", "PSEUDONYM_KEY", "PAYLOAD_KEY", "SESSION_KEY", "DATABASE_URL")
    assert not [d for d in rendered if d["kind"] == "Secret"]
    for workload in workloads + jobs:
        for variable, entry in _env(_container(workload)).items():
            if any(word in variable for word in secret_words):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], variable
    kafka = {
        name: _env(_container(w))["STOPLINE_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]
        for name, w in (_by(rendered, "Deployment") | _by(rendered, "StatefulSet")).items()
        if name != "console"
    }
    assert {k["name"] for k in kafka.values()} == {"stopline-kafka"}
    assert (
        kafka["notifier"]["key"] == "stopline-notifier"
        and kafka["scorer-persons"]["key"] == "stopline-scorer"
    )


def test_the_hooks_migrate_then_provision_kafka(rendered: list[dict[str, Any]]):
    jobs = _by(rendered, "Job")
    assert _container(jobs["migrate"])["args"] == ["services.migrate", "upgrade"]
    assert _container(jobs["kafka-setup"])["args"][:2] == ["streams.acls", "services"]
    weights = {}
    for name, job in jobs.items():
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade"
        weights[name] = int(notes["helm.sh/hook-weight"])
    assert weights["migrate"] < weights["kafka-setup"]
    passwords = next(
        v
        for v in jobs["kafka-setup"]["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "kafka-passwords"
    )
    assert {i["key"] for i in passwords["secret"]["items"]} == {
        "stopline-ingest",
        "stopline-scorer",
        "stopline-coordination",
        "stopline-notifier",
        "stopline-blocklist",
    }


def test_the_monitoring_objects_carry_the_checked_rules_and_dashboard(rendered: list[dict[str, Any]]):
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    (monitor,) = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    assert (
        endpoint["relabelings"][0]["replacement"] == "stopline-$1"
    )  # job="stopline-ingest", as the rules read
    dashboard = _by(rendered, "ConfigMap")["dashboard"]
    assert json.loads(dashboard["data"]["stopline.json"]) == json.loads(Path(DASHBOARD).read_text())
