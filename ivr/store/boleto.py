"""Boleto bancário numbers (FEBRABAN layout): the 44-digit bar code and the 47-digit digitable line.

The seed data issues boletos a caller may have read to them, so their check digits are real: three
modulo-10 field digits and the modulo-11 general digit, with the due-date factor counted from
1997-10-07 and restarted at 1000 on 2025-02-22 (the FEBRABAN rollover).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

_FACTOR_BASE = date(1997, 10, 7)
_FACTOR_ROLLOVER = 10_000  # 2025-02-22 reached 10000, which became 1000


def due_factor(due: date) -> int:
    days = (due - _FACTOR_BASE).days
    return days - 9_000 if days >= _FACTOR_ROLLOVER else days


def mod10(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def mod11_general(digits: str) -> str:
    total = sum(int(ch) * (2 + i % 8) for i, ch in enumerate(reversed(digits)))
    rest = 11 - total % 11
    return "1" if rest in (0, 10, 11) else str(rest)


def barcode(bank: str, amount: Decimal, due: date, free_field: str) -> str:
    if len(bank) != 3 or not bank.isdigit() or len(free_field) != 25 or not free_field.isdigit():
        raise ValueError("a boleto needs a 3-digit bank code and a 25-digit free field")
    cents = int((amount * 100).to_integral_value())
    if not 0 <= cents < 10**10:
        raise ValueError(f"boleto amount out of range: {amount}")
    body = f"{bank}9{due_factor(due):04d}{cents:010d}{free_field}"
    return body[:4] + mod11_general(body) + body[4:]


def digitable_line(code: str) -> str:
    """The 47 digits a payer keys, from the 44-digit bar code."""
    if len(code) != 44 or not code.isdigit():
        raise ValueError("a boleto bar code has 44 digits")
    free = code[19:]
    field1 = code[:4] + free[:5]
    field2, field3 = free[5:15], free[15:25]
    return field1 + mod10(field1) + field2 + mod10(field2) + field3 + mod10(field3) + code[4] + code[5:19]


def formatted(line: str) -> str:
    """As printed: ``34191.09008 12345.678901 23456.789012 3 98760000150000``."""
    fields = (line[:5], line[5:10], line[10:15], line[15:21], line[21:26], line[26:32], line[32], line[33:])
    return "{}.{} {}.{} {}.{} {} {}".format(*fields)
