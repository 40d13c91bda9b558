"""Fault-injection harness: seeded campaigns against the Kafka-mode pipeline, checked by invariants."""
