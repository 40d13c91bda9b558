"""The commit rule against a brute-force oracle: per partition, commit only below the lowest record fetched
and not yet safe (outputs sent and flushed), whatever order records finish in, with redeliveries."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.offsets import OffsetTracker

# an operation: ("fetch", partition, count) | ("finish", index into the running copies) | ("flush",) |
#               ("redeliver", partition): fetch again from the last commit, as after a rebalance
ops = st.lists(st.one_of(
    st.tuples(st.just("fetch"), st.integers(0, 1), st.integers(1, 4)),
    st.tuples(st.just("finish"), st.integers(0, 50)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("redeliver"), st.integers(0, 1)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(0, 1000))
def test_commit_points_equal_the_oracle_and_never_pass_an_unsafe_record(script, start):
    tracker = OffsetTracker()
    position = {0: start, 1: start}      # the consumer's next offset per partition
    committed = {0: start, 1: start}
    running: list[tuple[int, int]] = []  # copies fetched, outputs not sent
    sent: list[tuple[int, int]] = []     # outputs sent, not flushed
    safe: list[tuple[int, int]] = []     # every copy ever made safe
    fetched: list[tuple[int, int]] = []  # every copy ever fetched
    for op in script:
        if op[0] == "fetch":
            for _ in range(op[2]):
                copy = (op[1], position[op[1]])
                position[op[1]] += 1
                tracker.add(*copy)
                running.append(copy)
                fetched.append(copy)
        elif op[0] == "finish" and running:
            copy = running.pop(op[1] % len(running))
            tracker.finish(*copy)
            sent.append(copy)
        elif op[0] == "flush":
            assert tracker.flushed() == len(sent)
            safe += sent
            sent = []
        elif op[0] == "redeliver":
            position[op[1]] = committed[op[1]]
        points = tracker.commit_points()
        for p in (0, 1):
            copies = [o for q, o in fetched if q == p]
            if not copies:
                assert p not in points
                continue
            # a copy still running holds the point back even when an earlier copy is safe (conservative)
            unsafe = [o for o in set(copies) if copies.count(o) > [o2 for q, o2 in safe if q == p].count(o)]
            oracle = min(unsafe) if unsafe else max(copies) + 1
            if oracle > committed[p]:
                assert points[p] == oracle
            else:
                assert p not in points
            # safety: no commit passes a record none of whose copies has its outputs flushed
            never_safe = {o for o in copies if (p, o) not in safe}
            assert all(points.get(p, committed[p]) <= o for o in never_safe)
        tracker.committed(points)
        committed.update(points)
