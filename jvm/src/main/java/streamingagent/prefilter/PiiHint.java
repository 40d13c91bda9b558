package streamingagent.prefilter;

/**
 * The Python gate's PII hint (contracts/pii.py), or a looser one: whether a string might hold an
 * e-mail address, a phone number or an SSN, so that the gate searches it. A string this answers
 * false for holds none by the gate's detectors; the prefilter keeps on the JVM only records whose
 * strings all answer false. Non-ASCII text always answers true (Python decides).
 *
 * <p>Digits: phonenumbers never matches a number next to a Latin letter, so the digits a match can
 * hold lie in one letter-free stretch, without digits glued to a letter at its start. The stretch's
 * digit count must reach {@code plain}, or {@code withPlus} when the text holds a "+": the fewest
 * digits a number of the contract's regions (or an international one) has, which Python computes
 * from phonenumbers' metadata and passes as arguments.
 */
public final class PiiHint {
    private final int plain;
    private final int withPlus;

    public PiiHint(int plain, int withPlus) {
        this.plain = plain;
        this.withPlus = withPlus;
    }

    public boolean mayHoldPii(String text) {
        int need = text.indexOf('+') >= 0 ? withPlus : plain;
        int run = 0;
        boolean glued = false;  // inside digits that follow a letter directly
        char prev = ' ';
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c >= 0x80 || c == '@') {
                return true;
            }
            boolean digit = c >= '0' && c <= '9';
            boolean letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
            if (letter) {
                run = 0;
                glued = false;
            } else if (digit) {
                if (!(prev >= '0' && prev <= '9')) {
                    glued = isLetter(prev) && i > 0;
                }
                if (!glued && ++run >= need) {
                    return true;
                }
            }
            prev = c;
        }
        return false;
    }

    private static boolean isLetter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    }
}
