"""The sandbox tool service over real HTTP: the IETF Idempotency-Key draft's answers (400, 409 in progress,
422 reused, stored response), latency, rate limits, many requests in flight, the comment endpoint, faults."""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import aiohttp
import pytest
import requests

from sinks.faults import Faults, FaultPlan
from tests.sinks.helpers import effects

TICKET = {"summary": "Order o1 risk breach", "labels": ["risk"]}


def test_same_key_replays_and_different_body_is_422(sandbox):
    first = sandbox.post("/tickets", TICKET, "k1")
    again = sandbox.post("/tickets", TICKET, "k1")
    other = sandbox.post("/tickets", {**TICKET, "summary": "something else"}, "k1")
    assert first.status_code == 201 and first.json()["id"].startswith("TKT-")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert other.status_code == 422 and "different body" in other.json()["error"]
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]


@pytest.mark.parametrize("sandbox", [("--latency-ms", "400")], indirect=True)
def test_a_key_still_in_progress_is_409_then_its_stored_response(sandbox):
    first: dict = {}
    t = threading.Thread(target=lambda: first.update(r=sandbox.post("/tickets", TICKET, "k1")))
    t.start()
    time.sleep(0.15)  # the first request is waiting out its latency: in progress, nothing committed yet
    during = sandbox.post("/tickets", TICKET, "k1")
    assert during.status_code == 409 and "in progress" in during.json()["error"]
    assert sandbox.ledger() == []
    t.join()
    after = sandbox.post("/tickets", TICKET, "k1")
    assert first["r"].status_code == 201
    assert after.status_code == 200 and after.json() == first["r"].json()
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]


@pytest.mark.parametrize("sandbox", [("--rate-limit", "tickets=2", "--burst", "2")], indirect=True)
def test_over_the_rate_limit_is_429_with_retry_after_per_api(sandbox):
    codes = [sandbox.post("/tickets", TICKET, f"k{i}") for i in range(3)]
    assert [c.status_code for c in codes] == [201, 201, 429]
    assert codes[2].headers["Retry-After"] == "1"  # whole seconds, as HTTP says
    assert sandbox.post("/messages", {"account_id": "a", "template": "t"}, "m1").status_code == 201  # other API
    time.sleep(1.0)
    assert sandbox.post("/tickets", TICKET, "k2").status_code == 201  # the refused key, after Retry-After
    assert sorted(k for _, k in effects(sandbox.ledger())) == ["k0", "k1", "k2", "m1"]
    assert sandbox.stats()["status_by_api"]["tickets"] == {"201": 3, "429": 1}


@pytest.mark.parametrize("sandbox", [("--latency-ms", "150", "--jitter-ms", "30", "--api-latency", "messages=0")],
                         indirect=True)
def test_latency_is_fixed_plus_jitter_and_per_api(sandbox):
    def timed(path: str, body: dict, key: str) -> float:
        t0 = time.perf_counter()
        assert sandbox.post(path, body, key).status_code == 201
        return time.perf_counter() - t0

    tickets = [timed("/tickets", TICKET, f"k{i}") for i in range(5)]
    messages = [timed("/messages", {"account_id": "a", "template": "t"}, f"m{i}") for i in range(5)]
    assert all(0.115 <= t < 0.5 for t in tickets), tickets
    assert max(tickets) - min(tickets) > 0.002, tickets  # jittered, not fixed
    assert all(t < 0.1 for t in messages), messages


@pytest.mark.parametrize("sandbox", [("--latency-ms", "300")], indirect=True)
def test_many_requests_in_flight_and_an_exact_ledger(sandbox):
    """200 requests at once, 150 keys (50 sent twice at the same moment): concurrent, not queued, and
    each key has exactly one effect whatever its twin got (the stored answer or 409)."""
    keys = [f"k{i}" for i in range(150)] + [f"k{i}" for i in range(50)]

    async def burst() -> list[tuple[str, int]]:
        async with aiohttp.ClientSession() as s:
            async def one(key: str) -> tuple[str, int]:
                async with s.post(sandbox.url + "/messages", json={"account_id": key, "template": "t"},
                                  headers={"Idempotency-Key": key}) as r:
                    return key, r.status
            return await asyncio.gather(*(one(k) for k in keys))

    t0 = time.perf_counter()
    answers = asyncio.run(burst())
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, elapsed  # one at a time would take 60 s
    by_key: dict[str, list[int]] = {}
    for key, status in answers:
        by_key.setdefault(key, []).append(status)
    assert all(201 in statuses for statuses in by_key.values())
    assert all(sorted(st) in ([201, 409], [200, 201]) for k, st in by_key.items() if int(k[1:]) < 50)
    assert Counter(k for _, k in effects(sandbox.ledger())) == Counter({f"k{i}": 1 for i in range(150)})
    assert sandbox.stats()["max_inflight_by_api"]["messages"] >= 100


def test_refs_follow_the_sandbox_conventions(sandbox):
    assert sandbox.post("/payments/holds", {"order_id": "12345", "reason": "r"}, "k").json()["id"] == "HOLD-12345"
    assert sandbox.post("/messages", {"account_id": "a", "template": "t"}, "k").json()["id"].startswith("MSG-")


def test_requests_without_key_or_fields_are_rejected(sandbox):
    no_key = sandbox.post("/tickets", TICKET, None)
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.json()["error"]
    assert sandbox.post("/tickets", {"labels": []}, "k2").status_code == 422
    assert sandbox.post("/nowhere", {}, "k3").status_code == 404
    assert sandbox.ledger() == []


def test_ticket_comments(sandbox):
    ref = sandbox.post("/tickets", TICKET, "k1").json()["id"]
    c = sandbox.post(f"/tickets/{ref}/comments", {"text": "hold placed"}, "c1")
    assert c.status_code == 201 and c.json()["id"].startswith("CMT-") and c.json()["ticket"] == ref
    assert sandbox.post(f"/tickets/{ref}/comments", {"text": "hold placed"}, "c1").json() == c.json()
    assert sandbox.post("/tickets/TKT-NOPE/comments", {"text": "x"}, "c2").status_code == 404
    assert effects(sandbox.ledger()) == [("ticket.create", "k1"), ("ticket.comment", "c1")]


def test_close_and_release_change_object_state(sandbox):
    t = sandbox.post("/tickets", TICKET, "k1").json()["id"]
    sandbox.post("/payments/holds", {"order_id": "o9", "reason": "r"}, "k1")
    assert sandbox.post(f"/tickets/{t}/close", {"reason": "x"}, "comp-k1").json()["status"] == "closed"
    assert sandbox.post("/payments/holds/HOLD-o9/release", {"reason": "x"}, "comp-k1").json()["status"] == "released"
    assert sandbox.obj(t)["status"] == "closed" and sandbox.obj("HOLD-o9")["status"] == "released"


def test_injected_500s_then_success(sandbox):
    sandbox.faults(fail_next=2)
    assert [sandbox.post("/tickets", TICKET, "k").status_code for _ in range(3)] == [500, 500, 201]
    assert len(sandbox.ledger()) == 1


def test_dropped_connection_before_and_after_work(sandbox):
    sandbox.faults(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        sandbox.post("/tickets", TICKET, "k1")
    assert sandbox.ledger() == []
    sandbox.faults(drop_after_next=1)
    with pytest.raises(requests.ConnectionError):
        sandbox.post("/tickets", TICKET, "k1")
    assert effects(sandbox.ledger()) == [("ticket.create", "k1")]  # the work happened, the answer was lost


def test_slow_request_past_the_client_timeout_still_does_its_work_once(sandbox):
    sandbox.faults(slow_next=1, slow_ms=800)
    with pytest.raises(requests.Timeout):
        requests.post(sandbox.url + "/tickets", json=TICKET, headers={"Idempotency-Key": "k1"}, timeout=0.2)
    assert effects(sandbox.settled()) == [("ticket.create", "k1")]
    assert sandbox.post("/tickets", TICKET, "k1").status_code == 200  # a retry is a replay


def test_fault_settings_are_validated_and_resettable(sandbox):
    r = requests.post(sandbox.url + "/_faults", json={"fail_nxt": 1}, timeout=5)
    assert r.status_code == 400
    sandbox.faults(fail_paths={"/tickets": 503}, latency_ms=1)
    assert sandbox.post("/tickets", TICKET, "k").status_code == 503
    assert sandbox.faults(reset=True) == Faults().as_dict()
    assert sandbox.post("/tickets", TICKET, "k").status_code == 201


def test_fault_plan_consumption_order():
    f = Faults()
    f.update({"fail_paths": {"/tickets": 422, "/payments/holds/*": 503}, "fail_next": 1, "drop_after_next": 1})
    assert f.take("/tickets") == FaultPlan(fail_status=422)          # exact path, counters untouched
    assert f.take("/tickets/TKT-1/close") == FaultPlan(fail_status=500)  # not the exact path: fail_next
    assert f.take("/payments/holds/HOLD-1/release") == FaultPlan(fail_status=503)  # prefix
    assert f.take("/messages") == FaultPlan(drop_after=True)
    assert f.take("/messages") == FaultPlan()
    with pytest.raises(ValueError):
        f.update({"nope": 1})


def test_token_bucket_and_latency_rules():
    from random import Random

    from sinks.sandbox_profile import Latency, TokenBucket, api_of, parse_assignments

    bucket = TokenBucket(rate_per_s=10, burst=2)
    assert [bucket.admit(0.0), bucket.admit(0.0)] == [0.0, 0.0]
    assert bucket.admit(0.0) == pytest.approx(0.1)      # empty: a token in 1/rate s
    assert bucket.admit(0.05) == pytest.approx(0.05)    # refused requests take nothing
    assert bucket.admit(0.1) == 0.0 and bucket.admit(10.0) == 0.0 and bucket.admit(10.0) == 0.0
    assert bucket.admit(10.0) > 0                       # never more than the burst saved up
    rng = Random(1)
    samples = [Latency(50, 20).sample_s(rng) for _ in range(2000)]
    assert 0.030 <= min(samples) < 0.032 and 0.068 < max(samples) <= 0.070
    assert Latency(5, 20).sample_s(rng) >= 0.0 and Latency().sample_s(rng) == 0.0
    assert Latency.parse("200:50") == Latency(200, 50) and Latency.parse("80") == Latency(80, 0)
    assert api_of("/payments/holds/HOLD-1/release") == "payments"
    with pytest.raises(ValueError):
        parse_assignments(["ticket=5"], "--rate-limit")  # a typo must not configure nothing
