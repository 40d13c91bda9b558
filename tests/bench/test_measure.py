"""The benchmark's arithmetic: steady-window rate, CPU per 1k events, cores per role, percentiles."""
import math

from bench.measure import Sample, cpu_share, percentile, sustained_rate


def samples():
    # start-up (nothing done), then 1,000 events/s for 10 s, using 0.5 CPU s per second (job 0.4, sink 0.1)
    out = [Sample(t, 0, t * 0.5, {}, {"job": t * 0.4, "sink": t * 0.1}) for t in range(5)]
    out += [Sample(5 + k, 1000 * k, (5 + k) * 0.5, {}, {"job": (5 + k) * 0.4, "sink": (5 + k) * 0.1})
            for k in range(1, 11)]
    return out


def test_rate_and_cpu_over_the_steady_window():
    rate, cpu_per_1k, window = sustained_rate(samples(), total=10_000)
    assert rate == 1000.0 and window == 8.0   # from 1,000 done (10%) to 9,000 done (90%)
    assert math.isclose(cpu_per_1k, 0.5)
    assert cpu_share(samples(), 10_000) == {"job": 0.4, "sink": 0.1}


def test_a_run_cut_by_its_time_limit_uses_what_it_did():
    rate, _, window = sustained_rate(samples()[:8], total=10_000)  # stopped at 3,000 done
    assert rate == 1000.0 and window == 2.0


def test_nothing_done_is_zero_not_an_error():
    assert sustained_rate(samples()[:5], total=10)[0] == 0.0


def test_a_tiny_run_committed_at_once_is_measured_from_the_sample_before_the_commit():
    out = [Sample(t, 0, 0.0) for t in range(5)] + [Sample(5.5, 3000, 0.0), Sample(6.5, 3000, 0.0)]
    rate, _, window = sustained_rate(out, total=3000)
    assert rate == 3000 / 1.5 and window == 1.5  # from t=4 (nothing yet) to t=5.5 (all of it)


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 99) == 99
    assert math.isnan(percentile([], 95))
