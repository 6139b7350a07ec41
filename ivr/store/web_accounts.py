"""The web console's accounts, sessions, failed logins and audit log, over the store (`ivr web`, `ivr users`).

Passwords arrive here already hashed (ivr.web.auth) and session tokens as their SHA-256: the store never
holds a secret a reader of the database could use. Every change to an account writes its audit row in the
same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ivr.clock import Clock
from ivr.store.db import Store
from ivr.store.models import AuditEntry, LoginFailure, WebRole, WebSession, WebUser


class AccountError(ValueError):
    """A change refused: an account that exists already or does not, a name that is not one, an admin
    disabling their own account, or the last active admin removed; the message says which."""


#: An account's name: what a person types at the login, and what the audit log shows.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    role: WebRole
    active: bool
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The account behind a session cookie, and the session's CSRF token."""

    name: str
    role: WebRole
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Audited:
    at: datetime
    who: str
    action: str
    detail: str
    address: str


class WebAccounts:
    def __init__(self, store: Store, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # --- accounts ---------------------------------------------------------------------------------------

    async def add(self, name: str, password_hash: str, role: WebRole, *, who: str, address: str = "") -> None:
        if not ACCOUNT_NAME.fullmatch(name):
            raise AccountError(f"{name!r} is not an account name: 1 to 64 letters, digits, '.', '_', '@' or '-'")
        now = self._clock()
        await self._store.write(
            partial(_add, name=name, password_hash=password_hash, role=role, who=who, now=now, address=address)
        )

    async def set_password(self, name: str, password_hash: str, *, who: str, address: str = "") -> None:
        """A new password; a disabled account is enabled again."""
        await self._change(name, who, address, password_hash=password_hash)

    async def set_role(self, name: str, role: WebRole, *, who: str, address: str = "") -> None:
        await self._change(name, who, address, role=role)

    async def disable(self, name: str, *, who: str, address: str = "") -> None:
        """The account can log in no more, and its open sessions end now."""
        await self._change(name, who, address, active=False)

    async def _change(self, name: str, who: str, address: str, **change: Any) -> None:
        await self._store.write(partial(_change, name=name, who=who, address=address, now=self._clock(), **change))

    async def accounts(self) -> list[Account]:
        return await self._store.read(_accounts)

    async def account(self, name: str) -> Account | None:
        return await self._store.read(partial(_account, name=name))

    # --- logging in -------------------------------------------------------------------------------------

    async def recent_failures(self, name: str, address: str, since: datetime) -> tuple[int, datetime | None]:
        """Failed logins of `name` from `address` since `since`, and the oldest of them."""
        return await self._store.read(partial(_failures, name=name, address=address, since=since))

    async def failed(self, name: str, address: str) -> None:
        await self._store.write(partial(_failed, name=name, address=address, now=self._clock()))

    async def open_session(
        self, account: Account, *, token_hash: str, csrf_token: str, address: str, expires_at: datetime
    ) -> None:
        """A session for `account` after a good password; its failed logins from `address` are forgotten."""
        row = WebSession(
            token_hash=token_hash,
            user_id=account.id,
            csrf_token=csrf_token,
            address=address,
            created_at=self._clock(),
            expires_at=expires_at,
        )
        await self._store.write(partial(_open, row=row, name=account.name))

    async def session(self, token_hash: str) -> LoggedIn | None:
        """The live session with this token: None once expired, or when its account was disabled."""
        return await self._store.read(partial(_session, token_hash=token_hash, now=self._clock()))

    async def close_session(self, token_hash: str, *, who: str, address: str) -> None:
        await self._store.write(partial(_close, token_hash=token_hash, who=who, address=address, now=self._clock()))

    # --- the audit log ----------------------------------------------------------------------------------

    async def audit(self, who: str, action: str, detail: str = "", *, address: str = "") -> None:
        await self._store.write(
            partial(_audit, who=who, action=action, detail=detail, address=address, now=self._clock())
        )

    async def audit_log(self, limit: int = 200, offset: int = 0) -> list[Audited]:
        """The newest `limit` entries after the newest `offset`, newest first."""
        return await self._store.read(partial(_audit_log, limit=limit, offset=offset))


def _row(session: Session, name: str) -> WebUser:
    row = session.scalars(select(WebUser).where(WebUser.name == name)).one_or_none()
    if row is None:
        raise AccountError(f"there is no account {name!r} (see ivr users list)")
    return row


def _add(
    session: Session, *, name: str, password_hash: str, role: WebRole, who: str, now: datetime, address: str
) -> None:
    if session.scalars(select(WebUser.id).where(WebUser.name == name)).first() is not None:
        raise AccountError(f"account {name!r} exists already (ivr users passwd {name} changes its password)")
    session.add(WebUser(name=name, password_hash=password_hash, role=role, active=True, created_at=now, updated_at=now))
    session.add(AuditEntry(at=now, who=who, action="user.add", detail=f"{name} as {role.value}", address=address))


def _change(
    session: Session,
    *,
    name: str,
    who: str,
    address: str,
    now: datetime,
    password_hash: str | None = None,
    role: WebRole | None = None,
    active: bool | None = None,
) -> None:
    """One change to an account and its audit row. Refused (AccountError): disabling one's own account, and
    disabling or demoting the last active admin (nobody could manage the accounts from the console then)."""
    row = _row(session, name)
    if active is False and name == who:
        raise AccountError("you cannot disable your own account: another admin can")
    loses_admin = active is False or (role is not None and role is not WebRole.ADMIN)
    if loses_admin and row.role is WebRole.ADMIN and row.active and _active_admins(session) <= 1:
        raise AccountError(f"{name} is the last active admin: make another account admin first")
    if password_hash is not None:
        row.password_hash, row.active = password_hash, True
        session.add(AuditEntry(at=now, who=who, action="user.passwd", detail=name, address=address))
    if role is not None and role is not row.role:
        detail = f"{name}: {row.role.value} -> {role.value}"
        row.role = role
        session.add(AuditEntry(at=now, who=who, action="user.role", detail=detail, address=address))
    if active is False:
        row.active = False
        session.execute(delete(WebSession).where(WebSession.user_id == row.id))
        session.add(AuditEntry(at=now, who=who, action="user.disable", detail=name, address=address))
    row.updated_at = now


def _active_admins(session: Session) -> int:
    return session.scalar(select(func.count(WebUser.id)).where(WebUser.role == WebRole.ADMIN, WebUser.active)) or 0


def _account_of(row: WebUser) -> Account:
    return Account(row.id, row.name, row.role, row.active, row.password_hash, row.created_at)


def _accounts(session: Session) -> list[Account]:
    return [_account_of(row) for row in session.scalars(select(WebUser).order_by(WebUser.name))]


def _account(session: Session, *, name: str) -> Account | None:
    row = session.scalars(select(WebUser).where(WebUser.name == name)).one_or_none()
    return None if row is None else _account_of(row)


def _failures(session: Session, *, name: str, address: str, since: datetime) -> tuple[int, datetime | None]:
    count, oldest = session.execute(
        select(func.count(LoginFailure.id), func.min(LoginFailure.at)).where(
            LoginFailure.name == name, LoginFailure.address == address, LoginFailure.at >= since
        )
    ).one()
    return count, oldest  # min() keeps the column's type, so it comes back aware


def _failed(session: Session, *, name: str, address: str, now: datetime) -> None:
    session.add(LoginFailure(name=name, address=address, at=now))


def _open(session: Session, *, row: WebSession, name: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.name == name, LoginFailure.address == row.address))
    session.execute(delete(WebSession).where(WebSession.expires_at < row.created_at))  # the expired ones
    session.add(row)
    session.add(AuditEntry(at=row.created_at, who=name, action="login", detail="", address=row.address))


def _session(session: Session, *, token_hash: str, now: datetime) -> LoggedIn | None:
    found = session.execute(
        select(WebSession, WebUser).join(WebUser, WebUser.id == WebSession.user_id).where(
            WebSession.token_hash == token_hash
        )
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    if row.expires_at <= now or not user.active:
        return None
    return LoggedIn(user.name, user.role, row.csrf_token, row.expires_at)


def _close(session: Session, *, token_hash: str, who: str, address: str, now: datetime) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))
    session.add(AuditEntry(at=now, who=who, action="logout", detail="", address=address))


def _audit(session: Session, *, who: str, action: str, detail: str, address: str, now: datetime) -> None:
    session.add(AuditEntry(at=now, who=who, action=action, detail=detail[:500], address=address))


def _audit_log(session: Session, *, limit: int, offset: int) -> list[Audited]:
    newest = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    rows = session.scalars(newest.offset(offset).limit(limit))
    return [Audited(row.at, row.who, row.action, row.detail, row.address) for row in rows]
