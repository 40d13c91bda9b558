"""The streaming agent job: wiring only. Operators live in jobs.runtime, logic in jobs.*.

File mode (the embedded default):
    python -m jobs.agent_job --events FILE.jsonl --out DIR [--state DIR]
Kafka mode (the sink runs as its own process, python -m sinks.action_sink):
    python -m jobs.agent_job --bootstrap-servers HOST:PORT [--state DIR]
"""
from __future__ import annotations

import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Duration, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSource, StreamFormat
from pyflink.table import StreamTableEnvironment

from contracts import records
from contracts.contract import load_contract
from contracts.models import AgentResponse
from contracts.records import Out

from jobs.command_line import DEFAULT_CHECKPOINT_INTERVAL_MS, parse_args
from jobs.config import JobConfig
from jobs.file_input import CHARSET, PreparedEvents, prepare
from jobs.jsonl_files import create_outputs
from jobs.prefilter import JAR as PREFILTER_JAR
from jobs.prefilter import PrefilterPlan, plan_prefilter
from jobs.routing import Routed
from jobs.runtime.agent_op import AgentFunction
from jobs.runtime.breach_op import BreachFunction
from jobs.runtime.file_writer import JsonlWriterFunction
from jobs.runtime.global_limit_op import GLOBAL_KEY, GlobalLimitFunction
from jobs.runtime.ingress import FileIngressFunction, KafkaIngressFunction
from jobs.runtime.kafka_io import add_sinks, source_stream
from jobs.runtime.sink_op import ActionSinkFunction, sink_key
from jobs.runtime.tags import OUT
from jobs.summary import summarize

REPO = Path(__file__).resolve().parent.parent


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value: Routed, record_timestamp: int) -> int:
        return value.env.ts_ms


def build(env: StreamExecutionEnvironment, config: JobConfig, prefilter: PrefilterPlan,
          events: PreparedEvents | None = None) -> None:
    """Wire the pipeline onto `env`: file mode (sink embedded) or Kafka mode (sink is its own process).

    Stateful operators carry stable uids, so savepoints restore whatever optional stages are on."""
    if config.kafka_mode:
        t_env = StreamTableEnvironment.create(env)
        rows = source_stream(t_env, config, prefilter)
        ingress = rows.process(KafkaIngressFunction(config)).name("contract-gate").uid("contract-gate") \
            .start_new_chain()
        governed = ingress
    else:
        assert events is not None
        source = FileSource.for_record_stream_format(StreamFormat.text_line_format(CHARSET), events.path).build()
        lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "events-file").set_parallelism(1)
        ingress = lines.process(FileIngressFunction(config, events)).name("contract-gate").uid("contract-gate") \
            .set_parallelism(1)
        watermarks = (WatermarkStrategy
                      .for_bounded_out_of_orderness(Duration.of_millis(config.max_out_of_orderness_ms))
                      .with_timestamp_assigner(EventTime()))
        if config.idle_timeout_ms > 0:  # a single file split never needs it; Kafka partitions do
            watermarks = watermarks.with_idleness(Duration.of_millis(config.idle_timeout_ms))
        governed = ingress.assign_timestamps_and_watermarks(watermarks).set_parallelism(1)

    breaches = (governed.filter(lambda r: r.qualifying is not None)
                .key_by(lambda r: r.qualifying.account_id, key_type=Types.STRING())
                .process(BreachFunction(config)).name("breach-detection").uid("breach-detection"))
    agent = (governed.filter(lambda r: r.to_agent).union(breaches)
             .key_by(lambda r: r.account_id, key_type=Types.STRING())
             .process(AgentFunction(config)).name("agent-stage").uid("agent-stage"))
    side_outputs = ingress.get_side_output(OUT).union(breaches.get_side_output(OUT), agent.get_side_output(OUT))
    if config.global_max_actions_per_minute:
        agent = (agent.key_by(lambda _: GLOBAL_KEY, key_type=Types.STRING())
                 .process(GlobalLimitFunction(config)).name("global-limit").uid("global-limit")
                 .set_parallelism(1))
        side_outputs = side_outputs.union(agent.get_side_output(OUT))

    if config.kafka_mode:
        requests = agent.map(action_request_of).name("action-requests").uid("action-requests")
        statements = t_env.create_statement_set()
        add_sinks(t_env, statements, side_outputs.union(requests), config,
                  ("breaches", "dlq", "traces", "shadow", "actions"), prefilter)
        statements.attach_as_datastream()
        return

    from sinks.embedded import embedded_sink  # the one place where job and sink meet
    from sinks.plan_records import plan_records

    sink = agent.key_by(sink_key, key_type=Types.STRING()) \
        .process(ActionSinkFunction(config, embedded_sink, plan_records)).name("action-sink").set_parallelism(1)
    outputs = side_outputs.union(sink.get_side_output(OUT))
    outputs.process(JsonlWriterFunction(config.out_dir)).name("jsonl-writer").set_parallelism(1).print()


def prefilter_plan(config: JobConfig) -> PrefilterPlan:
    plan = plan_prefilter(load_contract(config.contract_path), config.policy, str(config.threshold),
                          config.max_out_of_orderness_ms, config.jvm_prefilter)
    print(f"jvm prefilter: {'on' if plan.enabled else 'off, ' + plan.why_not}", file=sys.stderr, flush=True)
    return plan


def action_request_of(value: tuple[Routed, AgentResponse]) -> Out:
    item, response = value
    pos = records.position_of(item.env, item.derived)
    return records.action_request(pos, item.idempotency_key, item.account_id, response.summary, response.actions,
                                  response.citations, records.governed_envelope(item.env), item.derived)


def make_env(config: JobConfig, prefilter: PrefilterPlan) -> StreamExecutionEnvironment:
    conf = Configuration()
    # Under `flink run` the environment starts from the cluster's config.yaml (flink-conf/): when that
    # enables checkpointing, its interval, directory and retention stand unless the flags say otherwise.
    from_cluster = StreamExecutionEnvironment.get_execution_environment().get_checkpoint_config() \
        .is_checkpointing_enabled()
    if config.kafka_mode:
        if config.checkpoint_dir or not from_cluster:
            checkpoints = Path(config.checkpoint_dir or config.state / "checkpoints").resolve()
            conf.set_string("execution.checkpointing.dir", checkpoints.as_uri())
            conf.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
        conf.set_string("table.exec.source.idle-timeout", f"{config.idle_timeout_ms or 5000} ms")
        if config.from_checkpoint:
            conf.set_string("execution.state-recovery.path", config.from_checkpoint)
    conf.set_string("python.execution-mode", config.python_execution_mode)
    if config.python_execution_mode == "thread":
        # The embedded interpreter (pemja) starts from the base Python, not the venv: give it the
        # venv's packages, as process mode's worker gets them from its executable.
        conf.set_string("python.pythonpath", sysconfig.get_paths()["purelib"])
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(config.parallelism)
    env.set_python_executable(sys.executable)
    env.add_python_file(str(package_archive(config.state)))
    if config.kafka_mode:
        if config.checkpoint_interval_ms is not None or not from_cluster:
            env.enable_checkpointing(config.checkpoint_interval_ms or DEFAULT_CHECKPOINT_INTERVAL_MS,
                                     CheckpointingMode.EXACTLY_ONCE)
        jars = list(config.jars) or [str(p) for p in sorted((REPO / ".infra" / "jars" / "flink").glob("*.jar"))]
        if not jars:
            raise SystemExit("Kafka mode needs the Flink Kafka connector jar: run infra/fetch.sh flink or pass --jars")
        if prefilter.enabled:
            if not PREFILTER_JAR.exists():
                raise SystemExit(f"{PREFILTER_JAR} is missing: run `bash scripts/setup.sh --infra` (it builds jvm/) "
                                 "or pass --no-jvm-prefilter")
            jars.append(str(PREFILTER_JAR))
        env.add_jars(*[Path(j).resolve().as_uri() for j in jars])
    return env


def package_archive(dest_dir: Path) -> Path:
    """contracts/, jobs/ and sinks/ as one zip, a source root for the Python workers. (A directory given to
    add_python_file is itself put on the workers' PYTHONPATH: the package directories would make their
    modules top-level on a cluster's Python workers, where contracts/avro.py shadows the avro library.)"""
    dest = Path(dest_dir) / "pyfiles" / "streaming-agent.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for pkg in ("contracts", "jobs", "sinks"):
            for f in sorted((REPO / pkg).rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    z.write(f, f.relative_to(REPO).as_posix())
    tmp.replace(dest)
    return dest


def run(config: JobConfig) -> Any:
    Path(config.out_dir).mkdir(parents=True, exist_ok=True)
    config.state.mkdir(parents=True, exist_ok=True)
    prefilter = prefilter_plan(config) if config.kafka_mode else PrefilterPlan(False, "file mode")
    events = None
    if not config.kafka_mode:
        assert config.events is not None
        events = prepare(Path(config.events), config.state / "input", config.events_directory)
        create_outputs(config.out_dir)
    env = make_env(config, prefilter)
    build(env, config, prefilter, events)
    return env.execute("streaming-agent (kafka mode)" if config.kafka_mode else "streaming-agent (file mode)")


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    run(config)
    if not config.kafka_mode:
        print(summarize(config.out_dir))


if __name__ == "__main__":
    main()
