"""Authentication: the one check every protocol uses to sign someone in.

``Authenticator.authenticate(address, secret, client_address)`` accepts the
user's password or any of their app passwords, and answers ok, failed or
locked. Its invariants:

- An unknown address, a wrong secret and a disabled account all answer the
  same ``failed`` result, after the same work: one store lookup, one
  constant-time comparison against the app password hashes, and one Argon2
  verification (against a dummy hash when there is no user), so neither the
  answer nor its time tells whether an address exists.
- Every attempt passes the lockout first (see ``lockout``); unknown
  addresses are counted and locked like known ones.
- Within a process, attempts on one address run one at a time. The lockout
  counts an attempt before its password is checked, so a mail client that
  opens ten connections at once with the right password would otherwise
  have five counted as failures in flight and be locked out by its own
  success; in turn each is counted, checked and forgiven. Guesses in
  parallel are slowed to one at a time as well.
- A success records the sign-in time, marks the client network as known to
  the account, updates the app password's last use, and rehashes the
  password if the Argon2 cost in the settings changed.
- Logs name the client *network* only, never the secret nor, at any level,
  the address that was tried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from nubo.accounts import app_passwords, users
from nubo.accounts.addresses import parse_address
from nubo.accounts.clock import Clock
from nubo.accounts.errors import InvalidAddress
from nubo.accounts.lockout import (
    Attempt,
    Lockout,
    account_key,
    remember_network,
    subjects,
)
from nubo.accounts.models import User
from nubo.accounts.network import UNKNOWN, client_network
from nubo.accounts.passwords import Passwords, app_secret_hash, find_matching
from nubo.store.database import Database
from nubo.store.schema import users as users_table

log = logging.getLogger(__name__)


class AuthStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"  # refused without checking; unknown accounts lock too


@dataclass(frozen=True)
class AuthResult:
    """The answer to a sign-in; ``user`` is set only when it is ok."""

    status: AuthStatus
    user: User | None = None
    app_password: str | None = None  # the name of the app password used

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


FAILED = AuthResult(AuthStatus.FAILED)
LOCKED = AuthResult(AuthStatus.LOCKED)


@dataclass(frozen=True)
class _Login:
    """What the store knows of the address tried (all empty when unknown)."""

    user: User | None
    password_hash: str | None
    known_network: bool
    app_hashes: list[tuple[int, str]]


@dataclass(frozen=True)
class _Match:
    app_password_id: int | None  # None: the password itself matched


class Authenticator:
    def __init__(
        self, db: Database, passwords: Passwords, lockout: Lockout, clock: Clock
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.lockout = lockout
        self.clock = clock
        self._turns = _Turns()

    async def authenticate(
        self, address: str, secret: str, client_address: str
    ) -> AuthResult:
        async with self._turns.take(account_key(address)):
            return await self._authenticate(address, secret, client_address)

    async def _authenticate(
        self, address: str, secret: str, client_address: str
    ) -> AuthResult:
        network = client_network(client_address)
        dummy = await self.passwords.dummy_hash()  # made before any timing

        login = await self._lookup(address, network)
        account, net = subjects(
            self.lockout.policy, address, network, login.known_network
        )
        attempt = await self.lockout.admit(account, net)
        if attempt is None:
            log.warning("authentication refused, locked network=%s", network)
            return LOCKED

        match = await self._check(login, secret, dummy)
        if match is None or login.user is None:
            _log_failure(attempt, network)
            return FAILED
        return await self._succeed(login.user, login, match, attempt, network, secret)

    async def _lookup(self, address: str, network: str) -> _Login:
        """The user, hash and app password hashes: same queries if unknown."""
        known_since = self.clock.now() - self.lockout.policy.known_for
        async with self.db.read() as conn:
            row = await users.login_row(
                conn, _lookup_form(address), known_since, network
            )
            user_id = 0 if row is None else row.id  # 0 is never an id
            hashes = await app_passwords.hashes_for(conn, user_id)

        if row is None:
            return _Login(None, None, False, hashes)
        known = row.known_at is not None and network != UNKNOWN
        return _Login(User.from_row(row), row.password_hash, known, hashes)

    async def _check(self, login: _Login, secret: str, dummy: str) -> _Match | None:
        """Which secret matched, if any; a disabled user never matches."""
        candidate = app_secret_hash(secret)
        index = find_matching(candidate, [value for _id, value in login.app_hashes])
        enabled = login.user is not None and not login.user.disabled

        if index is not None and enabled:
            return _Match(login.app_hashes[index][0])

        # One Argon2 verification on every path that fails, real or dummy.
        encoded = login.password_hash or dummy
        verified = await self.passwords.verify(encoded, secret)
        if verified and enabled and login.password_hash is not None:
            return _Match(None)
        return None

    async def _succeed(
        self,
        user: User,
        login: _Login,
        match: _Match,
        attempt: Attempt,
        network: str,
        secret: str,
    ) -> AuthResult:
        now = self.clock.now()
        values: dict[str, Any] = {"last_login_at": now}
        if self._needs_rehash(login, match):
            values["password_hash"] = await self.passwords.hash(secret)

        async with self.db.write() as conn:
            name = None
            if match.app_password_id is not None:
                name = await app_passwords.touch(conn, match.app_password_id, now)
                if name is None:  # revoked while we checked it
                    _log_failure(attempt, network)
                    return FAILED

            query = update(users_table).where(users_table.c.id == user.id)
            await conn.execute(query.values(**values))
            if network != UNKNOWN:
                await remember_network(conn, user.id, network, now)
            await self.lockout.forgive(conn, attempt)

        via = "app-password" if name is not None else "password"
        log.debug("authenticated user_id=%d network=%s via=%s", user.id, network, via)
        signed_in = dataclasses.replace(user, last_login_at=now)
        return AuthResult(AuthStatus.OK, signed_in, name)

    def _needs_rehash(self, login: _Login, match: _Match) -> bool:
        """Whether the settings' Argon2 cost changed since the hash was made."""
        encoded = login.password_hash
        if match.app_password_id is not None or encoded is None:
            return False
        return self.passwords.needs_rehash(encoded)


class _Turns:
    """One lock per key, held only while someone waits for or holds it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def take(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _lookup_form(address: str) -> str:
    """The address as stored; ``""`` (no one's) when it is no address at all.

    Garbage is never sent to the store: it may hold NUL or lone surrogates,
    which PostgreSQL refuses, and the lookup must run either way.
    """
    try:
        return str(parse_address(address))
    except InvalidAddress:
        return ""


def _log_failure(attempt: Attempt, network: str) -> None:
    if attempt.over_threshold:
        log.warning(
            "authentication failed, repeatedly network=%s "
            "account_failures=%d network_failures=%d",
            network,
            attempt.account_failures,
            attempt.network_failures,
        )
        return
    log.info("authentication failed network=%s", network)
