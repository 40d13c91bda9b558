package streamingagent.prefilter;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.Set;

/**
 * Runs {@link OrderChangeCheck} over JSON Lines on stdin, one verdict per line on stdout
 * ({@code jvm} or {@code python}), so tests can compare it with the Python gate without Flink.
 *
 * <p>Args: topic pinned_schema allowed_sensitivities(comma) default_sensitivity token_regex threshold
 * pii_digits pii_digits_with_plus max_future_skew_ms (the SQL function's literal arguments; the skew is unused).
 * Each input line: {"topic": str, "value_b64": str|null, "schema": str|null, "sensitivity": str|null}.
 * With the single arg {@code --event-time}: one {@link DebeziumSourceTime} answer per line ("null" for none).
 * With {@code --lateness BOUND_MS}: lines "split ts_ms", one {@link PartitionLateness} answer per line
 * ({@code late} or {@code ok}). With {@code --pii-hint PLAIN WITH_PLUS}: base64 UTF-8 strings, one
 * {@link PiiHint} answer per line ({@code true} or {@code false}). With {@code --idempotency-key}: lines
 * "base64(topic) base64(key) ts_ms", the version-2 idempotency key of each.
 */
public final class CheckCli {
    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("--event-time")) {
            eventTimes();
            return;
        }
        if (args.length == 2 && args[0].equals("--lateness")) {
            lateness(Long.parseLong(args[1]));
            return;
        }
        if (args.length == 1 && args[0].equals("--idempotency-key")) {
            idempotencyKeys();
            return;
        }
        if (args.length == 3 && args[0].equals("--pii-hint")) {
            piiHint(new PiiHint(Integer.parseInt(args[1]), Integer.parseInt(args[2])));
            return;
        }
        OrderChangeCheck check = new OrderChangeCheck(args[0], args[1], Set.of(args[2].split(",")), args[3],
                args[4], new BigDecimal(args[5]), new PiiHint(Integer.parseInt(args[6]), Integer.parseInt(args[7])));
        PiiHint hint = new PiiHint(Integer.parseInt(args[6]), Integer.parseInt(args[7]));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            JsonNode r = OrderChangeCheck.mapper().readTree(line);
            byte[] value = r.path("value_b64").isTextual()
                    ? java.util.Base64.getDecoder().decode(r.get("value_b64").textValue()) : null;
            String key = textOrNull(r, "key");
            boolean jvm = key != null && !key.isEmpty() && !hint.mayHoldPii(key)
                    && check.certainlyNoAction(r.path("topic").asText(), value, textOrNull(r, "schema"),
                    textOrNull(r, "sensitivity"));
            out.println(jvm ? "jvm" : "python");
        }
        out.flush();
    }

    private static void eventTimes() throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            out.println(DebeziumSourceTime.of(java.util.Base64.getDecoder().decode(line.trim())));
        }
        out.flush();
    }

    private static void idempotencyKeys() throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        java.util.Base64.Decoder b64 = java.util.Base64.getDecoder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.trim().split(" ");
            out.println(IdempotencyKey.of(new String(b64.decode(f[0]), StandardCharsets.UTF_8),
                    new String(b64.decode(f[1]), StandardCharsets.UTF_8), Long.parseLong(f[2])));
        }
        out.flush();
    }

    private static void piiHint(PiiHint hint) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String text = new String(java.util.Base64.getDecoder().decode(line.trim()), StandardCharsets.UTF_8);
            out.println(hint.mayHoldPii(text));
        }
        out.flush();
    }

    private static void lateness(long boundMs) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        PartitionLateness rule = new PartitionLateness(boundMs);
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.trim().split(" ");
            out.println(rule.observe(f[0], Long.parseLong(f[1])) ? "late" : "ok");
        }
        out.flush();
    }

    private static String textOrNull(JsonNode r, String field) {
        return r.path(field).isTextual() ? r.get(field).textValue() : null;
    }
}
