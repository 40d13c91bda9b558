"""The PyFlink job: pure stage logic in plain modules, Flink shells in jobs.runtime."""
