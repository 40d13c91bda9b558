import io
import json

import fastavro
import pytest

from contracts.avro import BREACH_SCHEMA_FILE, decode_breach, encode_breach
from contracts.models import Breach
from tests.factories import breach_payload


def test_breach_round_trips_through_v3():
    b = Breach.model_validate(breach_payload(order_ids=["a", "b", "c", "d"]))
    assert decode_breach(encode_breach(b)) == b


def test_v2_era_record_reads_as_v3_only_through_defaults():
    """A v2-era writer without auto_hold resolves into v3 (auto_hold has a default)."""
    v3 = json.loads(BREACH_SCHEMA_FILE.read_text())
    v2 = dict(v3, fields=[f for f in v3["fields"] if f["name"] != "auto_hold"])
    rec = {k: v for k, v in breach_payload().items() if k != "auto_hold"}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(v2), rec)
    assert decode_breach(buf.getvalue(), fastavro.parse_schema(v2)).auto_hold is True

    # A writer lacking a field that v3 requires without default is not compatible.
    v2_bad = dict(v3, fields=[f for f in v3["fields"] if f["name"] != "total_amount"])
    rec_bad = {k: v for k, v in breach_payload().items() if k != "total_amount"}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(v2_bad), rec_bad)
    with pytest.raises(Exception):
        decode_breach(buf.getvalue(), fastavro.parse_schema(v2_bad))
