"""The action sink: outbox (SQLite/PostgreSQL, group commit), the plan runner (retries, saga), bounded
concurrent execution with per-account order, tool adapters and gates, the sandbox tool service, the degrade
policy, and the standalone Kafka-mode process (`python -m sinks.action_sink`) with /metrics and /health."""
