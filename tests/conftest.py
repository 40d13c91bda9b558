"""Session fixtures for the real infrastructure (started by the tests, stopped afterwards)."""
import os

import pytest

from tests.infra import local


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"infrastructure unavailable in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def kafka_bootstrap():
    """A fresh single-node broker per test module: no module sees another's topics."""
    missing = local.missing_prerequisites()
    if missing:
        _unavailable(missing)
    local.ensure_fetched("kafka", "flink")
    info = local.start_kafka(fresh=True)
    yield info["bootstrap"]
    local.stop_kafka()
