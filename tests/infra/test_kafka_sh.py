"""infra/kafka.sh itself: a broker formats and starts whatever valid cluster id it is given."""
import pytest

from tests.infra import local

pytestmark = pytest.mark.kafka


def test_a_cluster_id_starting_with_a_dash_is_an_id_not_an_option(monkeypatch, infra_prerequisites):
    # base64url ids start with "-" one time in 64: CI once failed to format storage on such an id
    cluster_id = "-fyMYHauTai6wq5vGL-T1g"
    monkeypatch.setenv("KAFKA_CLUSTER_ID", cluster_id)
    local.ensure_fetched("kafka")
    try:
        local.start_kafka(create_topics=False, fresh=True)
        meta = (local.RUN / "kafka" / "data" / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}" in meta.splitlines()
    finally:
        local.stop_kafka()
