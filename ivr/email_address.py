"""E-mail addresses as logs and callers may see them: masked, never whole."""

from __future__ import annotations


def mask(address: str) -> str:
    """The first letter of the mailbox and the domain: "financeiro@serraazul.com.br" -> "f***@serraazul.com.br"."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"
