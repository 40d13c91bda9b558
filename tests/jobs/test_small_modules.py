import ast
from pathlib import Path

from jobs import event_time_buffer as etb
from jobs.lateness import PartitionLateness

REPO = Path(__file__).resolve().parents[2]


def test_buffer_releases_in_event_time_order():
    buf = {}
    for ts, item in [(5, "e"), (1, "b"), (1, "a"), (9, "z")]:
        etb.add(buf, ts, item)
    assert etb.earliest(buf) == 1
    assert etb.pop_ready(buf, 5, tie_break=lambda x: x) == ["a", "b", "e"]
    assert list(buf) == [9]


def test_lateness_is_the_bounded_out_of_orderness_rule():
    late = PartitionLateness(bound_ms=100)
    assert [late.observe("f", t) for t in (1000, 950, 900, 899, 1200, 1100, 1099)] == \
        [False, False, False, True, False, False, True]
    assert late.observe("other-partition", 0) is False


def test_pure_modules_do_not_import_flink():
    pure = [p for d in ("contracts", "jobs", "sinks") for p in (REPO / d).glob("*.py")]
    assert pure
    for p in pure:
        if p.name == "agent_job.py":
            continue  # the wiring, by design
        tree = ast.parse(p.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.startswith("pyflink")], p


def test_jobs_and_sinks_never_import_each_other():
    def imports(p):
        tree = ast.parse(p.read_text())
        mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        return mods + [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]

    for p in (REPO / "sinks").rglob("*.py"):
        assert not [m for m in imports(p) if m.split(".")[0] == "jobs"], p
    for p in (REPO / "jobs").rglob("*.py"):
        if p.name != "agent_job.py":
            assert not [m for m in imports(p) if m.split(".")[0] == "sinks"], p
