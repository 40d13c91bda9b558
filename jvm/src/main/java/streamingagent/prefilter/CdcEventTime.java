package streamingagent.prefilter;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * Flink SQL function {@code cdc_event_ms(v)}: {@link DebeziumSourceTime} for the Kafka source's
 * watermark column, where it runs once per record (JSON_VALUE would build the whole document for
 * one field).
 */
public class CdcEventTime extends ScalarFunction {
    public @DataTypeHint("BIGINT") Long eval(byte[] value) {
        return DebeziumSourceTime.of(value);
    }
}
