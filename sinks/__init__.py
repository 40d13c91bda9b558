"""The action sink: outbox, executor, tool adapters and the sandbox tool service."""
