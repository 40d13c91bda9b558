"""Avro (fastavro) encoding of the breach record against the pinned v3 schema."""
from __future__ import annotations

import io
import json
from functools import lru_cache
from typing import Any

import fastavro

from contracts.contract import CONTRACTS_DIR
from contracts.models import Breach

BREACH_SCHEMA_FILE = CONTRACTS_DIR / "schemas" / "order_breach_v3.avsc"


@lru_cache(maxsize=None)
def parsed_schema(path: str = str(BREACH_SCHEMA_FILE)) -> Any:
    return fastavro.parse_schema(json.loads(open(path).read()))


def encode_breach(breach: Breach) -> bytes:
    """Schemaless Avro bytes (the Kafka value)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed_schema(), breach.model_dump(mode="json"))
    return buf.getvalue()


def decode_breach(data: bytes, writer_schema: Any | None = None) -> Breach:
    """Decode schemaless bytes; a writer schema other than v3 is resolved into v3."""
    reader = parsed_schema()
    record = fastavro.schemaless_reader(io.BytesIO(data), writer_schema or reader, reader)
    return Breach.model_validate(record)
