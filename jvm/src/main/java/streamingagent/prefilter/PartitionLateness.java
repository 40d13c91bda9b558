package streamingagent.prefilter;

import java.util.HashMap;
import java.util.Map;

/**
 * The bounded-out-of-orderness rule of jobs/lateness.py, per source split: a record is late when its
 * event time is more than the bound behind the largest event time seen before it on the same split,
 * which is exactly when the source's watermark (max - bound - 1) has already passed it.
 */
public final class PartitionLateness {
    private final long boundMs;
    private final Map<String, Long> maxSeen = new HashMap<>();

    public PartitionLateness(long boundMs) {
        this.boundMs = boundMs;
    }

    /** True when the record is late on its split; otherwise it may raise the split's maximum. */
    public boolean observe(String split, long ts) {
        Long prev = maxSeen.get(split);
        if (prev != null && ts < prev - boundMs) {
            return true;
        }
        if (prev == null || ts > prev) {
            maxSeen.put(split, ts);
        }
        return false;
    }
}
