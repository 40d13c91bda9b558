package streamingagent.prefilter;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Decides whether a cdc.public.orders record is certainly valid under the pinned schema
 * (json://debezium/order@v2) and certainly needs no action under the rule policy. Pure logic.
 *
 * <p>It is a sufficient test, never a complete one: anything unusual (a tombstone, a Connect
 * schema wrapper, non-UTF-8 bytes, a {@code \\u} escape, duplicate keys, a float where an integer
 * belongs, an integer beyond 64 bits, an amount beyond 15 integer or 6 fraction digits, a PII field
 * that holds anything but a token, a string the Python gate's PII hint would look into, an amount
 * at or above the threshold, a VIP create or update) answers false, and the Python gate decides as
 * before. So a record kept on the JVM gets exactly the outcome Python would give it: {@code no_action}.
 */
public final class OrderChangeCheck {
    static final int MAX_VALUE_BYTES = 1 << 20;
    private static final Pattern AMOUNT_TEXT = Pattern.compile("-?[0-9]{1,15}(\\.[0-9]{1,6})?");
    private static final String[] PII_FIELDS = {"email", "phone", "ssn_last4"};
    private static final Set<String> OPS = Set.of("c", "u", "d", "r");
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .enable(DeserializationFeature.USE_BIG_INTEGER_FOR_INTS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    static {
        // Python's gate rejects an envelope nested deeper than 32 levels, the envelope itself one of them:
        // deeper values go to Python (a limit below it, so no counting convention can differ)
        JSON.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(30).build());
    }

    private final String topic;
    private final String pinnedSchema;
    private final Set<String> allowedSensitivities;
    private final String defaultSensitivity;
    private final Pattern token;
    private final BigDecimal threshold;
    private final PiiHint hint;

    public OrderChangeCheck(String topic, String pinnedSchema, Set<String> allowedSensitivities,
                            String defaultSensitivity, String tokenRegex, BigDecimal threshold, PiiHint hint) {
        this.topic = topic;
        this.pinnedSchema = pinnedSchema;
        this.allowedSensitivities = allowedSensitivities;
        this.defaultSensitivity = defaultSensitivity;
        this.token = Pattern.compile(tokenRegex);
        this.threshold = threshold;
        this.hint = hint;
    }

    /** Whether the Python gate would look into this string for PII (then Python decides). */
    public boolean mayHoldPii(String text) {
        return hint.mayHoldPii(text);
    }

    /** The schema version the envelope gets: the header's, else the pinned one. */
    public String schemaOf(String schemaHeader) {
        return schemaHeader == null || schemaHeader.isEmpty() ? pinnedSchema : schemaHeader;
    }

    /** True only when the record is valid and the rule policy would give it outcome no_action. */
    public boolean certainlyNoAction(String recordTopic, byte[] value, String schemaHeader, String sensitivity) {
        if (!topic.equals(recordTopic) || !pinnedSchema.equals(schemaOf(schemaHeader))) {
            return false;
        }
        String label = sensitivity == null || sensitivity.isEmpty() ? defaultSensitivity : sensitivity;
        if (!allowedSensitivities.contains(label) || value == null || value.length > MAX_VALUE_BYTES
                || hasUnicodeEscape(value)) {
            return false;
        }
        JsonNode root;
        try {
            root = JSON.readTree(strictUtf8(value));
        } catch (Exception e) {  // not UTF-8, not JSON, too deep, duplicate keys: Python decides
            return false;
        }
        return root != null && root.isObject() && !isConnectWrapper(root) && validChange(root) && noAction(root);
    }

    static String strictUtf8(byte[] bytes) throws CharacterCodingException {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes)).toString();
    }

    /** A backslash-u escape could write a lone surrogate (Python: invalid_text): Python decides. */
    private static boolean hasUnicodeEscape(byte[] value) {
        for (int i = 0; i + 1 < value.length; i++) {
            if (value[i] == '\\' && value[i + 1] == 'u') {
                return true;
            }
        }
        return false;
    }

    private static boolean int64(JsonNode n) {
        return n.isIntegralNumber() && n.canConvertToLong();
    }

    private boolean plainText(JsonNode n) {
        return n.isTextual() && !hint.mayHoldPii(n.textValue());
    }

    private static boolean isConnectWrapper(JsonNode root) {
        return root.size() == 2 && root.has("schema") && root.has("payload");
    }

    private boolean validChange(JsonNode p) {
        JsonNode op = p.get("op");
        if (op == null || !op.isTextual() || !OPS.contains(op.textValue())) {
            return false;
        }
        if (p.has("ts_ms") && !(p.get("ts_ms").isNull() || int64(p.get("ts_ms")))) {
            return false;
        }
        return validSource(p.get("source")) && optionalRow(p, "before") && optionalRow(p, "after");
    }

    private boolean validSource(JsonNode s) {
        if (s == null || !s.isObject()) {
            return false;
        }
        JsonNode lsn = s.get("lsn");
        boolean ok = int64(s.path("ts_ms")) && plainText(s.path("table"))
                && lsn != null && (int64(lsn) || plainText(lsn));
        for (String f : new String[] {"db", "schema", "connector"}) {
            ok &= !s.has(f) || plainText(s.get(f));
        }
        JsonNode snap = s.get("snapshot");
        ok &= snap == null || plainText(snap) || snap.isBoolean() || snap.isNull();
        JsonNode tx = s.get("txId");
        return ok && (tx == null || tx.isNull() || int64(tx));
    }

    private boolean optionalRow(JsonNode p, String image) {
        JsonNode row = p.get(image);
        return row == null || row.isNull() || (row.isObject() && validRow(row));
    }

    private boolean validRow(JsonNode r) {
        boolean ok = text(r, "order_id", 1, 128) && text(r, "account_id", 1, 128)
                && text(r, "currency", 3, 3) && text(r, "status", 0, 64)
                && r.path("vip_flag").isBoolean() && amount(r) != null;
        for (String f : PII_FIELDS) {  // absent, null or a token: anything else is the gate's DLQ case
            JsonNode v = r.get(f);
            ok &= v == null || v.isNull() || (v.isTextual() && token.matcher(v.textValue()).matches());
        }
        JsonNode created = r.get("created_at");
        return ok && (created == null || created.isNull() || int64(created) || plainText(created));
    }

    private boolean text(JsonNode r, String field, int min, int max) {
        JsonNode v = r.get(field);
        if (v == null || !v.isTextual() || hint.mayHoldPii(v.textValue())) {
            return false;
        }
        String s = v.textValue();
        int n = s.codePointCount(0, s.length());
        return n >= min && n <= max;
    }

    /** The amount as an exact decimal, or null when it is neither a decimal string nor a JSON number within
     * the string form's bounds (15 integer and 6 fraction digits; beyond them Python says number_out_of_range). */
    private static BigDecimal amount(JsonNode r) {
        JsonNode v = r.get("amount");
        if (v == null) {
            return null;
        }
        if (v.isNumber()) {
            BigDecimal d = v.decimalValue();
            return d.scale() <= 6 && d.precision() - d.scale() <= 15 ? d : null;
        }
        if (v.isTextual() && AMOUNT_TEXT.matcher(v.textValue()).matches()) {
            return new BigDecimal(v.textValue());
        }
        return null;
    }

    /** The rule policy's view: below the threshold (or no after image) and not a VIP create/update. */
    private boolean noAction(JsonNode p) {
        String op = p.get("op").textValue();
        JsonNode after = p.get("after");
        if (op.equals("d") || after == null || after.isNull()) {
            return true;
        }
        boolean qualifies = amount(after).compareTo(threshold) >= 0;  // c, r and u are the qualifying ops
        boolean vipNotice = (op.equals("c") || op.equals("u")) && after.get("vip_flag").booleanValue();
        return !qualifies && !vipNotice;
    }

    static ObjectMapper mapper() {
        return JSON;
    }
}
