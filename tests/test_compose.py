"""docker-compose.yml stays in step with the repository (no Docker engine needed).

Every expectation is read from the repository itself: the topics of infra/kafka.sh,
the connector and worker settings of infra/connect/, the contract's topics, the
versions pinned in pyproject.toml and infra/pom.xml, flink-conf/config.yaml, and the
command lines of the job, the sink and the loader, parsed by their own parsers.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.contract import load_contract
from jobs.kafka_records import OUTPUT_TOPICS
from sinks.sink_loop import TOPICS as SINK_TOPICS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
FLINK_CONF = yaml.safe_load((ROOT / "flink-conf" / "config.yaml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
POM = ET.parse(ROOT / "infra" / "pom.xml").getroot()
APP = "/opt/app"  # where the Dockerfile puts the project


def pom_property(name: str) -> str:
    node = POM.find(f"{{*}}properties/{{*}}{name}")
    if node is None:
        node = POM.find(f"properties/{name}")
    assert node is not None and node.text, name
    return node.text.strip()


def dockerfiles() -> dict[str, Path]:
    out = {}
    for name, svc in SERVICES.items():
        build = svc.get("build")
        if build:
            ctx = ROOT / build.get("context", ".")
            out[name] = ctx / build.get("dockerfile", "Dockerfile")
    return out


def dockerfile_text() -> str:
    paths = set(dockerfiles().values())
    assert len(paths) == 1, paths  # one image for every project service
    return next(iter(paths)).read_text()


def env(service: str) -> dict[str, str]:
    e = SERVICES[service].get("environment") or {}
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return {k: str(v) for k, v in e.items()}


def flink_properties(service: str) -> dict[str, str]:
    props = {}
    for line in env(service).get("FLINK_PROPERTIES", "").splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            props[key.strip()] = value.strip()
    return props


def command(service: str) -> list[str]:
    cmd = SERVICES[service].get("command")
    if isinstance(cmd, str):
        return shlex.split(cmd)
    if SERVICES[service].get("entrypoint", [None])[-1] == "-c":  # a shell script in one string
        return shlex.split(cmd[0].replace("$$", "$"))
    return [str(c) for c in cmd]


def repo_path(container_path: str) -> Path:
    assert container_path.startswith(APP + "/"), container_path
    return ROOT / container_path[len(APP) + 1:]


def python_module_args(service: str) -> tuple[str, list[str]]:
    cmd = command(service)
    assert cmd[:2] == ["python", "-m"], cmd
    return cmd[2], cmd[3:]


def kafka_topics_of_infra() -> dict[str, int]:
    text = (ROOT / "infra" / "kafka.sh").read_text()
    block = re.search(r"^TOPICS=\((.*?)^\)", text, re.S | re.M)
    assert block, "TOPICS=( ... ) not found in infra/kafka.sh"
    specs = [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]
    return {name: int(parts) for name, parts in (s.rsplit(":", 1) for s in specs)}


def properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def host_port(url: str) -> tuple[str, int]:
    m = re.fullmatch(r"(?:[a-z]+://)?([\w.-]+):(\d+)/?", url)
    assert m, url
    return m.group(1), int(m.group(2))


def test_the_services_of_the_deployment_are_there():
    assert {"kafka", "topics", "postgres", "connect", "connect-init", "jobmanager", "taskmanager", "submitter",
            "tools", "sink"} <= set(SERVICES)
    for name, svc in SERVICES.items():
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on") or []:
            assert dep in SERVICES, (name, dep)


def test_images_match_the_pinned_versions():
    flink = re.search(r"^ARG FLINK_IMAGE=flink:([\d.]+)-", dockerfile_text(), re.M)
    assert flink and flink.group(1) == re.search(r"apache-flink==([\d.]+)",
                                                 " ".join(PYPROJECT["project"]["dependencies"])).group(1)
    python = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)", dockerfile_text(), re.M)
    assert python and python.group(1) == re.search(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    assert SERVICES["kafka"]["image"].endswith(":" + pom_property("kafka.version"))
    assert SERVICES["topics"]["image"] == SERVICES["kafka"]["image"]
    assert SERVICES["connect"]["image"].endswith(":" + pom_property("debezium.version"))


def test_the_dockerfile_copies_only_files_that_exist_and_are_in_its_context():
    text = dockerfile_text()
    ignore_file = next(iter(set(dockerfiles().values()))).with_name(
        next(iter(set(dockerfiles().values()))).name + ".dockerignore")
    assert ignore_file.exists()
    included = [line[1:].rstrip("/") for line in ignore_file.read_text().splitlines() if line.startswith("!")]
    for line in text.splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            sources = [s for s in shlex.split(line)[1:-1] if not s.startswith("--")]
            for src in sources:
                assert (ROOT / src).exists(), src
                assert any(src.rstrip("/") == inc or src.startswith(inc + "/") for inc in included), \
                    f"{src} is excluded from the build context by {ignore_file.name}"
    # the flink-conf the image uses is ours
    assert "COPY --chown=flink:flink flink-conf/config.yaml /opt/flink/conf/config.yaml" in text


def test_bind_mounts_exist_and_named_volumes_are_declared():
    declared = set(COMPOSE.get("volumes") or {})
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    # checkpoints and savepoints live on a volume shared by every Flink process
    mounts = {name: {v.split(":")[1] for v in SERVICES[name].get("volumes") or [] if v.startswith("flink-data:")}
              for name in ("jobmanager", "taskmanager", "submitter")}
    assert all(mounts.values()) and len({frozenset(m) for m in mounts.values()}) == 1, mounts
    shared = next(iter(mounts["jobmanager"]))
    for service in ("jobmanager", "taskmanager"):
        for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
            assert key in FLINK_CONF
            assert flink_properties(service)[key].startswith(f"file://{shared}/"), (service, key)


def test_published_ports_are_unique_and_match_the_configuration():
    seen: dict[str, str] = {}
    for name, svc in SERVICES.items():
        for port in svc.get("ports") or []:
            host = str(port).split(":")[0]
            assert host not in seen, f"host port {host} of {name} is already published by {seen[host]}"
            seen[host] = name

    def container_ports(service: str) -> set[int]:
        return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports") or []}

    assert int(FLINK_CONF["rest.port"]) in container_ports("jobmanager")
    low, high = (int(x) for x in str(FLINK_CONF["metrics.reporter.prom.port"]).split("-"))
    for service in ("jobmanager", "taskmanager"):
        prom = int(flink_properties(service)["metrics.reporter.prom.port"])
        assert low <= prom <= high and prom in container_ports(service)
    module, args = python_module_args("tools")
    assert int(args[args.index("--port") + 1]) in container_ports("tools")
    module, args = python_module_args("sink")
    assert int(args[args.index("--metrics-port") + 1]) in container_ports("sink")  # /metrics and /health


def test_flink_overrides_name_keys_of_flink_conf():
    for service in ("jobmanager", "taskmanager"):
        props = flink_properties(service)
        assert props, service
        unknown = sorted(k for k in props if k not in FLINK_CONF)
        assert not unknown, f"{service} overrides keys flink-conf/config.yaml does not have (typo?): {unknown}"
        assert props["jobmanager.rpc.address"] == "jobmanager" == SERVICES["jobmanager"]["hostname"]
        assert Path(props["python.executable"]).is_absolute()
    assert flink_properties("taskmanager")["taskmanager.host"] == SERVICES["taskmanager"]["hostname"]


def test_topics_are_those_of_the_local_scripts_and_cover_the_contract_and_the_outputs():
    specs = env("topics")["TOPICS"].split()
    compose_topics = {name: int(parts) for name, parts in (s.rsplit(":", 1) for s in specs)}
    assert compose_topics == kafka_topics_of_infra()
    contract = load_contract()
    needed = {i.topic for i in contract.inputs} | {contract.governance.dlq_topic} | set(OUTPUT_TOPICS.values()) \
        | set(SINK_TOPICS.values())
    assert needed <= set(compose_topics), needed - set(compose_topics)
    assert "kafka-topics.sh" in SERVICES["topics"]["command"][0]


def test_the_connector_is_the_one_of_infra_connect():
    mounts = dict(v.rsplit(":", 2)[:2] if v.count(":") == 2 else v.split(":", 1)
                  for v in SERVICES["connect-init"]["volumes"])
    source = next(s for s in mounts if s.endswith("orders-connector.properties"))
    path = ROOT / source
    assert path == ROOT / "infra" / "connect" / "orders-connector.properties"
    assert mounts[source] in SERVICES["connect-init"]["command"][2]  # the registrar reads that file
    text = path.read_text()
    e = env("connect-init")
    placeholders = set(re.findall(r"@(\w+)@", text))
    assert placeholders and placeholders <= set(e), placeholders - set(e)
    props = properties(path)
    topic = f"{props['topic.prefix']}.{props['table.include.list']}"
    assert topic in {i.topic for i in load_contract().inputs}
    assert e["PGHOST"] == SERVICES["postgres"]["hostname"]
    assert e["PGDATABASE"] == env("postgres")["POSTGRES_DB"]
    assert host_port(e["CONNECT_URL"])[0] == SERVICES["connect"]["hostname"]
    assert host_port(e["CONNECT_URL"])[1] in {int(str(p).split(":")[-1]) for p in SERVICES["connect"]["ports"]}
    # the replication role the connector logs in as is the one the init SQL creates
    role_sql = COMPOSE["configs"]["debezium-role"]["content"]
    assert re.search(rf"CREATE ROLE {e['DBZ_USER']} WITH LOGIN REPLICATION PASSWORD '{e['DBZ_PASSWORD']}'", role_sql)
    assert f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {e['DBZ_USER']}" in role_sql
    # the publication the connector expects (autocreate disabled) is made by orders.sql
    assert props["publication.autocreate.mode"] == "disabled"
    assert f"CREATE PUBLICATION {props['publication.name']}" in (ROOT / "infra" / "sql" / "orders.sql").read_text()


def test_the_connect_worker_converts_like_infra_connect():
    worker = properties(ROOT / "infra" / "connect" / "worker.properties")
    e = env("connect")
    assert e["KEY_CONVERTER"] == worker["key.converter"]
    assert e["VALUE_CONVERTER"] == worker["value.converter"]
    assert e["CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE"] == worker["key.converter.schemas.enable"]
    assert e["CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE"] == worker["value.converter.schemas.enable"]
    assert e["OFFSET_FLUSH_INTERVAL_MS"] == worker["offset.flush.interval.ms"]
    assert host_port(e["BOOTSTRAP_SERVERS"]) == kafka_internal_listener()


def kafka_internal_listener() -> tuple[str, int]:
    e = env("kafka")
    listeners = dict(item.split("://", 1) for item in e["KAFKA_ADVERTISED_LISTENERS"].split(","))
    return host_port(listeners[e["KAFKA_INTER_BROKER_LISTENER_NAME"]])


def test_postgres_runs_with_logical_decoding_and_the_orders_schema():
    cmd = SERVICES["postgres"]["command"]
    assert "wal_level=logical" in cmd
    mounts = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["postgres"]["volumes"]}
    assert mounts["./infra/sql/orders.sql"].startswith("/docker-entrypoint-initdb.d/")
    role = next(c for c in SERVICES["postgres"]["configs"] if c["source"] == "debezium-role")
    assert role["target"].startswith("/docker-entrypoint-initdb.d/")
    assert Path(role["target"]).name > Path(mounts["./infra/sql/orders.sql"]).name  # grants after the table


def test_the_submitter_runs_the_job_the_flink_way():
    cmd = command("submitter")
    assert cmd[:3] == ["exec", "flink", "run"]
    assert "-d" in cmd
    assert host_port(cmd[cmd.index("-m") + 1])[0] == SERVICES["jobmanager"]["hostname"]
    script = cmd[cmd.index("-py") + 1]
    assert repo_path(script) == ROOT / "jobs" / "agent_job.py"
    assert cmd[cmd.index("-pyexec") + 1] == flink_properties("taskmanager")["python.executable"]
    assert "--pyFiles" not in cmd  # the job ships its packages (see infra/flink_cluster.sh)
    from jobs.agent_job import parse_args
    config = parse_args(cmd[cmd.index("--") + 1:])
    assert config.kafka_mode
    assert host_port(config.bootstrap_servers) == kafka_internal_listener()
    mount = next(v.split(":")[1] for v in SERVICES["submitter"]["volumes"] if v.startswith("flink-data:"))
    assert str(config.state).startswith(mount) and config.checkpoint_dir.startswith(mount)


def test_the_sink_tools_and_loader_commands_parse():
    module, args = python_module_args("sink")
    assert module == "sinks.action_sink" and importlib.util.find_spec(module)
    from sinks.action_sink import parse_args
    a = parse_args(args)
    assert host_port(a.bootstrap_servers) == kafka_internal_listener()
    module, tool_args = python_module_args("tools")
    assert module == "sinks.sandbox" and importlib.util.find_spec(module)
    assert host_port(a.tools_url) == (SERVICES["tools"]["hostname"], int(tool_args[tool_args.index("--port") + 1]))
    module, loader_args = python_module_args("loader")
    assert module == "jobs.scenario_loader" and importlib.util.find_spec(module)
    assert repo_path(loader_args[0]).exists()
    assert host_port(loader_args[loader_args.index("--bootstrap-servers") + 1]) == kafka_internal_listener()


@pytest.mark.parametrize("key, value", [
    ("execution.checkpointing.mode", "EXACTLY_ONCE"),
    ("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"),
    ("state.backend.type", "rocksdb"),
    ("restart-strategy.type", "exponential-delay"),
    ("taskmanager.numberOfTaskSlots", 2),
    ("metrics.reporter.prom.factory.class", "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"),
])
def test_flink_conf(key, value):
    assert FLINK_CONF[key] == value
    assert all(not isinstance(v, dict) for v in FLINK_CONF.values()), "flink-conf/config.yaml keys must be flat"


def test_the_prometheus_reporter_ships_in_the_distributions_plugins_dir():
    import pyflink
    plugins = Path(pyflink.__file__).parent / "plugins" / "metrics-prometheus"
    assert list(plugins.glob("flink-metrics-prometheus-*.jar"))
