import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.contract import load_contract
from contracts.pii import MASK, PiiRules, phone_number_examples, safe_text

RULES = load_contract().pii
TOKEN = "tok_phone_12345678"

EMAILS = ["jane.doe@example.com", "x@y.fr", "jané.dœ@exämple.de", "用户@例子.广告", "jane＠example.com",
          "jane﹫example.com", "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "a.b+tag@sub.domain.co.uk", "ivan@пример.рф"]
PHONES = ["+1 212 555 0101", "+33 6 12 34 56 78", "(201) 555-0123", "020 7946 0958", "+49 30 901820",
          "０２０ ７９４６ ０９５８", *phone_number_examples()]
SSNS = ["123-45-6789", "123 45 6789"]
NOT_PII = ["acct-1", "o7-12345", "o7-1234567", "tok_mail_00000012", "2026-01-01T10:00:00Z", "1000.00", "EUR", "created",
           "cdc.public.orders", '{"order_id":"12345"}', "+1-555-0101", "12345678", "1767225600000", "x@y"]


@pytest.mark.parametrize("value", EMAILS)
def test_emails_of_any_script_and_look_alike_at_signs_are_found(value):
    assert RULES.find(value) == "email"
    assert RULES.find(f"write to {value} today") == "email"


@pytest.mark.parametrize("value", PHONES)
def test_valid_phone_numbers_are_found_by_phonenumbers(value):
    assert RULES.find(value) == "phone", value


@pytest.mark.parametrize("value", SSNS)
def test_ssn_shapes_are_found(value):
    assert RULES.find(value) == "ssn"


@pytest.mark.parametrize("value", NOT_PII)
def test_ids_tokens_dates_and_amounts_are_not_pii(value):
    assert RULES.find(value) is None


def test_a_two_letter_tld_counts():
    assert RULES.find("x@y.fr") == "email" and RULES.mask_text("to x@y.fr now") == f"to {MASK} now"


def test_per_field_detectors_exempt_only_what_the_contract_says():
    assert RULES.detectors_for("amount") == frozenset()
    assert RULES.detectors_for("created_at") == frozenset({"email"})
    assert RULES.find("2015550123", RULES.detectors_for("created_at")) is None
    assert RULES.find("2015550123", RULES.detectors_for("order_id")) == "phone"
    assert RULES.hint_for("amount") is None


def test_mask_value_masks_by_name_by_shape_and_in_keys():
    obj = {"after": {"email": "jane@example.com", "phone": TOKEN, "ssn_last4": "1234", "Phone": "+1-555-0101",
                     "SSN": 123456789, "notes": "call me on +33 6 12 34 56 78", "jane.doe@example.com": "k"},
           "list": [{"e-mail": 5}], "id": "acct-1"}
    m = RULES.mask_value(obj)
    after = m["after"]
    assert after["email"] == MASK and after["phone"] == TOKEN and after["ssn_last4"] == MASK
    assert after["Phone"] == MASK and after["SSN"] == MASK and after["notes"] == MASK
    assert MASK in after and "jane.doe@example.com" not in json.dumps(m)
    assert m["list"] == [{"e-mail": MASK}] and m["id"] == "acct-1"
    assert obj["after"]["email"] == "jane@example.com"  # a copy, not in place


def test_two_pii_keys_stay_two_entries():
    m = RULES.mask_value({"a@example.com": 1, "b@example.com": 2})
    assert sorted(m) == [MASK, f"{MASK}#2"]


def test_lone_surrogates_become_visible_escapes():
    assert safe_text("a\ud800b") == "a\\ud800b"
    m = RULES.mask_value({"k\udfff": "v\ud800"})
    json.dumps(m, ensure_ascii=False).encode("utf-8")  # encodable
    assert m == {"k\\udfff": "v\\ud800"}


def test_raw_text_masks_named_values_even_unterminated_and_escaped_addresses():
    out = RULES.mask_raw_text('{"payload": {"after": {"email": "jane@exam')
    assert "jane" not in out
    out2 = RULES.mask_raw_text('{"ssn_last4": 1234, "phone": "+33 6 12 34 56 78", "x": ')
    assert "1234" not in out2 and "56 78" not in out2
    out3 = RULES.mask_raw_text('{"note": "jane\\u0040example.com", "Phone": "x"')
    assert "jane" not in out3 and '"Phone": "***"' in out3


def test_raw_text_is_masked_before_it_is_cut():
    for pad in range(4060, 4100):  # the address straddles the cut at every offset
        raw = '{"a":"' + "x" * pad + ' jane.doe@example.com tail"}'
        out = RULES.mask_raw_text(raw)
        assert "jane" not in out and "doe@" not in out and len(out) < 4200, pad


def test_mask_text_masks_spans_and_keeps_the_rest():
    assert RULES.mask_text("topic jane@example.com@v2 is not allowlisted") == f"topic {MASK}@v2 is not allowlisted"
    assert "555" not in RULES.mask_text("key +1 (201) 555-0123 here")


def test_the_contract_configures_regions_names_and_tokens(tmp_path):
    rules = PiiRules(token=re.compile(r"^tk-\d+$"), phone_regions=("FR",), pii_names="^secret$")
    assert rules.find("01 23 45 67 89") == "phone" and RULES.find("01 23 45 67 89") == "phone"
    assert rules.find("(201) 555-0123") is None  # a US national number, not a French one
    assert rules.mask_value({"secret": "x", "phone": "y", "v": "tk-2015550123"}) == {
        "secret": MASK, "phone": "y", "v": "tk-2015550123"}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EMAILS + PHONES + SSNS), st.text(max_size=30), st.text(max_size=30))
def test_pii_in_any_surrounding_text_is_found_and_masked(value, before, after):
    # separated by " | ": digits right next to a number would make it another (invalid) number
    text = f"{before} | {value} | {after}"
    assert RULES.find(text) is not None
    assert RULES.mask_value({"f": text}) == {"f": MASK}
    masked = RULES.mask_text(text)
    assert value not in masked


@pytest.mark.parametrize("value", ["o7-100000", "ord7-123456", "2026-01-01T10:00:00Z", "a1b2c3d4e5f6g7h8"])
def test_the_hint_lets_ids_with_digits_glued_to_letters_through_cheaply(value):
    assert RULES.hint_for("order_id")(value) is (value.startswith("2026"))  # dates hint, then are not phones
    assert RULES.find(value) is None


@pytest.mark.parametrize("value", ["acct-2015550123", "o7 2015550123", "x+12015550123", "tel:+12015550123",
                                   "id 123-45-6789", "用户@例子.广告", "０２０ ７９４６ ０９５８"])
def test_the_hint_never_hides_what_the_detectors_find(value):
    assert RULES.hint_for("order_id")(value) and RULES.find(value) is not None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789 -+().ab/x", max_size=24))
def test_the_hint_is_a_superset_of_the_detectors(text):
    hint = RULES.hint_for(None)
    if RULES.find(text) is not None:
        assert hint(text), text
