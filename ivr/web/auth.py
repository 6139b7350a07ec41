"""Who may use the web console: argon2 password hashes, logins refused after repeated failures, sessions
held server-side behind a random cookie, and the roles.

A login costs one argon2 verification whether or not the account exists (an unknown name is checked
against a hash made at start), so the time it takes tells nothing about which names are accounts.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeGuard

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.config import WebSettings
from ivr.store.models import WebRole
from ivr.store.web_accounts import Account, WebAccounts

#: Each role may do what the ones before it may.
RANKS = {WebRole.VIEWER: 0, WebRole.EDITOR: 1, WebRole.ADMIN: 2}
MIN_PASSWORD_CHARS = 10

_hasher = PasswordHasher()
_NOBODY = _hasher.hash(secrets.token_urlsafe(16))  # what an unknown name is checked against


def hash_password(password: str) -> str:
    """The argon2id hash of a password; refuses one too short to resist guessing."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def allowed(role: WebRole, needed: WebRole) -> bool:
    return RANKS[role] >= RANKS[needed]


def token_hash(token: str) -> str:
    """What the store keeps of a session cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Refused:
    """A login refused: `retry_after_s` is set when it was for too many failures (HTTP 429)."""

    message: str
    retry_after_s: int | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    """A login accepted: the cookie's token and when the session ends."""

    token: str
    expires_at: datetime


async def log_in(
    accounts: WebAccounts, conf: WebSettings, name: str, password: str, *, address: str, now: datetime
) -> Opened | Refused:
    """Check a login; a good one opens a session, a bad one is counted against the name and the address."""
    window = timedelta(seconds=conf.login_window_s)
    failures, oldest = await accounts.recent_failures(name, address, now - window)
    if failures >= conf.login_failures_max and oldest is not None:
        wait = max(1, math.ceil((oldest + window - now).total_seconds()))
        minutes = (wait + 59) // 60
        return Refused(f"Too many failed logins for this account from here: try again in {minutes} min.", wait)
    account = await accounts.account(name)
    if not _verified(account, password):
        await accounts.failed(name, address)
        return Refused("Wrong name or password, or the account is disabled.")
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=conf.session_lifetime_s)
    await accounts.open_session(
        account,
        token_hash=token_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        address=address,
        expires_at=expires_at,
    )
    return Opened(token, expires_at)


def _verified(account: Account | None, password: str) -> TypeGuard[Account]:
    """One argon2 verification in every case, so an unknown or disabled account answers in the same time."""
    try:
        matches = _hasher.verify(account.password_hash if account else _NOBODY, password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and account is not None and account.active
