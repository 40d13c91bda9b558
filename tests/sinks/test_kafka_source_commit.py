"""A failed offset commit (the group rebalanced, e.g. after a broker restart) must not stop the sink:
the records are redelivered and the outbox replays them."""
from kafka.errors import CommitFailedError

from sinks.kafka_io import KafkaSource
from sinks.record_handler import Message


class RebalancedConsumer:
    def __init__(self) -> None:
        self.calls = 0

    def commit(self, offsets):
        self.calls += 1
        raise CommitFailedError("the group has already rebalanced")


def test_a_failed_commit_is_reported_not_raised(capsys):
    source = KafkaSource.__new__(KafkaSource)  # no broker: only commit() is under test
    source.consumer = RebalancedConsumer()
    source.commit([Message("agent.actions", 0, 5, b"{}"), Message("agent.actions", 0, 6, b"{}")])
    assert source.consumer.calls == 1
    assert "redelivered" in capsys.readouterr().err
