"""Kafka source and sinks of the job, through Flink's Kafka SQL connector.

The source is a Table API Kafka table (raw key/value, metadata columns for
topic, partition, offset, timestamp, headers) converted to a DataStream, so
that tombstones arrive as NULL values and watermarks are generated per
partition (with idleness) inside the source. Outputs go to one Kafka table per
topic with exactly-once delivery (transactional producer, committed on
checkpoints); consumers read them with isolation.level=read_committed.
"""
from __future__ import annotations

from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import DataStream
from pyflink.table import DataTypes, Schema, StatementSet, StreamTableEnvironment

from contracts.contract import load_contract
from jobs.config import JobConfig
from jobs.kafka_records import ORIGIN, ORIGIN_HEADER, OUTPUT_TOPICS, output_record
from jobs.prefilter import (EVENT_TIME_FUNCTION_CLASS, EVENT_TIME_FUNCTION_NAME, FUNCTION_CLASS, FUNCTION_NAME, LATE,
                            NO_ACTION, PrefilterPlan, sql_call)

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
OUTPUT_ROW = Types.ROW_NAMED(["topic", "k", "v", "headers"],
                             [Types.STRING(), Types.STRING(), BYTES, Types.MAP(Types.STRING(), BYTES)])


def _common(config: JobConfig) -> str:
    return (f"'connector' = 'kafka', 'properties.bootstrap.servers' = '{config.bootstrap_servers}', "
            "'key.format' = 'raw', 'key.fields' = 'k', 'value.format' = 'raw', "
            "'value.fields-include' = 'EXCEPT_KEY'")


COLUMNS = "k, v, `topic`, `partition`, `offset`, `headers`, claimed_ms"
FAST_TRACES_VIEW = "agent_fast_traces"


def source_stream(t_env: StreamTableEnvironment, config: JobConfig, prefilter: PrefilterPlan) -> DataStream:
    """Rows (k, v, topic, partition, offset, headers, claimed_ms, event_ts) with event-time timestamps and
    per-partition watermarks.

    With the prefilter on, only the rows it cannot settle come back, as (k, v, topic, partition, offset,
    headers, claimed_ms, late, rowtime) with its lateness verdict; the `no_action` traces it writes for the others
    wait in the view FAST_TRACES_VIEW for `add_sinks`."""
    bound_s = (config.max_out_of_orderness_ms + 1) / 1000.0  # watermark = max - bound - 1 ms
    # Event time: the `ts_ms` header when a producer of ours set it (scenario loader, DLQ replays,
    # our breaches), else Debezium's source.ts_ms; a tombstone has only its record time; an
    # undecodable value gets 0 so it never moves the watermark. Never later than the record
    # timestamp, so a bogus value cannot push the watermark into the future.
    # CAST(v AS STRING) rather than DECODE(): DECODE does not compile inside a watermark generator.
    # With the prefilter's jar at hand, a streaming scan (cdc_event_ms) reads source.ts_ms instead of
    # JSON_VALUE, which builds the whole document for one field.
    source_ts = "TRY_CAST(JSON_VALUE(CAST(v AS STRING), '$.source.ts_ms') AS BIGINT)"
    if prefilter.enabled:
        t_env.create_java_temporary_system_function(EVENT_TIME_FUNCTION_NAME, EVENT_TIME_FUNCTION_CLASS)
        t_env.create_java_temporary_system_function(FUNCTION_NAME, FUNCTION_CLASS)
        source_ts = f"{EVENT_TIME_FUNCTION_NAME}(v)"
    # The record's own claim, uncapped: the gate DLQs a claim beyond the contract's future skew as
    # ts_out_of_range, and its event time is unknown (0) meanwhile, so that it moves no watermark and
    # makes nothing late (capped to the record's timestamp, it would move them to the produce time).
    claimed = f"COALESCE(TRY_CAST(CAST(`headers`['ts_ms'] AS STRING) AS BIGINT), {source_ts})"
    skew = load_contract(config.contract_path).governance.max_future_skew_ms
    too_far = f"{claimed} > UNIX_TIMESTAMP() * 1000 + {skew}" if skew else "FALSE"
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE agent_inputs (
          k BYTES,
          v BYTES,
          `topic` STRING METADATA VIRTUAL,
          `partition` INT METADATA VIRTUAL,
          `offset` BIGINT METADATA VIRTUAL,
          `kafka_ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
          `headers` MAP<STRING, BYTES> METADATA VIRTUAL,
          claimed_ms AS {claimed},
          event_ts AS CASE WHEN {too_far} THEN TO_TIMESTAMP_LTZ(0, 3) ELSE LEAST(kafka_ts, COALESCE(
            TO_TIMESTAMP_LTZ(TRY_CAST(CAST(`headers`['ts_ms'] AS STRING) AS BIGINT), 3),
            TO_TIMESTAMP_LTZ({source_ts}, 3),
            CASE WHEN v IS NULL THEN kafka_ts ELSE TO_TIMESTAMP_LTZ(0, 3) END)) END,
          WATERMARK FOR event_ts AS event_ts - INTERVAL '{bound_s:.3f}' SECOND
        ) WITH (
          {_common(config)},
          'topic-pattern' = '{config.topic_pattern}',
          'properties.group.id' = '{config.group_id}',
          'properties.isolation.level' = 'read_committed',
          'properties.auto.offset.reset' = 'earliest',
          'scan.startup.mode' = '{config.startup_mode}',
          'scan.topic-partition-discovery.interval' = '10 s'
        )""")
    ours = f"`headers`['{ORIGIN_HEADER}'] IS NOT NULL AND CAST(`headers`['{ORIGIN_HEADER}'] AS STRING) = '{ORIGIN}'"
    if not prefilter.enabled:
        return t_env.to_data_stream(t_env.sql_query(
            f"SELECT {COLUMNS}, event_ts FROM agent_inputs WHERE NOT ({ours})"))
    # One scan of the topics: the classified rows become a DataStream (JVM only) and then a table
    # again, which both the Python branch and the fast-trace sink read. (Two queries on agent_inputs
    # would be two Kafka sources.) Timestamps and watermarks cross as the stream's rowtime.
    classified = t_env.to_data_stream(t_env.sql_query(
        f"SELECT {COLUMNS}, event_ts, {sql_call(prefilter)} AS fast FROM agent_inputs WHERE NOT ({ours})"))
    schema = (Schema.new_builder().column_by_metadata("rowtime", DataTypes.TIMESTAMP_LTZ(3))
              .watermark("rowtime", "SOURCE_WATERMARK()").build())
    t_env.create_temporary_view("agent_classified", t_env.from_data_stream(classified, schema))
    t_env.create_temporary_view(FAST_TRACES_VIEW, t_env.sql_query(
        f"SELECT fast.k AS k, CAST(fast.trace AS BYTES) AS v FROM agent_classified "
        f"WHERE fast.verdict = '{NO_ACTION}'"))
    return t_env.to_data_stream(t_env.sql_query(
        f"SELECT {COLUMNS}, fast.verdict = '{LATE}' AS late, rowtime FROM agent_classified "
        f"WHERE fast.verdict <> '{NO_ACTION}'"))


def to_output_row(value: tuple[str, dict[str, Any]]) -> Row:
    kind, record = value
    topic, key, payload, ts = output_record(kind, record)
    headers = {ORIGIN_HEADER: ORIGIN.encode()}
    if ts is not None:
        headers["ts_ms"] = str(ts).encode()  # event time travels in a header, never as the record timestamp
    return Row(topic, key, payload, headers)


def add_sinks(t_env: StreamTableEnvironment, statements: StatementSet, outputs: DataStream,
              config: JobConfig, kinds: tuple[str, ...], prefilter: PrefilterPlan) -> None:
    """One exactly-once Kafka table per output topic, fed from the tagged output stream (plus the
    prefilter's traces, through a sink of their own)."""
    rows = outputs.map(to_output_row, output_type=OUTPUT_ROW).name("to-kafka-records")
    t_env.create_temporary_view("agent_outputs", t_env.from_data_stream(rows))
    for kind in kinds + (("fast_traces",) if prefilter.enabled else ()):
        topic = OUTPUT_TOPICS["traces" if kind == "fast_traces" else kind]
        name = "out_" + kind
        t_env.execute_sql(f"""
            CREATE TEMPORARY TABLE {name} (
              k STRING, v BYTES,
              `headers` MAP<STRING, BYTES> METADATA
            ) WITH (
              {_common(config)},
              'topic' = '{topic}',
              'sink.delivery-guarantee' = 'exactly-once',
              'sink.transactional-id-prefix' = '{config.group_id}-{kind}',
              'properties.transaction.timeout.ms' = '900000'
            )""")
        if kind == "fast_traces":
            statements.add_insert_sql(
                f"INSERT INTO {name} SELECT k, v, MAP['{ORIGIN_HEADER}', CAST('{ORIGIN}' AS BYTES)] "
                f"FROM {FAST_TRACES_VIEW}")
        else:
            statements.add_insert_sql(
                f"INSERT INTO {name} SELECT k, v, `headers` "
                f"FROM agent_outputs WHERE `topic` = '{topic}'")
