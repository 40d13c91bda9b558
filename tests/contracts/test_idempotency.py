import hashlib
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.idempotency import identity, idempotency_key, legacy_idempotency_key

TOPIC = "cdc.public.orders"


def test_version_2_is_sha256_of_the_length_prefixed_fields():
    key, ts = '{"order_id":"1"}', 1767225600000

    def field(b: bytes) -> bytes:
        return b"\x01" + len(b).to_bytes(8, "big") + b

    expected = hashlib.sha256(b"idem2" + field(TOPIC.encode()) + field(key.encode()) + field(str(ts).encode()))
    assert idempotency_key(TOPIC, key, ts) == "idem2-" + expected.hexdigest()


def test_the_legacy_key_is_the_seed_formula():
    key, ts = '{"order_id":"1"}', 1767225600000
    assert legacy_idempotency_key(TOPIC, key, ts) == "idem-" + hashlib.sha256(
        f"{TOPIC}{key}{ts}".encode("utf-8")).hexdigest()
    assert legacy_idempotency_key(TOPIC, None, ts) == legacy_idempotency_key(TOPIC, "", ts)


def test_the_seed_formulas_collision_is_gone():
    a, b = ("ord-1", 767225600000), ("ord-", 1767225600000)
    assert legacy_idempotency_key(TOPIC, *a) == legacy_idempotency_key(TOPIC, *b)  # the bug
    assert idempotency_key(TOPIC, *a) != idempotency_key(TOPIC, *b)


def test_records_without_a_key_are_told_apart_by_their_payload():
    one = {"op": "c", "after": {"account_id": "a1", "amount": Decimal("10.00")}}
    two = {"op": "c", "after": {"account_id": "a2", "amount": Decimal("10.00")}}
    for key in (None, ""):
        assert idempotency_key(TOPIC, key, 5, one) != idempotency_key(TOPIC, key, 5, two)
        assert idempotency_key(TOPIC, key, 5, one) == idempotency_key(TOPIC, key, 5, dict(one))  # a redelivery
    assert idempotency_key(TOPIC, None, 5, one) != idempotency_key(TOPIC, "", 5, one)
    # a record with a key is identified by it, whatever its payload
    assert idempotency_key(TOPIC, "k", 5, one) == idempotency_key(TOPIC, "k", 5, two)


fields = st.tuples(st.text(max_size=6), st.none() | st.text(max_size=6), st.integers(0, 2**63 - 1),
                   st.none() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=2000, deadline=None)
@given(fields, fields)
def test_different_identities_never_encode_to_the_same_bytes(a, b):
    ia, ib = identity(*a), identity(*b)
    same = a[:3] == b[:3] and (bool(a[1]) or a[3] == b[3])
    assert (ia == ib) == same


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=8), st.integers(0, 10**13), st.integers(1, 8))
def test_moving_characters_between_key_and_timestamp_changes_the_key(key, ts, n):
    # the seed's collision class: key + str(ts) split at another place
    text = key + str(ts)
    cut = max(0, len(key) - n)
    other_key, other_ts = text[:cut], text[cut:]
    if other_ts.isascii() and other_ts.isdigit() and str(int(other_ts)) == other_ts \
            and (other_key, other_ts) != (key, str(ts)):
        assert idempotency_key(TOPIC, key, ts) != idempotency_key(TOPIC, other_key, int(other_ts))
