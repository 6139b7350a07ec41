"""The two kinds of number a caller reads out, each with its own check digit.

- **Call protocol** (the RGC's "protocolo de atendimento"), ours: 12 digits, ``YYYY`` + 7-digit
  sequence + Luhn check digit, e.g. ``2026 0001234 7``. Allocated when the call is answered.
- **Ticket number**, the back-end's format: 9 digits, ``8`` + 7-digit sequence + modulo-11 check digit
  (the Brazilian "módulo 11", weights 2..9 from the right). Tickets, requests and disputes opened
  during a call get one, linked to the call's protocol.

Both are all digits so a caller can key them; the check digit catches a mistyped or swapped digit.
"""

from __future__ import annotations

from enum import Enum

CALL_PROTOCOL_LENGTH = 12
TICKET_NUMBER_LENGTH = 9
_SEQUENCE_MAX = 9_999_999


class NumberKind(str, Enum):
    CALL_PROTOCOL = "call_protocol"
    TICKET = "ticket"


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counting from the digit next to the check digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def mod11_digit(body: str) -> str:
    total = sum(int(ch) * (2 + i % 8) for i, ch in enumerate(reversed(body)))
    rest = 11 - total % 11
    return "0" if rest >= 10 else str(rest)


def make_call_protocol(year: int, sequence: int) -> str:
    if not 0 < sequence <= _SEQUENCE_MAX:
        raise ValueError(f"call protocol sequence out of range: {sequence}")
    body = f"{year:04d}{sequence:07d}"
    return body + luhn_digit(body)


def make_ticket_number(sequence: int) -> str:
    if not 0 < sequence <= _SEQUENCE_MAX:
        raise ValueError(f"ticket sequence out of range: {sequence}")
    body = f"8{sequence:07d}"
    return body + mod11_digit(body)


def kind_of(digits: str) -> NumberKind | None:
    """Which valid number this is, or None when it is neither (wrong length, bad check digit)."""
    if not digits.isdigit():
        return None
    if len(digits) == CALL_PROTOCOL_LENGTH and luhn_digit(digits[:-1]) == digits[-1]:
        return NumberKind.CALL_PROTOCOL
    if len(digits) == TICKET_NUMBER_LENGTH and digits[0] == "8" and mod11_digit(digits[:-1]) == digits[-1]:
        return NumberKind.TICKET
    return None


def is_valid_protocol_or_ticket(digits: str) -> bool:
    return kind_of(digits) is not None
