"""The JVM prefilter's lateness rule against jobs.lateness, record by record (no Flink).

With the prefilter on, the JVM judges lateness in Kafka mode; with it off, the Python ingress does.
Both must give every record the same verdict, or the two pipelines DLQ different records `late`.
"""
from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from jobs.lateness import PartitionLateness
from jobs.prefilter import JAR

pytestmark = pytest.mark.skipif(not JAR.exists() or shutil.which("java") is None,
                                reason="jvm/ not built (scripts/setup.sh --infra builds it)")
BOUND_MS = 2_000


def jvm_verdicts(records: list[tuple[str, int]], bound_ms: int) -> list[bool]:
    out = subprocess.run(["java", "-cp", str(JAR), "streamingagent.prefilter.CheckCli", "--lateness", str(bound_ms)],
                         input="".join(f"{split} {ts}\n" for split, ts in records), capture_output=True, text=True,
                         timeout=120, check=True)
    verdicts = out.stdout.split()
    assert len(verdicts) == len(records) and set(verdicts) <= {"late", "ok"}
    return [v == "late" for v in verdicts]


def python_verdicts(records: list[tuple[str, int]], bound_ms: int) -> list[bool]:
    rule = PartitionLateness(bound_ms)
    return [rule.observe(split, ts) for split, ts in records]


def streams(seed: int, n_streams: int = 200) -> list[tuple[str, int]]:
    """Interleaved partitions with event times jittered around, at and beyond the bound, equal times,
    and jumps ahead; every stream has split names of its own."""
    rnd = random.Random(seed)
    out = []
    for s in range(n_streams):
        now = rnd.randrange(0, 10**13)
        for _ in range(rnd.randrange(1, 60)):
            split = f"cdc.public.orders/{s}-{rnd.randrange(3)}"
            now += rnd.choice([0, 1, 10, BOUND_MS // 2, BOUND_MS, BOUND_MS + 1, 5 * BOUND_MS])
            out.append((split, now - rnd.choice([0, 0, 1, BOUND_MS - 1, BOUND_MS, BOUND_MS + 1, 3 * BOUND_MS])))
    return out


def test_jvm_and_python_lateness_agree_record_by_record():
    records = streams(seed=11)
    py = python_verdicts(records, BOUND_MS)
    assert 0.05 < sum(py) / len(py) < 0.6  # the streams exercise both answers
    assert jvm_verdicts(records, BOUND_MS) == py


def test_the_bound_is_inclusive_on_both_sides():
    records = [("p", 10_000), ("p", 10_000 - BOUND_MS), ("p", 10_000 - BOUND_MS - 1), ("q", 0), ("p", 10_001)]
    assert python_verdicts(records, BOUND_MS) == jvm_verdicts(records, BOUND_MS) == [False, False, True, False, False]
