"""Helpers that start the local infrastructure (infra/*.sh) for tests."""
