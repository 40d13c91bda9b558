import re

from contracts.pii import MASK, mask_pii, mask_raw_text

TOKEN = re.compile(r"^tok_[A-Za-z0-9_-]{8,}$")
PII = ["email", "phone", "ssn_last4"]


def test_mask_keeps_tokens_masks_values_anywhere():
    obj = {"after": {"email": "jane@example.com", "phone": "tok_phone_1234", "ssn_last4": "1234"},
           "list": [{"email": 5}], "note": "write to bob@example.org please"}
    m = mask_pii(obj, PII, TOKEN)
    assert m["after"] == {"email": MASK, "phone": "tok_phone_1234", "ssn_last4": MASK}
    assert m["list"] == [{"email": MASK}]
    assert "bob@example.org" not in m["note"]
    assert obj["after"]["email"] == "jane@example.com"  # a copy, not in place


def test_mask_raw_text_handles_truncated_lines():
    raw = '{"payload": {"after": {"email": "jane@exam'
    out = mask_raw_text(raw, PII)
    assert "jane" not in out
    raw2 = '{"ssn_last4": 1234, "phone": "+33 6 12 34 56 78", "x": '
    out2 = mask_raw_text(raw2, PII)
    assert "1234" not in out2 and "56 78" not in out2


def test_mask_raw_text_caps_length():
    assert len(mask_raw_text("x" * 10000, PII)) < 4200
