"""Thin Flink operators around the pure logic in jobs/. Only this package imports pyflink."""
