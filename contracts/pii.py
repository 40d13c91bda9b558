"""Finding and masking PII in anything that could leave the gate: values, keys, raw text, errors.

Three detectors, each over any string, whatever field it sits in:
- ``email``: an address in any script; look-alike at signs (full-width, small) are folded by
  NFKC first, so ``jane＠example.com`` is an address too;
- ``phone``: a number that the ``phonenumbers`` library finds valid, written internationally
  (``+33 6 ...``) or in the national format of one of the contract's regions;
- ``ssn``: a US social security number shape (``123-45-6789``, ``123 45 6789``).
A string of the contract's token formats is never PII: it is what the application wrote in
place of the value.

Deciding (does a string that would pass hold PII?) and masking (what may a DLQ copy keep?) use the
same detectors; masking goes further: a field whose name says PII (``Phone``, ``SSN``, ``e-mail``,
...) is masked whatever it holds. (Masking every *possible* phone number instead would take ids:
phonenumbers thinks "20005" a possible British number.) Every detector
first runs one cheap hint pattern (an at sign, or seven digits close together), so a string with
neither costs one regex scan.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

MASK = "***"
DETECTORS = ("email", "phone", "ssn")
RAW_TEXT_LIMIT = 4096
_MAX_DEPTH = 64
# The only characters whose NFKC form holds "@": "@", U+FE6B and U+FF20.
_AT_SIGNS = re.compile(r"[@\uFE6B\uFF20]")
_EMAIL = re.compile(  # bounded quantifiers: no quadratic scans of long strings
    r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}(?:[^\W\d_]{2,63}|xn--[\w-]{1,59})")
_SSN = re.compile(r"(?<!\d)\d{3}([- ])\d{2}\1\d{4}(?!\d)")
# Dates and times hold many digits and are never phone numbers; they are blanked before the phone check.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
                       r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
DEFAULT_PII_NAMES = (r"e[-_ ]?mail|phone|mobile|msisdn|fax|telephone|^tel$|ssn|social[-_ ]?security|passport"
                     r"|tax[-_ ]?id|iban")


# How the hints find digits. phonenumbers never matches a number next to a Latin letter: a candidate
# that starts right after one, or is followed by one, is dropped, and the inner matches it tries
# instead begin after a separator. So the digits a match can hold lie in one letter-free stretch,
# without the digits glued to a letter at its start ("o7" in "o7-100000"). In ASCII text one C pass
# maps digits to "1", letters and "_" to "a" and everything else to "-"; dropping the separators
# leaves each stretch's digits as one run of "1"s. A string whose longest run is shorter than the
# fewest digits a number needs holds none (and no SSN, which needs nine).
_WORD = bytes(range(48, 58)) + bytes(range(65, 91)) + b"_" + bytes(range(97, 123))
_CLASSES = bytes(ord("1") if 48 <= b <= 57 else ord("a") if b in _WORD else ord("-") for b in range(256))
_GLUED = re.compile(rb"a1+")
# The cheap first look: separators deleted, glued digits kept (so it sees a superset of the runs)
_SQUEEZE = bytes.maketrans(_WORD, b"1" * 10 + b"a" * 53)
_NON_WORD = bytes(b for b in range(256) if b not in _WORD)
_LETTERS = re.compile(r"[^\W\d]+")
_DIGIT = re.compile(r"\d")
SSN_DIGITS = 9
INTERNATIONAL_DIGITS = 6  # country code + the shortest national number anywhere (Austria, Germany, Iran)
IDD_DIGITS = 8  # written without "+", an international number carries an exit code ("00", "011") too


def _runs(text: str) -> bytes:
    """The digit-run picture of ASCII `text` ("1" digits, "a" letters; separators and glued digits gone)."""
    return _GLUED.sub(b"a", text.encode("ascii").translate(_CLASSES)).replace(b"-", b"")


def fewest_phone_digits(regions: Iterable[str]) -> int:
    """The fewest digits a valid national number of any of `regions` has (phonenumbers' metadata)."""
    lengths = [n for r in regions for n in phonenumbers.PhoneMetadata.metadata_for_region(r).general_desc
               .possible_length if n > 0]
    return min(lengths, default=IDD_DIGITS)


def _longest_digit_run(text: str) -> int:
    if text.isascii():
        return max(map(len, _runs(text).split(b"a")))
    text = unicodedata.normalize("NFKC", text)  # full-width digits become digits
    return max(len(_DIGIT.findall(part)) for part in _LETTERS.split(text))


def _at_sign(text: str) -> bool:
    return "@" in text or (not text.isascii() and _AT_SIGNS.search(text) is not None)


def digits_hint(plain: int, with_plus: int, at_sign: bool) -> Callable[[str], bool]:
    """A test true for every string with a run of `plain` digits (`with_plus` when it holds a "+"), or
    (when `at_sign`) an at sign; false ones hold no PII of the detectors it stands for."""
    run_plain, run_plus = b"1" * plain, b"1" * with_plus

    def hint(text: str) -> bool:
        if at_sign and _at_sign(text):
            return True
        if text.isascii():
            run = run_plus if "+" in text else run_plain
            return run in text.encode("ascii").translate(_SQUEEZE, _NON_WORD) and run in _runs(text)
        return _longest_digit_run(text) >= (with_plus if "+" in text or "\uff0b" in text else plain)

    hint.__name__ = f"hint_{int(at_sign)}_{plain}_{with_plus}"
    return hint


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def safe_text(text: str) -> str:
    """`text` with lone surrogates written as `\\udXXX` escapes, so that it can be encoded as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class PiiRules:
    """The contract's PII settings, compiled once: which detectors, where, and what is a token."""

    token: re.Pattern[str]
    pii_fields: frozenset[str] = frozenset()
    detectors: frozenset[str] = frozenset(DETECTORS)
    phone_regions: tuple[str, ...] = ("US",)
    per_field: tuple[tuple[str, frozenset[str]], ...] = ()
    pii_names: str = DEFAULT_PII_NAMES

    @cached_property
    def _names(self) -> re.Pattern[str]:
        return re.compile(self.pii_names, re.IGNORECASE)

    @cached_property
    def _fields(self) -> dict[str, frozenset[str]]:
        return dict(self.per_field)

    def is_token(self, value: Any) -> bool:
        return isinstance(value, str) and self.token.fullmatch(value) is not None

    def is_pii_name(self, field: str) -> bool:
        """A field whose value is PII by its name: a contract PII field, or a name that says so."""
        return field in self.pii_fields or self._names.search(field) is not None

    def detectors_for(self, field: str | None) -> frozenset[str]:
        return self._fields.get(field, self.detectors) if field is not None else self.detectors

    def hint_for(self, field: str | None) -> Callable[[str], bool] | None:
        """A test that every string holding PII of the field's detectors passes (None: no detectors).
        A string it fails holds no PII; one it passes may. Costs well under a microsecond."""
        return self._hints.get(self.detectors_for(field))

    @cached_property
    def _hints(self) -> dict[frozenset[str], Callable[[str], bool] | None]:
        combos = {frozenset(), self.detectors, *(d for _, d in self.per_field)}
        return {use: self._hint(use) for use in combos}

    def digits_needed(self, use: frozenset[str] | None = None) -> tuple[int, int]:
        """The fewest digits in one letter-free stretch that PII of the detectors `use` (default: all)
        can have: (without a "+" in the text, with one). The JVM prefilter gets them as arguments."""
        use = self.detectors if use is None else use
        needs = [SSN_DIGITS] if "ssn" in use else []
        if "phone" in use:
            needs += [fewest_phone_digits(self.phone_regions), IDD_DIGITS]
        plain = min(needs, default=1 << 30)
        return plain, (min(plain, INTERNATIONAL_DIGITS) if "phone" in use else plain)

    def _hint(self, use: frozenset[str]) -> Callable[[str], bool] | None:
        if not use:
            return None
        if not use & {"phone", "ssn"}:
            return _at_sign
        return digits_hint(*self.digits_needed(use), at_sign="email" in use)

    # -- deciding --------------------------------------------------------------------
    def find(self, text: str, detectors: frozenset[str] | None = None) -> str | None:
        """The first kind of PII in `text` ('email', 'phone', 'ssn'), or None. Tokens are never PII."""
        use = self.detectors if detectors is None else detectors
        hint = self._hints.get(use) if use in self._hints else self._hint(use)
        if hint is None or not hint(text) or self.is_token(text):
            return None
        text = _nfkc(text)
        if "email" in use and "@" in text and _EMAIL.search(text):
            return "email"
        if "ssn" in use and _SSN.search(text):
            return "ssn"
        if "phone" in use and self._has_phone(text):
            return "phone"
        return None

    def _has_phone(self, text: str) -> bool:
        text = _DATETIME.sub(" ", text)
        for region in self.phone_regions if "+" not in text else ("ZZ", *self.phone_regions):
            for _ in PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
                return True
        return False

    # -- masking -----------------------------------------------------------------------
    def mask_value(self, value: Any, _depth: int = 0) -> Any:
        """A copy of `value` that a DLQ record may carry: every string holding PII, every non-token value
        under a PII-named field, and every object key holding PII become `***`; text stays encodable."""
        if _depth > _MAX_DEPTH:
            return MASK
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                key = self._mask_key(str(k), out)
                if self.is_pii_name(str(k)) and v is not None and not self.is_token(v):
                    out[key] = MASK if not isinstance(v, (dict, list)) else self._mask_all(v, _depth + 1)
                else:
                    out[key] = self.mask_value(v, _depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            return [self.mask_value(v, _depth + 1) for v in value]
        if isinstance(value, str):
            return MASK if self.find(value) else safe_text(value)
        return value

    def _mask_key(self, key: str, taken: dict[str, Any]) -> str:
        if self.find(key) is None:
            return safe_text(key)
        masked, n = MASK, 1
        while masked in taken:
            n += 1
            masked = f"{MASK}#{n}"
        return masked

    def _mask_all(self, value: Any, depth: int) -> Any:
        """Under a PII-named field everything but tokens and structure goes."""
        if depth > _MAX_DEPTH:
            return MASK
        if isinstance(value, dict):
            return {self._mask_key(str(k), {}): self._mask_all(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask_all(v, depth + 1) for v in value]
        return value if value is None or self.is_token(value) else MASK

    def mask_text(self, text: str) -> str:
        """`text` (an error message, a position's key or topic) with every PII span replaced by `***`."""
        text = safe_text(text)
        hint = self._hints[self.detectors]
        if hint is None or not hint(text):
            return text
        text = _nfkc(text)
        text = _EMAIL.sub(MASK, text)
        text = _SSN.sub(MASK, text)
        spans: list[tuple[int, int]] = []
        for region in ("ZZ", *self.phone_regions):
            spans += [(m.start, m.end) for m in PhoneNumberMatcher(text, region, leniency=Leniency.VALID)]
        merged: list[list[int]] = []
        for start, end in sorted(spans):  # the regions' matches may overlap: mask their union
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in reversed(merged):
            text = text[:start] + MASK + text[end:]
        return text

    def mask_raw_text(self, text: str, limit: int = RAW_TEXT_LIMIT) -> str:
        """Mask an unparsable line, then cut it to `limit`: JSON escapes are decoded first (so an address
        written with \\u0040 is still one), quoted values after PII-named keys go whole, even unterminated
        ones, and masking happens before the cut, so no fragment of a value survives it."""
        head = text[: limit + 1024]  # nothing PII-shaped is longer than the margin
        head = _ESCAPE.sub(lambda m: _unescape(m.group(1)), head)
        head = re.sub(r'("((?:[^"\\]|\\.){0,200})"\s*:\s*)("(?:[^"\\]|\\.)*(?:"|$)|[^,}\]\s]+)',
                      lambda m: m.group(1) + '"' + MASK + '"' if self.is_pii_name(m.group(2))
                      and not self.is_token(m.group(3).strip('"')) else m.group(0), head)
        out = self.mask_text(head)
        if len(text) > limit:
            out = out[:limit] + f"...[{len(text) - limit} more chars]"
        return out


def _unescape(hex4: str) -> str:
    c = chr(int(hex4, 16))
    return c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF and c not in '"\\' else "\\u" + hex4


def phone_number_examples() -> list[str]:
    """Valid numbers in several formats and regions (the library's own examples), for tests and docs."""
    fmts = (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return [phonenumbers.format_number(phonenumbers.example_number(r), f)
            for r in ("US", "GB", "FR", "DE", "JP", "IN", "BR") for f in fmts]
