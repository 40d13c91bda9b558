from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.rate_limit import admit
from tests.oracles import rate_limit_oracle


def run(plans, limit):
    accepted, out = [], []
    for ts, n in plans:
        ok, accepted = admit(accepted, ts, n, limit)
        out.append(ok)
    return out


def test_limit_and_window_edge():
    assert run([(0, 2), (1000, 1), (59_999, 1)], limit=3) == [True, True, False]
    assert run([(0, 2), (1000, 1), (60_000, 2)], limit=3) == [True, True, True]  # (0..60000] drops t=0


def test_plans_are_all_or_nothing():
    assert run([(0, 2), (1, 2)], limit=3) == [True, False]
    assert run([(0, 2), (1, 2), (2, 1)], limit=3) == [True, False, True]


plans = st.lists(st.tuples(st.integers(0, 200_000), st.integers(1, 3)), max_size=40).map(
    lambda ps: sorted(ps, key=lambda p: p[0]))


@settings(max_examples=200, deadline=None)
@given(plans, st.integers(1, 6))
def test_matches_brute_force_oracle(ps, limit):
    assert run(ps, limit) == rate_limit_oracle(ps, limit, window=60_000)


@settings(max_examples=100, deadline=None)
@given(plans, st.integers(1, 6), st.data())
def test_replaying_any_prefix_decides_the_same(ps, limit, data):
    cut = data.draw(st.integers(0, len(ps)))
    assert run(ps[:cut], limit) == run(ps, limit)[:cut]
