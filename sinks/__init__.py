"""The action sink: outbox (SQLite/PostgreSQL), executor, tool adapters, the sandbox tool service,
the degrade policy, and the standalone Kafka-mode process (`python -m sinks.action_sink`)."""
