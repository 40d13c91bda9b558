"""Which plan may start: against a brute-force oracle, plans of one key start in arrival order and only after
the previous one of that key finished; every plan starts exactly once."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.key_order import KeyedQueue

script = st.lists(st.one_of(st.tuples(st.just("push"), st.sampled_from("abcd")),
                            st.tuples(st.just("start")),
                            st.tuples(st.just("finish"), st.integers(0, 20))), max_size=80)


@settings(max_examples=300, deadline=None)
@given(script)
def test_keyed_queue_against_the_oracle(ops):
    q: KeyedQueue[int] = KeyedQueue()
    pushed: list[tuple[str, int]] = []
    started: list[tuple[str, int]] = []
    running: list[tuple[str, int]] = []
    finished: list[tuple[str, int]] = []
    for op in ops:
        if op[0] == "push":
            item = (op[1], len(pushed))
            pushed.append(item)
            q.push(*item)
        elif op[0] == "start":
            got = q.pop_ready()
            # oracle: the earliest-pushed plan whose key has no running plan and whose earlier plans finished
            candidates = [p for p in pushed if p not in started
                          and all(e in finished for e in pushed if e[0] == p[0] and e[1] < p[1])]
            if got is None:
                assert not candidates
            else:
                assert got in candidates
                assert not any(r[0] == got[0] for r in running)
                started.append(got)
                running.append(got)
        elif running:
            done = running.pop(op[1] % len(running))
            finished.append(done)
            q.done(done[0])
        assert len(q) == len(pushed) - len(finished)
    for key in "abcd":
        assert [i for k, i in started if k == key] == sorted(i for k, i in started if k == key)
