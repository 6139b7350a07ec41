"""Brazilian caller numbers, normalised in one place, and masked for logs.

`normalise` turns what a trunk presents (``+55 31 3333-4444``, ``5531...``, ``031...``, ``0 15 31...``
with a carrier selection code, ``3003-3336``, ``0800...``) into the *national number* we store and
match: area code + subscriber (10 digits for landlines, 11 for mobiles, which always start with 9),
or a non-geographic number as dialled (``0800xxxxxxx``, ``3003xxxx``). Withheld, anonymous or
malformed caller IDs are normal and give None. Numbers from abroad are kept as ``+<country...>``.
"""

from __future__ import annotations

import re

# Brazilian area codes (DDD) in service.
AREA_CODES = frozenset(
    int(code)
    for code in (
        "11 12 13 14 15 16 17 18 19 21 22 24 27 28 31 32 33 34 35 37 38 41 42 43 44 45 46 47 48 49 "
        "51 53 54 55 61 62 63 64 65 66 67 68 69 71 73 74 75 77 79 81 82 83 84 85 86 87 88 89 "
        "91 92 93 94 95 96 97 98 99"
    ).split()
)
_NON_GEOGRAPHIC_TOLL = re.compile(r"^0[3589]00\d{7}$")  # 0800 free, 0300/0500/0900
_NON_GEOGRAPHIC_SHARED = re.compile(r"^[34]00\d{5}$")  # 3003-xxxx, 4004-xxxx: no area code
_WITHHELD = {"anonymous", "withheld", "unknown", "restricted", "private", "unavailable", "asterisk"}
_ALLOWED = re.compile(r"^\+?[\d\s().\-/]+$")


def normalise(raw: str | None, *, default_area_code: str | None = None) -> str | None:
    """The national number for `raw`, or None when withheld or not a usable number.

    A local number without area code (8 or 9 digits) needs `default_area_code` (the trunk's area).
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text or text.lower() in _WITHHELD or not _ALLOWED.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") or digits.startswith("00"):
        digits = digits if text.startswith("+") else digits[2:]  # "00" is the international prefix
        if not digits.startswith("55"):
            return f"+{digits}" if 8 <= len(digits) <= 15 else None
        return _national(digits[2:])
    if _NON_GEOGRAPHIC_TOLL.match(digits) or _NON_GEOGRAPHIC_SHARED.match(digits):
        return digits
    if digits.startswith("0"):
        return _trunk_prefixed(digits[1:])
    if len(digits) in (12, 13) and digits.startswith("55"):
        return _national(digits[2:])
    if len(digits) in (8, 9):
        return _national(default_area_code + digits) if default_area_code else None
    return _national(digits)


def _trunk_prefixed(digits: str) -> str | None:
    """After the national trunk prefix 0: area code + number, or a 2-digit carrier code first."""
    if len(digits) in (12, 13):  # 0 + carrier (e.g. 15, 21, 31) + area code + number
        return _national(digits[2:])
    return _national(digits)


def _national(digits: str) -> str | None:
    if _NON_GEOGRAPHIC_TOLL.match(digits) or _NON_GEOGRAPHIC_SHARED.match(digits):
        return digits
    if len(digits) not in (10, 11) or int(digits[:2]) not in AREA_CODES:
        return None
    area, subscriber = digits[:2], digits[2:]
    if _NON_GEOGRAPHIC_SHARED.match(subscriber):  # "(31) 3003-3336" is the same number nationwide
        return subscriber
    if len(subscriber) == 9:
        return digits if subscriber[0] == "9" else None
    if subscriber[0] in "2345":  # landline
        return digits
    if subscriber[0] in "6789":  # a mobile written before the 9th digit was added
        return f"{area}9{subscriber}"
    return None


def callback_number(raw: str | None) -> str | None:
    """The national number of a Brazilian landline or mobile we can call back, or None: withheld,
    foreign, toll-free or premium (0800, 0300...) and shared (3003, 4004) numbers cannot be."""
    national = normalise(raw)
    if national is None or not national.isdigit() or len(national) not in (10, 11):
        return None
    return national if int(national[:2]) in AREA_CODES else None


def is_mobile(national: str) -> bool:
    """A Brazilian mobile (area code + 9 digits starting with 9): the phones WhatsApp is used on."""
    return len(national) == 11 and national.isdigit() and national[2] == "9"


def for_trunk(e164: str, number_format: str) -> str:
    """A Brazilian E.164 number (+553131958012) as the carrier trunk dials it: ``national`` (area code +
    number, 3131958012) or ``e164``. ValueError for anything else."""
    if not re.fullmatch(r"\+55\d{10,11}", e164):
        raise ValueError(f"expected a Brazilian E.164 number (+55...), got {e164!r}")
    if number_format == "e164":
        return e164
    if number_format == "national":
        return e164[3:]
    raise ValueError(f"unknown trunk number format {number_format!r} (national or e164)")


def mask(number: str | None) -> str:
    """For logs: the area code and the last two digits only ("31******44"); "withheld" for None."""
    if not number:
        return "withheld"
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]
