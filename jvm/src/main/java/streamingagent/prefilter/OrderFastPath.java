package streamingagent.prefilter;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

import java.math.BigDecimal;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Set;

/**
 * Flink SQL function {@code order_fast_path(...)}, the JVM prefilter of Kafka mode. For each record,
 * in the order its source partition delivers them (the call is chained to the Kafka source), a row
 * (verdict, k, trace): verdict {@code late} by {@link PartitionLateness} over every record of the
 * partition whose event time is known, valid or not, exactly as the source's watermark sees them
 * (decided here because only here are all records seen; the ingress applies the same rule when the
 * prefilter is off); else {@code no_action} with the idempotency key and the trace (JSON
 * text) of a record that {@link OrderChangeCheck} settles on the JVM; else {@code python}, and
 * Python decides.
 *
 * <p>The trace has the fields and values the Python ingress writes for such a record (SPEC section
 * 6), plus {@code "via": "jvm-prefilter"}. The contract's settings arrive as literal arguments,
 * so the function holds no copy of the contract.
 */
public class OrderFastPath extends ScalarFunction {
    public static final String LATE = "late";
    public static final String NO_ACTION = "no_action";
    public static final String PYTHON = "python";
    private static final Row TO_PYTHON = Row.of(PYTHON, null, null);
    private static final Row IS_LATE = Row.of(LATE, null, null);
    private transient OrderChangeCheck check;
    private transient String settings;
    private transient PartitionLateness lateness;
    private transient long latenessBoundMs;
    private transient Counter settled;
    private transient Counter late;

    @Override
    public void open(FunctionContext context) {
        // beside the Python operators' metrics (group `agent`): settled + Python's envelopes_in = all records
        MetricGroup agent = context.getMetricGroup().addGroup("agent");
        settled = agent.counter("prefilter_no_action");
        late = agent.counter("prefilter_late");
    }

    @Override
    public boolean isDeterministic() {
        return false;  // it keeps the largest event time per partition: evaluate it once per record, in order
    }

    public @DataTypeHint("ROW<verdict STRING, k STRING, trace STRING>") Row eval(
            String topic, Integer partition, Long offset, byte[] key, byte[] value, Instant eventTime,
            Long claimedMs, byte[] schemaHeader, byte[] sensitivityHeader, Long boundMs,
            String contractTopic, String pinnedSchema, String allowedSensitivities, String defaultSensitivity,
            String tokenRegex, String threshold, String piiDigits, String piiDigitsWithPlus,
            String maxFutureSkewMs) {
        if (eventTime == null) {
            return TO_PYTHON;
        }
        long ts = eventTime.toEpochMilli();
        // 0 is the source's event time for an undecodable value: unknown, so never late (Python DLQs it)
        if (ts > 0 && latenessFor(boundMs).observe(topic + "/" + partition, ts)) {
            count(late);
            return IS_LATE;
        }
        long skew = Long.parseLong(maxFutureSkewMs);
        long claim = claimedMs == null ? ts : claimedMs;  // the record's own, uncapped event time
        if (ts < 0 || (skew > 0 && Math.max(ts, claim) > System.currentTimeMillis() + skew)) {
            return TO_PYTHON;  // Python's ts_out_of_range
        }
        OrderChangeCheck c = checkFor(contractTopic, pinnedSchema, allowedSensitivities, defaultSensitivity,
                tokenRegex, threshold, piiDigits, piiDigitsWithPlus);
        String keyText;
        String schema;
        String sensitivity;
        try {
            keyText = key == null ? null : OrderChangeCheck.strictUtf8(key);
            schema = schemaHeader == null ? null : OrderChangeCheck.strictUtf8(schemaHeader);
            sensitivity = sensitivityHeader == null ? null : OrderChangeCheck.strictUtf8(sensitivityHeader);
        } catch (CharacterCodingException e) {
            return TO_PYTHON;
        }
        // no key: its idempotency key hashes the governed payload, which Python builds; a key the PII hint
        // looks into: Python decides whether it holds PII
        if (keyText == null || keyText.isEmpty() || c.mayHoldPii(keyText)
                || !c.certainlyNoAction(topic, value, schema, sensitivity)) {
            return TO_PYTHON;
        }
        String idem = IdempotencyKey.of(topic, keyText, ts);
        ObjectNode t = OrderChangeCheck.mapper().createObjectNode();
        t.put("topic", topic).put("partition", partition).put("offset", offset).put("key", keyText)
                .put("ts_ms", ts).put("schema", c.schemaOf(schema))
                .put("idempotency_key", idem).put("outcome", NO_ACTION);
        t.putArray("actions");
        t.putArray("receipts");
        t.put("lag_ms", System.currentTimeMillis() - ts).put("via", "jvm-prefilter");
        count(settled);
        return Row.of(NO_ACTION, idem, t.toString());
    }

    private static void count(Counter c) {
        if (c != null) {  // null outside Flink (no open())
            c.inc();
        }
    }

    private PartitionLateness latenessFor(long boundMs) {
        if (lateness == null || boundMs != latenessBoundMs) {
            lateness = new PartitionLateness(boundMs);
            latenessBoundMs = boundMs;
        }
        return lateness;
    }

    private OrderChangeCheck checkFor(String topic, String pinned, String allowed, String dflt, String token,
                                      String threshold, String digits, String digitsWithPlus) {
        String now = String.join("\u0000", topic, pinned, allowed, dflt, token, threshold, digits, digitsWithPlus);
        if (check == null || !now.equals(settings)) {
            check = new OrderChangeCheck(topic, pinned, Set.of(allowed.split(",")), dflt, token,
                    new BigDecimal(threshold), new PiiHint(Integer.parseInt(digits), Integer.parseInt(digitsWithPlus)));
            settings = now;
        }
        return check;
    }
}
