"""The operators' DLQ tool: look at DLQ records and replay the ones that can be replayed.

    python -m sinks.dlq_tool list    --dlq out/dlq.jsonl
    python -m sinks.dlq_tool count   --dlq out/dlq.jsonl
    python -m sinks.dlq_tool show 3  --dlq out/dlq.jsonl
    python -m sinks.dlq_tool replay  --dlq out/dlq.jsonl --index 3 \\
        --set payload.after.email=tok_abcdefgh1 --to-file replay.jsonl
    python -m sinks.dlq_tool replay  --bootstrap-servers localhost:9092 --topic ops.agent_dlq \\
        --reason rate_limited                # back to the envelopes' topics

Input: `--dlq FILE` (dlq.jsonl of file mode), or `--bootstrap-servers B [--topic ops.agent_dlq]`
(read_committed, from the beginning until idle, no consumer group). Records are numbered from
1 in the order read. Output of `replay`: `--to-file FILE` (JSON Lines, one envelope per line,
`-` for stdout), else Kafka (`--bootstrap-servers`): topic = the envelope's topic, key = its key,
value = its payload (JSON, or schemaless Avro for Avro inputs of the contract), header ts_ms = ts_ms.

A replayed envelope keeps topic, key and ts_ms, hence its idempotency key: the job's dedup and
the sink's outbox make sure nothing runs twice however often it is replayed. Its old
partition/offset are dropped (it is a new record at a new position).

All decisions live in pure functions (`load_entries`, `select`, `apply_fixes`,
`replay_plan`, ...); `main` only parses arguments and does the I/O.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from contracts.contract import DEFAULT_CONTRACT, Contract, load_contract
from contracts.idempotency import idempotency_key
from contracts.kafka_envelope import kafka_record, to_json
from contracts.outcomes import Reason
from contracts.pii import MASK

DEFAULT_TOPIC = "ops.agent_dlq"

# Reasons decided by the contract gate: the envelope is what arrived (masked), so replaying it
# unchanged would be rejected again for the same reason unless the contract changed.
GATE_REASONS = frozenset({
    Reason.MALFORMED_JSON, Reason.NOT_AN_OBJECT, Reason.MISSING_FIELD, Reason.INVALID_ENVELOPE,
    Reason.NOT_ALLOWLISTED, Reason.SCHEMA_VIOLATION, Reason.UNKNOWN_REQUIRED_FIELD,
    Reason.PII_NOT_TOKENIZED, Reason.SENSITIVITY_ABOVE_CEILING,
})
ENVELOPE_FIELDS = ("topic", "key", "ts_ms", "schema", "payload")
DROPPED_ON_REPLAY = ("partition", "offset")
IDENTITY_FIELDS = ("topic", "key", "ts_ms")


# -- reading -------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One DLQ record and where it was read (`record` is None when the DLQ line is not a JSON object)."""

    index: int
    where: str
    record: dict[str, Any] | None

    @property
    def reason(self) -> str:
        return str(self.record.get("reason", "?")) if self.record else "unreadable"

    @property
    def envelope(self) -> Any:
        return self.record.get("envelope") if self.record else None

    @property
    def idempotency_key(self) -> str | None:
        if not self.record:
            return None
        key = self.record.get("idempotency_key") or (self.record.get("action") or {}).get("idempotency_key")
        return key if isinstance(key, str) else None


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def load_entries(lines: Iterable[tuple[str, str | bytes | None]]) -> list[Entry]:
    """Number the DLQ records (from 1) of `(where, text)` pairs, skipping blank lines."""
    out: list[Entry] = []
    for where, text in lines:
        if text is None or not (text.strip() if isinstance(text, str) else text.strip()):
            continue
        try:
            rec = _loads(text)
        except ValueError:
            rec = None
        out.append(Entry(len(out) + 1, where, rec if isinstance(rec, dict) else None))
    return out


def file_lines(path: str | Path) -> list[tuple[str, str]]:
    name = Path(path).name
    with open(path, encoding="utf-8", errors="replace") as f:
        return [(f"{name}:{n}", line) for n, line in enumerate(f, start=1)]


# -- looking -------------------------------------------------------------------
def _short(text: Any, width: int) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= width else s[: width - 1] + "…"


def source_of(entry: Entry) -> str:
    src = (entry.record or {}).get("source") or {}
    return "/".join("-" if src.get(k) is None else str(src.get(k)) for k in ("topic", "partition", "offset"))


def short_key(key: str | None) -> str:
    """`idem-` and 16 hex digits: enough to grep traces, short enough for one line (`show` has it all)."""
    return "-" if not key else key if len(key) <= 22 else key[:21] + "…"


def list_line(entry: Entry, error_width: int = 90) -> str:
    """`index reason topic/partition/offset idempotency-key [tool] error` for `list`."""
    if entry.record is None:
        return f"{entry.index:>5}  {'unreadable':<26} {entry.where}: the DLQ line is not a JSON object"
    action = entry.record.get("action")
    tool = f" [{action.get('tool')}]" if isinstance(action, dict) else ""
    return (f"{entry.index:>5}  {entry.reason:<26} {source_of(entry):<34} {short_key(entry.idempotency_key):<22}"
            f"{tool}  {_short(entry.record.get('error', ''), error_width)}")


def count_by_reason(entries: Iterable[Entry]) -> Counter[str]:
    return Counter(e.reason for e in entries)


def find(entries: Sequence[Entry], index: int) -> Entry:
    for e in entries:
        if e.index == index:
            return e
    raise LookupError(f"no DLQ record #{index} (there are {len(entries)})")


# -- selecting and fixing ------------------------------------------------------------
def select(entries: Iterable[Entry], reasons: Iterable[str] = (), indexes: Iterable[int] = ()) -> list[Entry]:
    """Records matching any of `reasons` (if given) AND any of `indexes` (if given)."""
    rs, ix = set(reasons), set(indexes)
    return [e for e in entries if (not rs or e.reason in rs) and (not ix or e.index in ix)]


@dataclass(frozen=True)
class Fix:
    """`--set path=value` (value: JSON literal, else text), `--set-str path=value` (text), `--unset path`."""

    path: tuple[str, ...]
    value: Any = None
    unset: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def _split_path(path: str) -> tuple[str, ...]:
    parts = tuple(path.strip().split("."))
    if not path.strip() or any(not p for p in parts):
        raise ValueError(f"bad path {path!r}: use dotted names such as payload.after.email")
    return parts


def parse_fix(spec: str, as_text: bool = False) -> Fix:
    path, sep, raw = spec.partition("=")
    if not sep:
        raise ValueError(f"bad fix {spec!r}: expected path=value")
    if as_text:
        return Fix(_split_path(path), raw)
    try:
        value = _loads(raw)
    except ValueError:
        value = raw
    return Fix(_split_path(path), value)


def parse_unset(path: str) -> Fix:
    return Fix(_split_path(path), unset=True)


class FixError(ValueError):
    pass


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def apply_fixes(envelope: dict[str, Any], fixes: Iterable[Fix]) -> dict[str, Any]:
    """A copy of `envelope` with the fixes applied; every container on a path must already exist."""
    out = _copy(envelope)
    for fx in fixes:
        node: Any = out
        for i, part in enumerate(fx.path[:-1]):
            node = _child(node, part, fx, i)
        last = fx.path[-1]
        if isinstance(node, dict):
            if fx.unset:
                node.pop(last, None)
            else:
                node[last] = _copy(fx.value)
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node) and not fx.unset:
            node[int(last)] = _copy(fx.value)
        else:
            where = ".".join(fx.path[:-1]) or "(envelope)"
            raise FixError(f"cannot {'unset' if fx.unset else 'set'} {fx.dotted}: {where} is "
                           f"{_kind(node)}, not an object")
    return out


def _child(node: Any, part: str, fx: Fix, i: int) -> Any:
    where = ".".join(fx.path[: i + 1])
    if isinstance(node, dict) and isinstance(node.get(part), (dict, list)):
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    got = node.get(part, ...) if isinstance(node, dict) else ...
    what = "absent" if got is ... else _kind(got)
    raise FixError(f"cannot {'unset' if fx.unset else 'set'} {fx.dotted}: {where} is {what}")


def _kind(v: Any) -> str:
    return "null" if v is None else f"a {type(v).__name__}"


def masked_paths(value: Any, prefix: str = "") -> list[str]:
    """Paths of every string still holding the mask `***` (a value the DLQ could not keep)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += masked_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += masked_paths(v, f"{prefix}.{i}" if prefix else str(i))
    elif isinstance(value, str) and MASK in value:
        found.append(prefix or "(value)")
    return found


def _pii_not_tokens(value: Any, contract: Contract, prefix: str = "") -> list[str]:
    pii = set(contract.governance.pii_fields)
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if k in pii and v is not None and not (isinstance(v, str) and contract.token_regex.fullmatch(v)):
                found.append(path)
            else:
                found += _pii_not_tokens(v, contract, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _pii_not_tokens(v, contract, f"{prefix}.{i}")
    return found


# -- deciding --------------------------------------------------------------------
def _field_types(env: dict[str, Any]) -> dict[str, bool]:
    """Whether each envelope field has the type the gate expects."""
    ts = env.get("ts_ms")
    return {"topic": isinstance(env.get("topic"), str), "schema": isinstance(env.get("schema"), str),
            "ts_ms": isinstance(ts, int) and not isinstance(ts, bool) and ts >= 0,
            "key": env.get("key") is None or isinstance(env.get("key"), str),
            "payload": env.get("payload") is None or isinstance(env.get("payload"), dict)}


def replay_problems(entry: Entry, envelope: Any, fixed: bool, contract: Contract, as_is: bool = False) -> list[str]:
    """Why `envelope` (the entry's envelope after fixes) must not be replayed; [] when it may."""
    if entry.record is None:
        return ["the DLQ line itself is not a JSON object"]
    if isinstance(entry.envelope, str):
        return [f"the DLQ keeps only the masked raw text of this line ({entry.reason}); there is no "
                "envelope to replay: fix the producer and resend the record"]
    if not isinstance(envelope, dict):
        return [f"the DLQ record's envelope is {_kind(envelope)}, not an object"]
    problems: list[str] = []
    masked = masked_paths(envelope)
    if masked:
        problems.append(f"masked value(s) at {', '.join(masked)}: the DLQ never keeps raw PII; supply the "
                        f"tokenized value with --set {masked[0]}=tok_... (or remove it with --unset)")
    missing = [f for f in ENVELOPE_FIELDS if f not in envelope]
    if missing:
        problems.append(f"envelope lacks field(s) {', '.join(missing)}: add them with --set")
    wrong = [name for name, ok in _field_types(envelope).items() if name in envelope and not ok]
    if wrong:
        problems.append(f"envelope field(s) of the wrong type: {', '.join(wrong)}")
    if not missing and not wrong:
        if contract.input_for(envelope["topic"], envelope["schema"]) is None:
            problems.append(f"{envelope['topic']}@{envelope['schema']} is not an input of contract {contract.name}")
        gov = contract.governance
        label = envelope.get("sensitivity") or gov.default_sensitivity
        if label not in gov.sensitivity_levels:
            problems.append(f"unknown sensitivity label {label!r}")
        elif gov.sensitivity_rank(label) > gov.sensitivity_rank(gov.sensitivity_ceiling):
            problems.append(f"sensitivity {label} is above the ceiling {gov.sensitivity_ceiling}")
        old_key = entry.idempotency_key
        if old_key and idempotency_key(envelope["topic"], envelope["key"], envelope["ts_ms"]) != old_key:
            problems.append(f"the fixes change {'/'.join(IDENTITY_FIELDS)}, hence the idempotency key: the replay "
                            "would not be recognised as the same event")
    not_tokens = [p for p in _pii_not_tokens(envelope.get("payload"), contract, "payload") if p not in masked]
    if not_tokens:
        problems.append(f"PII field(s) {', '.join(not_tokens)} hold something other than a token "
                        f"(pattern {contract.governance.token_pattern})")
    if entry.reason in GATE_REASONS and not fixed and not as_is and not problems:
        error = _short(entry.record.get("error", ""), 100)
        problems.append(f"rejected by the contract gate ({entry.reason}: {error}); "
                        "replayed unchanged it would be rejected again: fix it with --set/--unset, or pass "
                        "--as-is if the contract has changed since")
    return problems


@dataclass(frozen=True)
class Replay:
    entry: Entry
    envelope: dict[str, Any]
    idempotency_key: str


@dataclass
class ReplayPlan:
    replays: list[Replay] = field(default_factory=list)
    refused: list[tuple[Entry, list[str]]] = field(default_factory=list)
    duplicates: list[tuple[Entry, int]] = field(default_factory=list)  # (entry, index of the replay kept)


def replay_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as a new input record: same identity, no old position."""
    return {k: v for k, v in envelope.items() if k not in DROPPED_ON_REPLAY}


def replay_plan(entries: Iterable[Entry], fixes: Sequence[Fix], contract: Contract, *,
                as_is: bool = False, dedup: bool = True) -> ReplayPlan:
    """Decide, for each selected entry, replay (with fixes) or refuse (with reasons).

    With `dedup` (the default) each idempotency key is replayed once: the first record wins and
    later ones (the other actions of a rate-limited plan, redeliveries) are listed as duplicates.
    """
    plan = ReplayPlan()
    kept: dict[str, int] = {}
    for entry in entries:
        env = entry.envelope
        fixed = False
        if isinstance(env, dict) and fixes:
            try:
                new = apply_fixes(env, fixes)
            except FixError as e:
                plan.refused.append((entry, [str(e)]))
                continue
            fixed, env = new != env, new
        problems = replay_problems(entry, env, fixed, contract, as_is)
        if problems:
            plan.refused.append((entry, problems))
            continue
        key = idempotency_key(env["topic"], env["key"], env["ts_ms"])
        if dedup and key in kept:
            plan.duplicates.append((entry, kept[key]))
            continue
        kept[key] = entry.index
        plan.replays.append(Replay(entry, replay_envelope(env), key))
    return plan


# -- writing -----------------------------------------------------------------------
def to_line(envelope: dict[str, Any]) -> str:
    return to_json(envelope)


def write_file(plan: ReplayPlan, out: io.TextIOBase | Any) -> int:
    for r in plan.replays:
        out.write(to_line(r.envelope) + "\n")
    return len(plan.replays)


def send_kafka(plan: ReplayPlan, producer: Any, contract: Contract) -> int:
    """Send every replay through a kafka-python-like producer, flush, and fail on any failed send."""
    futures = []
    for r in plan.replays:
        rec = kafka_record(r.envelope, contract)
        # Event time travels in the ts_ms header (and Debezium's source.ts_ms); the record timestamp
        # stays produce time, or retention would delete replays of old events.
        futures.append(producer.send(rec.topic, key=rec.key, value=rec.value, headers=rec.headers))
    producer.flush()
    failed = [f for f in futures if f is not None and f.failed()]
    if failed:
        raise RuntimeError(f"{len(failed)} replay send(s) failed: {failed[0].exception}")
    return len(futures)


# -- Kafka I/O (thin) ------------------------------------------------------------------
def kafka_lines(bootstrap_servers: str, topic: str, idle_ms: int = 3000,
                consumer_factory: Callable[..., Any] | None = None) -> list[tuple[str, bytes | None]]:
    """Every committed record of `topic`, from the beginning, until caught up (or idle for idle_ms)."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    factory = consumer_factory or KafkaConsumer
    consumer = factory(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                       isolation_level="read_committed", auto_offset_reset="earliest")
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise LookupError(f"topic {topic} not found on {bootstrap_servers}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        got: list[tuple[int, int, bytes | None]] = []
        last = time.monotonic()
        while True:
            batch = consumer.poll(timeout_ms=500)
            for rs in batch.values():
                got += [(r.partition, r.offset, r.value) for r in rs]
            if any(batch.values()):
                last = time.monotonic()
            if all(consumer.position(tp) >= end[tp] for tp in tps):
                break
            if (time.monotonic() - last) * 1000 >= idle_ms:
                break
        return [(f"{topic}:{p}@{o}", v) for p, o, v in sorted(got, key=lambda x: (x[0], x[1]))]
    finally:
        consumer.close()


def kafka_producer(bootstrap_servers: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True)


# -- CLI ----------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--dlq", help="a dlq.jsonl of file mode", **d)
    p.add_argument("--bootstrap-servers", help="Kafka: read --topic when no --dlq; replay there when no --to-file", **d)
    p.add_argument("--topic", help=f"the DLQ topic (default {DEFAULT_TOPIC})", **d)
    p.add_argument("--idle-ms", type=int, help="stop reading the DLQ topic after this much quiet (default 3000)", **d)
    p.add_argument("--contract", help="contract YAML (allowlist, PII, Avro schemas); default the seed contract", **d)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sinks.dlq_tool", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(ap, suppress=False)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, text in (("list", "one line per record"), ("count", "records by reason")):
        _common(sub.add_parser(name, help=text), suppress=True)
    show = sub.add_parser("show", help="one record, pretty JSON")
    show.add_argument("index", type=int)
    _common(show, suppress=True)
    rp = sub.add_parser("replay", help="send selected envelopes back as input records")
    _common(rp, suppress=True)
    rp.add_argument("--reason", action="append", default=[], help="select by reason (repeatable)")
    rp.add_argument("--index", action="append", type=int, default=[], help="select by index (repeatable)")
    rp.add_argument("--all", action="store_true", help="select every record")
    rp.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="fix the envelope; VALUE is a JSON literal, else text (repeatable)")
    rp.add_argument("--set-str", action="append", default=[], metavar="PATH=TEXT",
                    help="fix the envelope with a text value, e.g. key={\"order_id\":\"1\"} (repeatable)")
    rp.add_argument("--unset", action="append", default=[], metavar="PATH", help="remove a field (repeatable)")
    rp.add_argument("--as-is", action="store_true",
                    help="replay gate rejections unchanged (after a contract change)")
    rp.add_argument("--keep-duplicates", action="store_true",
                    help="replay every selected record, not one per idempotency key")
    rp.add_argument("--to-file", help="write JSON Lines here ('-' = stdout) instead of Kafka")
    rp.add_argument("--dry-run", action="store_true", help="decide and report, write nothing")
    return ap


def _defaults(a: argparse.Namespace) -> argparse.Namespace:
    for k, v in (("dlq", None), ("bootstrap_servers", None), ("topic", DEFAULT_TOPIC), ("idle_ms", 3000),
                 ("contract", str(DEFAULT_CONTRACT))):
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    return a


def _entries(a: argparse.Namespace) -> list[Entry]:
    if a.dlq:
        return load_entries(file_lines(a.dlq))
    if a.bootstrap_servers:
        return load_entries(kafka_lines(a.bootstrap_servers, a.topic, a.idle_ms))
    raise SystemExit("give --dlq FILE, or --bootstrap-servers (and --topic) to read the DLQ topic")


def main(argv: list[str] | None = None, stdout: Any = None, stderr: Any = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    a = _defaults(build_parser().parse_args(argv))
    try:
        entries = _entries(a)
    except (OSError, LookupError) as x:
        print(f"cannot read the DLQ: {x}", file=err)
        return 2
    if a.command == "list":
        for e in entries:
            print(list_line(e), file=out)
        return 0
    if a.command == "count":
        counts = count_by_reason(entries)
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{reason:<26} {n:>6}", file=out)
        print(f"{'total':<26} {len(entries):>6}", file=out)
        return 0
    if a.command == "show":
        try:
            e = find(entries, a.index)
        except LookupError as x:
            print(str(x), file=err)
            return 2
        print(json.dumps(e.record if e.record is not None else {"unreadable": e.where}, indent=2,
                         ensure_ascii=False, default=str), file=out)
        return 0
    return _replay(a, entries, out, err)


def _replay(a: argparse.Namespace, entries: list[Entry], out: Any, err: Any) -> int:
    if not (a.reason or a.index or a.all):
        print("select records with --reason, --index or --all", file=err)
        return 2
    try:
        fixes = ([parse_fix(s) for s in a.set] + [parse_fix(s, as_text=True) for s in a.set_str]
                 + [parse_unset(p) for p in a.unset])
    except ValueError as x:
        print(str(x), file=err)
        return 2
    chosen = select(entries, a.reason, a.index)
    unknown = sorted(set(a.index) - {e.index for e in entries})
    if unknown:
        print(f"no DLQ record(s) #{', #'.join(map(str, unknown))}", file=err)
    if not chosen:
        print("nothing selected", file=err)
        return 2
    if not a.to_file and not a.bootstrap_servers and not a.dry_run:
        print("give --to-file FILE or --bootstrap-servers to say where to replay", file=err)
        return 2
    contract = load_contract(a.contract)
    plan = replay_plan(chosen, fixes, contract, as_is=a.as_is, dedup=not a.keep_duplicates)
    for entry, problems in plan.refused:
        print(f"refused #{entry.index} ({entry.reason}): " + "; ".join(problems), file=err)
    for entry, kept in plan.duplicates:
        print(f"skipped #{entry.index} ({entry.reason}): same idempotency key as #{kept}", file=err)
    verb = "would replay" if a.dry_run else "replayed"
    if plan.replays and not a.dry_run:
        if a.to_file == "-":
            write_file(plan, out)
        elif a.to_file:
            with open(a.to_file, "w", encoding="utf-8") as f:
                write_file(plan, f)
        else:
            try:
                producer = kafka_producer(a.bootstrap_servers)
                try:
                    send_kafka(plan, producer, contract)
                finally:
                    producer.close()
            except Exception as x:  # noqa: BLE001 - report, do not dump a traceback on the operator
                print(f"replay to Kafka failed: {type(x).__name__}: {x} (replays are idempotent: "
                      "running the same command again is safe)", file=err)
                return 1
    target = a.to_file or (f"Kafka {a.bootstrap_servers}" if a.bootstrap_servers else "-")
    for r in plan.replays:
        print(f"{verb} #{r.entry.index} ({r.entry.reason}) {r.envelope['topic']}@{r.envelope['schema']} "
              f"key={r.envelope.get('key')} {r.idempotency_key} -> {target}", file=err)
    done = "to replay" if a.dry_run else "replayed"
    print(f"{len(plan.replays)} {done}, {len(plan.duplicates)} duplicate(s) skipped, {len(plan.refused)} refused",
          file=err)
    return 1 if plan.refused else 0


if __name__ == "__main__":
    sys.exit(main())
