from __future__ import annotations

import pytest

from ivr.phone import mask, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3133334444", "3133334444"),
        ("+55 31 3333-4444", "3133334444"),
        ("+553133334444", "3133334444"),
        ("553133334444", "3133334444"),
        ("00553133334444", "3133334444"),
        ("031 3333 4444", "3133334444"),
        ("0 15 31 3333-4444", "3133334444"),  # carrier selection code 15
        ("0213133334444", "3133334444"),
        ("(31) 98888-7777", "31988887777"),
        ("+55 31 98888 7777", "31988887777"),
        ("0 31 31 98888 7777", "31988887777"),
        ("3188887777", "31988887777"),  # mobile written before the 9th digit
        ("0800 123 4567", "08001234567"),
        ("3003-3336", "30033336"),
        ("+55 (31) 3003-3336", "30033336"),
        ("5533334444", "5533334444"),  # area code 55 (RS), not the country code
        ("+1 212 555 0100", "+12125550100"),
    ],
)
def test_brazilian_forms_normalise_to_the_national_number(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "anonymous",
        "Anonymous",
        "withheld",
        "unknown",
        "restricted",
        "abc123",
        "123",
        "2033334444",  # area code 20 does not exist
        "31833334444",  # 9 digits after the area code must start with 9
        "3113334444",  # a subscriber number cannot start with 1
        "33334444",
    ],  # local number without area code
)
def test_withheld_or_malformed_caller_ids_are_none(raw: str | None) -> None:
    assert normalise(raw) is None


def test_local_numbers_take_the_trunk_area_code_when_given() -> None:
    assert normalise("3333-4444", default_area_code="31") == "3133334444"
    assert normalise("98888-7777", default_area_code="31") == "31988887777"


def test_mask_keeps_only_area_code_and_last_two_digits() -> None:
    assert mask("3133334444") == "31******44"
    assert mask("31988887777") == "31*******77"
    assert mask(None) == "withheld"
    assert "3333" not in mask(normalise("+55 31 3333-4444"))
