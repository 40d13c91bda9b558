package streamingagent.prefilter;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The version-2 idempotency key (contracts/idempotency.py): "idem2-" + sha256 of "idem2" and, for
 * each of topic, key and str(ts_ms), a presence byte 1, its UTF-8 length as 8 bytes big-endian and
 * its UTF-8 bytes. Records without a key never get here (their payload joins the hash, which
 * Python builds). Pure logic.
 */
public final class IdempotencyKey {
    private IdempotencyKey() {
    }

    public static String of(String topic, String key, long tsMs) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update("idem2".getBytes(StandardCharsets.US_ASCII));
            for (String f : new String[] {topic, key, Long.toString(tsMs)}) {
                byte[] b = f.getBytes(StandardCharsets.UTF_8);
                sha.update((byte) 1);
                sha.update(ByteBuffer.allocate(8).putLong(b.length).array());
                sha.update(b);
            }
            return "idem2-" + HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
