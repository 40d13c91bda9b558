"""Session fixtures for the real infrastructure (started by the tests, stopped afterwards)."""
import os

import pytest

from tests.infra import local


@pytest.fixture(scope="module")
def infra_prerequisites() -> None:
    """Skip a module whose infrastructure this machine cannot run; in CI that is a failure instead."""
    missing = local.missing_prerequisites()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"infrastructure unavailable in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def kafka_bootstrap(infra_prerequisites):
    """A fresh single-node broker per test module: no module sees another's topics."""
    local.ensure_fetched("kafka", "flink")
    info = local.start_kafka(fresh=True)
    yield info["bootstrap"]
    local.stop_kafka()
