package streamingagent.prefilter;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;

/**
 * Debezium's {@code source.ts_ms} of a JSON value, or null: the same answer as
 * {@code TRY_CAST(JSON_VALUE(v, '$.source.ts_ms') AS BIGINT)} for the values that matter, from a
 * streaming scan that builds no document. Pure logic.
 */
public final class DebeziumSourceTime {
    private static final JsonFactory JSON = new JsonFactory();

    private DebeziumSourceTime() {
    }

    public static Long of(byte[] value) {
        if (value == null) {
            return null;
        }
        try (JsonParser p = JSON.createParser(value)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            Long ts = null;  // a repeated key: the last one wins, as in Python's json and JSON_VALUE
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                if ("source".equals(name)) {
                    ts = t == JsonToken.START_OBJECT ? tsIn(p) : null;
                }
                p.skipChildren();
            }
            return ts;
        } catch (Exception e) {  // not JSON: no event time here (the source falls back, the gate DLQs)
            return null;
        }
    }

    /** Reads the rest of the source object; leaves the parser on its END_OBJECT. */
    private static Long tsIn(JsonParser p) throws java.io.IOException {
        Long ts = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken t = p.nextToken();
            if ("ts_ms".equals(name)) {
                ts = null;
                if (t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
                    ts = p.getLongValue();
                } else if (t == JsonToken.VALUE_STRING) {
                    try {
                        ts = Long.parseLong(p.getText().trim());
                    } catch (NumberFormatException e) {
                        ts = null;
                    }
                }
            }
            p.skipChildren();
        }
        return ts;
    }
}
