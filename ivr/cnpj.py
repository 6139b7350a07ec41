"""CNPJ (Brazilian company registry number) validation, numeric and the new alphanumeric form.

From July 2026 new CNPJs may carry letters in their first 12 positions (IN RFB 2.229/2024); check
digits are computed on each character's ASCII code minus 48, so digits keep their value and
'A' counts 17. A caller cannot key letters on a phone: such CNPJs are given by speech or replaced by
the customer code.
"""

from __future__ import annotations

import re

_WEIGHTS_1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_WEIGHTS_2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_SHAPE = re.compile(r"^[0-9A-Z]{12}[0-9]{2}$")


def normalise(raw: str) -> str:
    """Upper-case and drop punctuation/spaces ("12.345.678/0001-95" -> "12345678000195")."""
    return re.sub(r"[^0-9A-Za-z]", "", raw).upper()


def _check_digit(chars: str, weights: tuple[int, ...]) -> str:
    total = sum((ord(c) - 48) * w for c, w in zip(chars, weights, strict=True))
    rest = total % 11
    return "0" if rest < 2 else str(11 - rest)


def is_valid(raw: str) -> bool:
    value = normalise(raw)
    if not _SHAPE.match(value) or len(set(value)) == 1:
        return False
    first = _check_digit(value[:12], _WEIGHTS_1)
    second = _check_digit(value[:12] + first, _WEIGHTS_2)
    return value[12:] == first + second


def is_alphanumeric(raw: str) -> bool:
    return any(c.isalpha() for c in normalise(raw))


def root(raw: str) -> str:
    """The first 8 characters (the company root), used as an account confirmation."""
    return normalise(raw)[:8]


def mask(raw: str) -> str:
    """For logs: keep the root's first 2 and the check digits ("12.***.***/****-95")."""
    value = normalise(raw)
    if len(value) != 14:
        return "***"
    return f"{value[:2]}.***.***/****-{value[12:]}"
