"""The job's command line: flags to a JobConfig, every mistake caught before the JVM starts. No Flink.

Each mistake is one line on stderr and exit code 2, the argparse convention: a missing or
directory `--events` (a directory only with `--events-directory`), an `--out` or `--state` that is
not a writable directory, a `--threshold` that is not a non-negative decimal, a `--parallelism`
below 1, a `--policy` that cannot be imported, a `--contract` that is missing or invalid.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn

import yaml
from pydantic import ValidationError

from contracts.contract import load_contract
from jobs.config import JobConfig
from jobs.file_input import EventsError, input_files

DEFAULT_CHECKPOINT_INTERVAL_MS = 2_000
PROG = "agent-job"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _decimal(text: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal: {text!r}") from None
    if not d.is_finite() or d < 0:
        raise argparse.ArgumentTypeError(f"must be a finite decimal >= 0: {text!r}")
    return d


def _at_least(low: int):  # noqa: ANN202 - an argparse type
    def check(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}: {n}")
        return n
    check.__name__ = f"integer >= {low}"
    return check


def parser() -> OneLineParser:
    ap = OneLineParser(prog=PROG, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="The streaming agent job. File mode: --events FILE --out DIR (a local "
                                   "MiniCluster, the sink embedded). Kafka mode: --bootstrap-servers HOST:PORT "
                                   "(the sink runs as its own process, agent-sink).")
    ap.add_argument("--events", help="file mode: input JSON Lines, one envelope per line")
    ap.add_argument("--events-directory", action="store_true",
                    help="file mode: --events may be a directory; its files are read in name order, "
                         "partition = the file's index, offset = the line in it")
    ap.add_argument("--bootstrap-servers", help="Kafka mode: read the contract's topics, write Kafka topics")
    ap.add_argument("--out", default="out", help="file mode: output directory for the JSONL files")
    ap.add_argument("--state", help="durable state (outbox, receipts, tool ledger); default OUT/state")
    ap.add_argument("--contract", default=JobConfig.contract_path, help="the contract YAML")
    ap.add_argument("--threshold", type=_decimal, default=JobConfig.threshold, help="breach amount threshold")
    ap.add_argument("--no-auto-hold", action="store_true", help="breaches carry auto_hold=false")
    ap.add_argument("--max-out-of-orderness-ms", type=_at_least(0), default=JobConfig.max_out_of_orderness_ms,
                    help="the watermark bound; records later than it are DLQ'd late")
    ap.add_argument("--idle-timeout-ms", type=_at_least(0), default=0,
                    help="mark a quiet source split idle after N ms (0 = never; file mode has one split)")
    ap.add_argument("--dedup-ttl-ms", type=_at_least(1), default=JobConfig.dedup_ttl_ms,
                    help="how long an idempotency key stays in the dedup state")
    ap.add_argument("--parallelism", type=_at_least(1), default=JobConfig.parallelism, help="job parallelism")
    ap.add_argument("--policy", default="rules", help="'rules' or module:Class")
    ap.add_argument("--global-max-actions-per-minute", type=_at_least(1),
                    help="optional limit on actions across all accounts per 60 s of event time")
    ap.add_argument("--shadow-policy", help="candidate policy run beside the live one; executes nothing, "
                                            "writes shadow.jsonl")
    ap.add_argument("--python-execution-mode", choices=["thread", "process"], default=None,
                    help="PyFlink's Python execution mode; default: thread in file mode, process in Kafka mode "
                         "(the faster where the suite passes, see the README)")
    ap.add_argument("--trace-log", action=argparse.BooleanOptionalAction, default=None,
                    help="log every trace as a JSON line (logger streaming_agent.traces); default: on in Kafka "
                         "mode, off in file mode, where traces.jsonl holds them")
    ap.add_argument("--group-id", default=JobConfig.group_id, help="Kafka consumer group and transactional prefix")
    ap.add_argument("--topic-pattern", default=JobConfig.topic_pattern, help="Kafka mode: input topics (regex)")
    ap.add_argument("--startup-mode", default=JobConfig.startup_mode,
                    choices=["earliest-offset", "latest-offset", "group-offsets"], help="Kafka mode: where to start")
    ap.add_argument("--checkpoint-interval-ms", type=_at_least(1),
                    help=f"default: the cluster's (flink run), else {DEFAULT_CHECKPOINT_INTERVAL_MS}")
    ap.add_argument("--checkpoint-dir", help="default: the cluster's (flink run), else STATE/checkpoints "
                                             "(retained on cancel)")
    ap.add_argument("--from-checkpoint", help="restore from a retained checkpoint or savepoint path")
    ap.add_argument("--jvm-prefilter", action=argparse.BooleanOptionalAction, default=True,
                    help="Kafka mode: settle valid non-actionable CDC records on the JVM (jvm/); "
                         "--no-jvm-prefilter sends every record through the Python gate")
    ap.add_argument("--jars", nargs="*", default=[], help="connector jars (default .infra/jars/flink/*.jar)")
    return ap


def _writable_dir(ap: OneLineParser, flag: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        ap.error(f"{flag} {path}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        ap.error(f"{flag} {path}: cannot create it ({e.strerror})")
    if not os.access(path, os.W_OK | os.X_OK):
        ap.error(f"{flag} {path}: not writable")


def _importable(ap: OneLineParser, flag: str, spec: str) -> None:
    if spec == "rules":
        return
    module, _, name = spec.partition(":")
    if not module or not name:
        ap.error(f"{flag} {spec!r}: expected 'rules' or module:Class")
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        ap.error(f"{flag} {spec}: cannot import it ({type(e).__name__}: {str(e).splitlines()[0]})")


def parse_args(argv: list[str] | None = None) -> JobConfig:
    ap = parser()
    a = ap.parse_args(argv)
    if bool(a.events) == bool(a.bootstrap_servers):
        ap.error("give exactly one of --events (file mode) or --bootstrap-servers (Kafka mode)")
    if a.events:
        try:
            input_files(Path(a.events), a.events_directory)
        except EventsError as e:
            ap.error(str(e))
        _writable_dir(ap, "--out", Path(a.out))
    if a.state:
        _writable_dir(ap, "--state", Path(a.state))
    contract = Path(a.contract)
    if not contract.is_file():
        ap.error(f"--contract {contract}: no such file")
    try:
        load_contract(contract)
    except (ValidationError, yaml.YAMLError, OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).splitlines()
        ap.error(f"--contract {contract}: not a valid contract ({first[0] if first else type(e).__name__})")
    _importable(ap, "--policy", a.policy)
    if a.shadow_policy:
        _importable(ap, "--shadow-policy", a.shadow_policy)
    absolute = lambda p: str(Path(p).resolve()) if p else None  # noqa: E731 - workers run elsewhere
    mode = a.python_execution_mode or ("process" if a.bootstrap_servers else "thread")
    return JobConfig(events=absolute(a.events), events_directory=a.events_directory, out_dir=str(absolute(a.out)),
                     state_dir=absolute(a.state), contract_path=str(absolute(a.contract)),
                     threshold=a.threshold, auto_hold=not a.no_auto_hold,
                     max_out_of_orderness_ms=a.max_out_of_orderness_ms, idle_timeout_ms=a.idle_timeout_ms,
                     dedup_ttl_ms=a.dedup_ttl_ms, parallelism=a.parallelism, policy=a.policy,
                     shadow_policy=a.shadow_policy, global_max_actions_per_minute=a.global_max_actions_per_minute,
                     python_execution_mode=mode, trace_log=a.trace_log,
                     bootstrap_servers=a.bootstrap_servers, group_id=a.group_id,
                     topic_pattern=a.topic_pattern, startup_mode=a.startup_mode,
                     checkpoint_interval_ms=a.checkpoint_interval_ms, checkpoint_dir=absolute(a.checkpoint_dir),
                     from_checkpoint=a.from_checkpoint, jars=tuple(str(absolute(j)) for j in a.jars),
                     jvm_prefilter=a.jvm_prefilter)


if __name__ == "__main__":  # `python -m jobs.command_line ...` checks a command line without running it
    print(parse_args(sys.argv[1:]))
