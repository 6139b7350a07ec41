"""E-mail addresses as logs and callers may see them: masked, never whole; and whether a field holds one."""

from __future__ import annotations

import re

# One mailbox, one domain with a dot, nothing that separates or groups addresses (",", ";", blanks, <>,
# quotes) and no control character: a registered field "a@x.com b@y.com" is not an address to send to.
_NOT_IN_ADDRESS = r"@\s,;<>\"()\[\]:\\\x00-\x1f\x7f"
_ONE_ADDRESS = re.compile(rf"[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}.]+(?:\.[^{_NOT_IN_ADDRESS}.]+)+")
_SEPARATORS = re.compile(r"[\s,;]+")


def mask(address: str) -> str:
    """The first letter of the mailbox and the domain: "financeiro@serraazul.com.br" -> "f***@serraazul.com.br"."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def is_one_address(field: str) -> bool:
    """Whether `field` is exactly one address. Several in one field send to none: which of them the customer
    meant is not ours to guess, and a mail server would take them all."""
    return _ONE_ADDRESS.fullmatch(field.strip()) is not None


def mask_field(field: str) -> str:
    """Every address in a field masked: "ana@x.com; bia@y.com" -> "a***@x.com, b***@y.com"."""
    return ", ".join(mask(part) for part in _SEPARATORS.split(field.strip()) if part) or "***"
