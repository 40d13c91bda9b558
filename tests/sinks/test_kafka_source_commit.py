"""The Kafka source's commit: only partitions still assigned to us, and a failed commit (the group rebalanced,
e.g. after a broker restart) must not stop the sink: the records are redelivered and the outbox replays them."""
from confluent_kafka import KafkaError, KafkaException

from sinks.kafka_io import KafkaSource


class Consumer:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.commits: list[list] = []

    def commit(self, offsets, asynchronous):
        assert asynchronous is False
        self.commits.append(offsets)
        if self.fail:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))


def _source(fail: bool) -> KafkaSource:
    source = KafkaSource.__new__(KafkaSource)  # no broker: only commit() is under test
    source.consumer = Consumer(fail)
    source.owned = {("agent.actions", 0)}
    return source


def test_a_failed_commit_is_reported_not_raised(capsys):
    source = _source(fail=True)
    source.commit({("agent.actions", 0): 7})
    assert len(source.consumer.commits) == 1
    assert "redelivered" in capsys.readouterr().err


def test_only_assigned_partitions_are_committed():
    source = _source(fail=False)
    source.commit({("agent.actions", 0): 7, ("agent.actions", 1): 3})  # partition 1 moved to another member
    [offsets] = source.consumer.commits
    assert [(tp.partition, tp.offset) for tp in offsets] == [(0, 7)]
    source.commit({("agent.actions", 1): 4})
    assert len(source.consumer.commits) == 1  # nothing of ours to commit
