"""The local Kafka 4.1 (KRaft) from Maven-resolved jars: one combined broker+controller by default, or
`STOPLINE_KAFKA_BROKERS=3` combined nodes in one controller quorum. Run as root, the three nodes live in
network namespaces of their own (`ip netns`, joined by veth pairs to a bridge), so the fault suite can
cut one off the network (`partition`) as a real network failure would.

Clients authenticate with SASL/SCRAM-SHA-512 (over TLS when `STOPLINE_KAFKA_KEYSTORE` names a PKCS12 key
store), log in again every `STOPLINE_KAFKA_REAUTH_MS` if set, and the StandardAuthorizer allows each
principal only what `streams.acls` grants. The broker's own principal and the stack's administrator are
written into the storage at format time; every other principal is created by the stack over the admin
API (`deploy.local.stack`). The controller listener takes SASL/PLAIN with the broker's static credential
(SCRAM credentials live in the metadata the controllers serve, so controllers cannot use them). State
lives in .local/kafka; the jars come from deploy/kafka/pom.xml.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from deploy.local.common import (
    CACHE_DIR,
    LOCAL_DIR,
    REPO_ROOT,
    StackError,
    cmdline_of,
    env_port,
    live_process,
    port_open,
    read_pid,
    run_logged,
    terminate,
)
from streams.acls import ADMIN, BROKER
from streams.connection import MECHANISM, KafkaConnection, development_password

KAFKA_DIR = LOCAL_DIR / "kafka"
CLASSPATH_FILE = CACHE_DIR / "kafka" / "classpath.txt"
CLUSTER_ID_FILE = KAFKA_DIR / "cluster.id"
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J_CONFIG = REPO_ROOT / "deploy" / "kafka" / "log4j2.xml"
# What the storage was formatted with; another layout (an older, unauthenticated one) is formatted anew.
FORMAT_MARKER = "stopline-format.json"
FORMAT_VERSION = 2

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def brokers() -> int:
    raw = os.environ.get("STOPLINE_KAFKA_BROKERS", "1").strip() or "1"
    if raw not in ("1", "3"):
        raise StackError(f"STOPLINE_KAFKA_BROKERS={raw!r}: 1 or 3")
    return int(raw)


def broker_port() -> int:
    return env_port("STOPLINE_KAFKA_PORT", 19092)


def controller_port() -> int:
    return env_port("STOPLINE_KAFKA_CONTROLLER_PORT", 19093)


# Production asks every 5 minutes (deploy/compose/kafka/start.sh, the fault suite; docs/kafka-security.md).
# The local stack does not ask unless told (0, Kafka's default): aiokafka does not log in again in place,
# so the broker closes each connection once per interval, and a few seconds' interval under every test
# would make the whole suite live through that many times a test. The tests that need it run on a node
# of their own that asks every 3 s (tests/kafka_tools.py, short_login_kafka).
DEFAULT_REAUTH_MS = 0


def reauth_ms() -> int:
    """The brokers' `connections.max.reauth.ms`: `STOPLINE_KAFKA_REAUTH_MS`, else DEFAULT_REAUTH_MS."""
    raw = os.environ.get("STOPLINE_KAFKA_REAUTH_MS", "").strip() or str(DEFAULT_REAUTH_MS)
    if not raw.isdigit() or 0 < int(raw) < 1000:
        raise StackError(f"STOPLINE_KAFKA_REAUTH_MS={raw!r}: milliseconds, 0 (never) or at least 1000")
    return int(raw)


@dataclass(frozen=True)
class Node:
    """One combined broker+controller. A single node keeps the historical layout under .local/kafka."""

    id: int
    port: int
    controller_port: int
    dir: Path
    host: str = "127.0.0.1"
    netns: str | None = None  # the network namespace it runs in, if any
    veth: str | None = None  # its link to the bridge, on the host's side

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.dir / "kafka.pid"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def nodes() -> list[Node]:
    """The cluster's nodes: node i listens on the base ports + 2 (i - 1), so one port pair per node."""
    count = brokers()
    if count == 1:
        return [Node(1, broker_port(), controller_port(), KAFKA_DIR)]
    net = _network()
    found = [
        Node(
            i,
            broker_port() + 2 * (i - 1),
            controller_port() + 2 * (i - 1),
            KAFKA_DIR / "cluster" / f"node-{i}",
            **({} if net is None else {"host": net.host(i), "netns": net.netns(i), "veth": net.veth(i)}),
        )
        for i in range(1, count + 1)
    ]
    ports = [p for n in found for p in (n.port, n.controller_port)]
    if len(set(ports)) != len(ports):
        raise StackError(
            f"the nodes' ports overlap ({ports}); set STOPLINE_KAFKA_CONTROLLER_PORT further off"
        )
    return found


@dataclass(frozen=True)
class _Network:
    """The namespaces, veth pairs and bridge of a three-node cluster, named after its base port (so two
    stacks of this machine never share them); addresses 10.<a>.<b>.<node>, the bridge .254."""

    base: int

    @property
    def bridge(self) -> str:
        return f"slk{self.base}"

    @property
    def subnet(self) -> str:
        return f"10.{100 + self.base // 256 % 100}.{self.base % 256}"

    def host(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    def netns(self, i: int) -> str:
        return f"stopline-{self.base}-k{i}"

    def veth(self, i: int) -> str:
        return f"slk{self.base}v{i}"


def _network() -> _Network | None:
    """Namespaces when there are three nodes, we are root and `ip` is here (STOPLINE_KAFKA_NETNS=0: never)."""
    wanted = os.environ.get("STOPLINE_KAFKA_NETNS", "1") != "0"
    if brokers() == 1 or not wanted or os.geteuid() != 0 or shutil.which("ip") is None:
        return None
    return _Network(broker_port())


def _ip(*args: str, check: bool = True) -> bool:
    done = subprocess.run(["ip", *args], capture_output=True, timeout=30, check=False)  # noqa: S603, S607
    if check and done.returncode != 0:
        raise StackError(f"ip {' '.join(args)}: {done.stderr.decode().strip()}")
    return done.returncode == 0


def _ensure_network(cluster: list[Node]) -> None:
    """Create the bridge, and per node its namespace and veth pair (idempotent)."""
    net = _network()
    if net is None:
        return
    if not _ip("link", "show", net.bridge, check=False):
        _ip("link", "add", net.bridge, "type", "bridge")
        _ip("addr", "add", f"{net.subnet}.254/24", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")
    for node in cluster:
        assert node.netns is not None and node.veth is not None
        if not _ip("netns", "exec", node.netns, "true", check=False):
            _ip("netns", "add", node.netns)
        if not _ip("link", "show", node.veth, check=False):
            _ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
            _ip("link", "set", node.veth, "master", net.bridge)
            _ip("-n", node.netns, "addr", "add", f"{node.host}/24", "dev", "eth0")
        for link in ("lo", "eth0"):
            _ip("-n", node.netns, "link", "set", link, "up")
        _ip("link", "set", node.veth, "up")


def _remove_network() -> None:
    net = _network()
    if net is None:
        return
    for i in range(1, brokers() + 1):
        _ip("link", "del", net.veth(i), check=False)  # takes its peer along
        _ip("netns", "del", net.netns(i), check=False)
    _ip("link", "del", net.bridge, check=False)


def partition(node: Node, cut: bool) -> None:
    """Cut the node off the network (or join it again): its link to the bridge goes down (or up)."""
    if node.veth is None:
        raise StackError("a network partition needs the nodes in namespaces (three nodes, run as root)")
    _ip("link", "set", node.veth, "down" if cut else "up")


def bootstrap_servers() -> str:
    return ",".join(n.address for n in nodes())


def admin_connection() -> KafkaConnection:
    """The stack's administrator (a super user): creates principals, topics and ACLs."""
    return KafkaConnection(
        bootstrap=bootstrap_servers(), username=ADMIN, password=development_password(ADMIN)
    )


def running_node(node: Node) -> psutil.Process | None:
    """The node's broker process, or None; a pid file pointing at a dead or unrelated process is stale."""
    proc = live_process(read_pid(node.pid_file))
    if proc is None:
        return None
    argv = cmdline_of(proc)
    return proc if "kafka.Kafka" in argv and str(node.properties_file) in argv else None


def running() -> list[psutil.Process]:
    """The running brokers of the configured cluster (all of them, or fewer when some are down)."""
    return [p for n in nodes() if (p := running_node(n)) is not None]


def java() -> str:
    """The java to run Kafka's classes with: JAVA_HOME's, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not found or not Path(found).exists():
        raise StackError("java not found (need Java 17+ on PATH or JAVA_HOME)")
    return found


def _classpath_is_fresh() -> bool:
    try:
        if CLASSPATH_FILE.stat().st_mtime < POM.stat().st_mtime:
            return False
        entries = CLASSPATH_FILE.read_text().strip().split(os.pathsep)
    except OSError:
        return False
    # A cleaned ~/.m2 leaves a classpath that looks fine but fails at JVM start.
    return bool(entries[0]) and all(Path(e).exists() for e in entries)


def classpath() -> str:
    """Resolve the broker classpath with Maven once; reuse it while the pom is unchanged."""
    if not _classpath_is_fresh():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("mvn not found; it is needed once to resolve the Kafka jars")
        tmp = CLASSPATH_FILE.with_suffix(".tmp")
        run_logged(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(POM),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={tmp}",
            ],
            log=KAFKA_DIR / "maven.log",
            timeout=900,
            what="mvn dependency:build-classpath",
        )
        tmp.replace(CLASSPATH_FILE)  # atomic, so an interrupted run never leaves a half-written file
    return CLASSPATH_FILE.read_text().strip()


def _jvm(
    node: Node, main_class: str, *args: str, heap: tuple[str, str] = ("-Xms256m", "-Xmx512m")
) -> list[str]:
    return [
        java(),
        *heap,
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={node.logs_dir}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        main_class,
        *args,
    ]


def _jvm_env() -> dict[str, str]:
    # The classpath goes in $CLASSPATH rather than -cp so `ps` output stays readable (it is ~45 jars).
    return {**os.environ, "CLASSPATH": classpath()}


def _keystore() -> tuple[str, str] | None:
    """(path, password) of the PKCS12 key store that turns the client listener to TLS, if set."""
    path = os.environ.get("STOPLINE_KAFKA_KEYSTORE", "").strip()
    if not path:
        return None
    if not Path(path).is_file():
        raise StackError(f"STOPLINE_KAFKA_KEYSTORE={path!r} is not a file")
    return path, os.environ.get("STOPLINE_KAFKA_KEYSTORE_PASSWORD", "")


def _jaas(module: str, username: str, password: str, *users: str) -> str:
    extra = "".join(f' user_{u}="{development_password(u)}"' for u in users)
    return f'{module} required username="{username}" password="{password}"{extra};'


def _properties(node: Node, cluster: list[Node]) -> str:
    replicas = len(cluster)
    broker_password = development_password(BROKER)
    client_protocol = "SASL_SSL" if _keystore() else "SASL_PLAINTEXT"
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.id),
        "controller.quorum.voters": ",".join(f"{n.id}@{n.host}:{n.controller_port}" for n in cluster),
        "listeners": f"CLIENT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"CLIENT://{node.address},CONTROLLER://{node.host}:{node.controller_port}",
        "listener.security.protocol.map": f"CLIENT:{client_protocol},CONTROLLER:SASL_PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENT",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.client.scram-sha-512.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule", BROKER, broker_password
        ),
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule", BROKER, broker_password, BROKER
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{BROKER};User:{ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
        # A connection must log in again this long after it did (KIP-368), else the broker closes it at its
        # next request: a deleted or replaced SCRAM credential then stops connections already open, not
        # only new ones. Kafka's default (0) never asks again.
        "connections.max.reauth.ms": str(reauth_ms()),
        "log.dirs": str(node.data_dir),
        "num.partitions": "3",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min(2, replicas)),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min(2, replicas)),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min(2, replicas)),
        "group.initial.rebalance.delay.ms": "0",
        # A node that stops heart-beating to the controllers is fenced (its partitions led elsewhere)
        # after 4 s, not Kafka's 9 s: what its clients wait for a new leader when it dies or is cut off.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        "replica.lag.time.max.ms": "10000",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }
    if keystore := _keystore():
        settings |= {
            "listener.name.client.ssl.keystore.type": "PKCS12",
            "listener.name.client.ssl.keystore.location": keystore[0],
            "listener.name.client.ssl.keystore.password": keystore[1],
        }
    header = "# Generated by deploy/local/kafka.py on every start; edits are lost.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


def _cluster_id() -> str:
    if CLUSTER_ID_FILE.exists():
        return CLUSTER_ID_FILE.read_text().strip()
    # Same shape as Kafka's Uuid.randomUuid(): 16 random bytes, url-safe base64, no leading '-'.
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    CLUSTER_ID_FILE.parent.mkdir(parents=True, exist_ok=True)
    CLUSTER_ID_FILE.write_text(cid + "\n")
    return cid


def _format_wanted(cluster: list[Node]) -> dict[str, object]:
    return {"version": FORMAT_VERSION, "nodes": len(cluster), "cluster_id": _cluster_id()}


def _formatted(node: Node, cluster: list[Node]) -> bool:
    try:
        found = json.loads((node.data_dir / FORMAT_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(found == _format_wanted(cluster) and (node.data_dir / "meta.properties").exists())


def _format(node: Node, cluster: list[Node]) -> None:
    """Format the node's storage, with the broker's and the administrator's SCRAM credentials in it."""
    # A storage of another layout (or a format that never finished) is started afresh: local topics
    # are disposable (each run and each test session makes its own).
    shutil.rmtree(node.data_dir, ignore_errors=True)
    node.data_dir.mkdir(parents=True)
    scram = [
        arg
        for user in (BROKER, ADMIN)
        for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={development_password(user)}]")
    ]
    args = ("format", "-t", _cluster_id(), "-c", str(node.properties_file), *scram)
    run_logged(
        _jvm(node, "kafka.tools.StorageTool", *args, heap=("-Xms64m", "-Xmx256m")),
        log=node.logs_dir / "format.log",
        timeout=120,
        what="kafka storage format",
        env=_jvm_env(),
    )
    (node.data_dir / FORMAT_MARKER).write_text(json.dumps(_format_wanted(cluster)))


def _spawn(node: Node) -> psutil.Process:
    for port in (node.port, node.controller_port):
        if port_open(port, node.host):
            raise StackError(
                f"port {port} is taken by another process "
                "(set STOPLINE_KAFKA_PORT and STOPLINE_KAFKA_CONTROLLER_PORT)"
            )
    argv = _jvm(node, "kafka.Kafka", str(node.properties_file))
    if node.netns is not None:
        argv = ["ip", "netns", "exec", node.netns, *argv]  # execs the JVM: the pid is the broker's
    with (node.logs_dir / "stdout.log").open("ab") as out:
        # Own session: the broker must outlive this CLI and ignore Ctrl-C sent to the terminal.
        child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=node.dir,
            env=_jvm_env(),
            start_new_session=True,
        )
    node.pid_file.write_text(f"{child.pid}\n")
    return psutil.Process(child.pid)


def start_node(node: Node) -> psutil.Process:
    """Start one node again (after a crash) with the settings it had."""
    node.pid_file.unlink(missing_ok=True)
    return _spawn(node)


def ensure_started() -> tuple[list[psutil.Process], bool]:
    """Start every node that is not running with the wanted settings; returns (processes, started_now)
    without waiting for readiness. A node running with other settings (an older layout) is restarted."""
    cluster = nodes()
    _ensure_network(cluster)
    procs: list[psutil.Process] = []
    started = False
    for node in cluster:
        node.logs_dir.mkdir(parents=True, exist_ok=True)
        wanted = _properties(node, cluster)
        proc = running_node(node)
        if proc is not None and node.properties_file.read_text() == wanted and _formatted(node, cluster):
            procs.append(proc)
            continue
        if proc is not None:
            terminate(proc, signal.SIGTERM, STOP_TIMEOUT_S)
        node.pid_file.unlink(missing_ok=True)
        node.properties_file.write_text(wanted)
        if not _formatted(node, cluster):
            _format(node, cluster)
        procs.append(_spawn(node))
        started = True
    return procs, started


async def _metadata_ok(expected_brokers: int) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient  # deferred: only the health check needs it

    admin = AIOKafkaAdminClient(**admin_connection().options(), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout=6)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout=6)
        return len(cluster.get("brokers") or ()) >= expected_brokers and cluster.get("controller_id", -1) >= 0
    except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
        return False
    finally:
        await admin.close()


def wait_ready(procs: list[psutil.Process], timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until every node answers and all of them are in the cluster's metadata."""
    deadline = time.monotonic() + timeout
    cluster = nodes()
    while time.monotonic() < deadline:
        for node, proc in zip(cluster, procs, strict=True):
            if live_process(proc.pid) is None:
                raise StackError(f"kafka node {node.id} exited during startup; see {node.server_log}")
        if all(port_open(n.port, n.host) for n in cluster) and asyncio.run(_metadata_ok(len(cluster))):
            return
        time.sleep(0.3)
    raise StackError(f"kafka not ready after {timeout:.0f}s (left running); see {cluster[0].server_log}")


def stop() -> bool | None:
    """Stop every node; None if none was running, else whether all shut down without SIGKILL."""
    cluster = nodes()
    found = [(n, p) for n in cluster if (p := running_node(n)) is not None]
    for node in cluster:
        if running_node(node) is None:
            node.pid_file.unlink(missing_ok=True)
    if not found:
        _remove_network()
        return None
    for _, proc in found:  # all at once: a lone remaining controller would wait for its quorum
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    clean = all([terminate(proc, signal.SIGTERM, STOP_TIMEOUT_S) for _, proc in found])
    for node, _ in found:
        node.pid_file.unlink(missing_ok=True)
    _remove_network()
    return clean
