"""Who may start a call on the FastAGI port, checked before any flow runs.

A FastAGI port takes whatever connects: without a check, anyone who reaches it could walk a flow with a
caller ID of their choosing (identified as a customer by it), open tickets and have call backs dialled.
So a call is admitted only when it comes from one of Asterisk's addresses (``agi.asterisk_hosts``),
carries the per-install key that the shipped dialplan puts in its AGI URL (``agi://host:port/sac?key=...``,
compared in constant time), and asks for an entry flow (``agi.entry_flows``: ``sac``, not a subflow such
as ``identify`` that expects a caller already identified). The key is removed from the request before the
call's channel sees it, so it reaches neither the flow's variables nor a log line.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from ivr.agi.wire import AgiRequest
from ivr.config import Settings

KEY_PARAM = "key"


@dataclass(frozen=True, slots=True)
class Admission:
    key: str  # "" asks for none (tests of the wire)
    hosts: frozenset[str]  # canonical IP addresses; empty: any peer
    entry_flows: frozenset[str]  # empty: any flow

    @classmethod
    def of(cls, settings: Settings, key: str) -> Admission:
        hosts = frozenset(_canonical(host) for host in settings.agi.asterisk_hosts)
        return cls(key, frozenset(h for h in hosts if h), frozenset(settings.agi.entry_flows))

    def refusal(self, peer: str | None, request: AgiRequest) -> str | None:
        """Why a call from `peer` asking `request` may not start, or None."""
        if self.hosts and _canonical(peer) not in self.hosts:
            return f"{peer} is not one of Asterisk's addresses (agi.asterisk_hosts)"
        if self.key and not hmac.compare_digest(request.params.get(KEY_PARAM, "").encode(), self.key.encode()):
            return "the request's key is missing or wrong (the dialplan's AGI URL and agi.secret differ?)"
        if self.entry_flows and request.flow not in self.entry_flows:
            return f"flow {request.flow[:40]!r} is not one a call may start in (agi.entry_flows)"
        return None


#: No check at all: for tests of the wire, never for `ivr serve`.
OPEN = Admission("", frozenset(), frozenset())


def _canonical(address: str | None) -> str:
    """An address as the kernel may report it: an IPv4 peer on a dual-stack socket is ::ffff:a.b.c.d."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed
