"""The streaming agent job: wiring only. Operators live in jobs.runtime, logic in jobs.*.

File mode (the embedded default):
    python -m jobs.agent_job --events FILE.jsonl --out DIR [--state DIR]
Kafka mode (the sink runs as its own process, python -m sinks.action_sink):
    python -m jobs.agent_job --bootstrap-servers HOST:PORT [--state DIR]
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from decimal import Decimal
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

from jobs.config import JobConfig
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
DEFAULT_CHECKPOINT_INTERVAL_MS = 2_000


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value: Routed, record_timestamp: int) -> int:
        return value.env.ts_ms


def parse_args(argv: list[str] | None = None) -> JobConfig:
    ap = argparse.ArgumentParser(prog="agent_job", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", help="file mode: input JSON Lines, one envelope per line")
    ap.add_argument("--bootstrap-servers", help="Kafka mode: read the contract's topics, write Kafka topics")
    ap.add_argument("--out", default="out", help="file mode: output directory for the JSONL files")
    ap.add_argument("--state", help="durable state (outbox, receipts, tool ledger); default OUT/state")
    ap.add_argument("--contract", default=JobConfig.contract_path)
    ap.add_argument("--threshold", type=Decimal, default=JobConfig.threshold)
    ap.add_argument("--no-auto-hold", action="store_true", help="breaches carry auto_hold=false")
    ap.add_argument("--max-out-of-orderness-ms", type=int, default=JobConfig.max_out_of_orderness_ms)
    ap.add_argument("--idle-timeout-ms", type=int, default=0,
                    help="mark a quiet source split idle after N ms (0 = never; file mode has one split)")
    ap.add_argument("--dedup-ttl-ms", type=int, default=JobConfig.dedup_ttl_ms)
    ap.add_argument("--parallelism", type=int, default=JobConfig.parallelism)
    ap.add_argument("--policy", default="rules", help="'rules' or module:Class")
    ap.add_argument("--global-max-actions-per-minute", type=int,
                    help="optional limit on actions across all accounts per 60 s of event time")
    ap.add_argument("--shadow-policy", help="candidate policy run beside the live one; executes nothing, "
                                            "writes shadow.jsonl")
    ap.add_argument("--group-id", default=JobConfig.group_id, help="Kafka consumer group and transactional prefix")
    ap.add_argument("--topic-pattern", default=JobConfig.topic_pattern)
    ap.add_argument("--startup-mode", default=JobConfig.startup_mode,
                    choices=["earliest-offset", "latest-offset", "group-offsets"])
    ap.add_argument("--checkpoint-interval-ms", type=int,
                    help=f"default: the cluster's (flink run), else {DEFAULT_CHECKPOINT_INTERVAL_MS}")
    ap.add_argument("--checkpoint-dir", help="default: the cluster's (flink run), else STATE/checkpoints "
                                             "(retained on cancel)")
    ap.add_argument("--from-checkpoint", help="restore from a retained checkpoint or savepoint path")
    ap.add_argument("--jvm-prefilter", action=argparse.BooleanOptionalAction, default=True,
                    help="Kafka mode: settle valid non-actionable CDC records on the JVM (jvm/, on by default); "
                         "--no-jvm-prefilter sends every record through the Python gate")
    ap.add_argument("--jars", nargs="*", default=[], help="connector jars (default .infra/jars/flink/*.jar)")
    a = ap.parse_args(argv)
    if bool(a.events) == bool(a.bootstrap_servers):
        ap.error("give exactly one of --events (file mode) or --bootstrap-servers (Kafka mode)")
    absolute = lambda p: str(Path(p).resolve()) if p else None  # noqa: E731 - workers run elsewhere
    return JobConfig(events=absolute(a.events), out_dir=str(absolute(a.out)), state_dir=absolute(a.state),
                     contract_path=str(absolute(a.contract)),
                     threshold=a.threshold, auto_hold=not a.no_auto_hold,
                     max_out_of_orderness_ms=a.max_out_of_orderness_ms, idle_timeout_ms=a.idle_timeout_ms,
                     dedup_ttl_ms=a.dedup_ttl_ms, parallelism=a.parallelism, policy=a.policy,
                     shadow_policy=a.shadow_policy, global_max_actions_per_minute=a.global_max_actions_per_minute,
                     bootstrap_servers=a.bootstrap_servers, group_id=a.group_id,
                     topic_pattern=a.topic_pattern, startup_mode=a.startup_mode,
                     checkpoint_interval_ms=a.checkpoint_interval_ms, checkpoint_dir=absolute(a.checkpoint_dir),
                     from_checkpoint=a.from_checkpoint, jars=tuple(absolute(j) for j in a.jars),
                     jvm_prefilter=a.jvm_prefilter)


def build(env: StreamExecutionEnvironment, config: JobConfig, prefilter: PrefilterPlan) -> None:
    """Wire the pipeline onto `env`: file mode (sink embedded) or Kafka mode (sink is its own process).

    Stateful operators carry stable uids, so savepoints restore whatever optional stages are on."""
    if config.kafka_mode:
        t_env = StreamTableEnvironment.create(env)
        rows = source_stream(t_env, config, prefilter)
        ingress = rows.process(KafkaIngressFunction(config)).name("contract-gate").uid("contract-gate") \
            .start_new_chain()
        governed = ingress
    else:
        assert config.events is not None
        source = FileSource.for_record_stream_format(StreamFormat.text_line_format(),
                                                     str(Path(config.events).resolve())).build()
        lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "events-file").set_parallelism(1)
        ingress = lines.process(FileIngressFunction(config)).name("contract-gate").uid("contract-gate") \
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
    env = make_env(config, prefilter)
    build(env, config, prefilter)
    return env.execute("streaming-agent (kafka mode)" if config.kafka_mode else "streaming-agent (file mode)")


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    run(config)
    if not config.kafka_mode:
        print(summarize(config.out_dir))


if __name__ == "__main__":
    main()
