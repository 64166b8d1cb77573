"""The accounts service: domains, users, aliases, app passwords, sign-in.

``Accounts`` is what the command line, the portal and every protocol adapter
call; the modules beside it hold the rules, each inside a transaction that a
method here opens. Addresses and domain names may be given in any case and in
Unicode or A-label form; they are returned in the stored, lookup form (see
``addresses``). Errors are the classes of ``errors``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts import aliases, app_passwords, domains, users
from nubo.accounts.addresses import (
    normalize_domain,
    parse_address,
    parse_alias_address,
    refuse_tag,
)
from nubo.accounts.auth import Authenticator, AuthResult
from nubo.accounts.clock import Clock, SystemClock
from nubo.accounts.errors import AlreadyExists, InvalidDomain, InvalidInput
from nubo.accounts.lockout import Lockout, LockoutPolicy
from nubo.accounts.models import Alias, AppPassword, Domain, User
from nubo.accounts.passwords import (
    Passwords,
    app_secret_hash,
    check_password,
    new_app_secret,
)
from nubo.accounts.quota import check_quota
from nubo.config import Config
from nubo.store.database import Database
from nubo.store.schema import users as users_table

log = logging.getLogger(__name__)

POSTMASTER = "postmaster"


class Accounts:
    """Every operation on accounts, each in its own transaction."""

    def __init__(
        self, db: Database, config: Config, clock: Clock | None = None
    ) -> None:
        self.db = db
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.passwords = Passwords(
            config.password_time_cost, config.password_memory_kib
        )
        self.lockout = Lockout(db, LockoutPolicy.from_config(config), self.clock)
        self._auth = Authenticator(db, self.passwords, self.lockout, self.clock)

    # -- domains ------------------------------------------------------------

    async def add_domain(self, name: str) -> Domain:
        ascii_name = normalize_domain(name)
        async with self._write(f"domain {ascii_name} already exists") as conn:
            domain = await domains.add(conn, ascii_name, self.clock.now())
        log.info("domain added domain_id=%d", domain.id)
        return domain

    async def list_domains(self) -> list[Domain]:
        async with self.db.read() as conn:
            return await domains.list_all(conn)

    async def find_domain(self, name: str) -> Domain | None:
        """The hosted domain ``name`` (any case or form), or None."""
        try:
            ascii_name = normalize_domain(name)
        except InvalidDomain:
            return None
        async with self.db.read() as conn:
            return await domains.find(conn, ascii_name)

    async def remove_domain(self, name: str) -> str:
        """Remove an empty domain; returns its stored name."""
        ascii_name = normalize_domain(name)
        async with self.db.write() as conn:
            await domains.remove(conn, ascii_name)
        log.info("domain removed")
        return ascii_name

    # -- users --------------------------------------------------------------

    async def check_new_user(self, address: str) -> str:
        """The stored form of ``address`` if a user may be created with it.

        Lets a caller refuse early, before asking for a password; ``add_user``
        checks again.
        """
        parsed = parse_address(address)
        refuse_tag(parsed)
        async with self.db.read() as conn:
            await domains.require_id(conn, parsed.domain)
            await users.check_free(conn, str(parsed))
        return str(parsed)

    async def add_user(
        self,
        address: str,
        password: str,
        *,
        display_name: str = "",
        quota_bytes: int | None = None,
        is_admin: bool = False,
    ) -> User:
        parsed = parse_address(address)
        refuse_tag(parsed)
        name = users.check_display_name(display_name)
        quota = check_quota(
            self.config.default_quota if quota_bytes is None else quota_bytes
        )
        encoded = await self.passwords.hash(check_password(password))

        async with self._write(f"user {parsed} already exists") as conn:
            user = await users.add(
                conn,
                parsed,
                password_hash=encoded,
                display_name=name,
                quota_bytes=quota,
                is_admin=is_admin,
                now=self.clock.now(),
            )
        log.info("user added user_id=%d", user.id)
        return user

    async def get_user(self, address: str) -> User:
        async with self.db.read() as conn:
            return await users.require(conn, str(parse_address(address)))

    async def list_users(self, domain: str | None = None) -> list[User]:
        ascii_name = None if domain is None else normalize_domain(domain)
        async with self.db.read() as conn:
            return await users.list_all(conn, ascii_name)

    async def has_users(self) -> bool:
        async with self.db.read() as conn:
            query = select(exists().where(users_table.c.id.is_not(None)))
            found: bool = (await conn.execute(query)).scalar_one()
        return found

    async def set_password(self, address: str, password: str) -> User:
        parsed = str(parse_address(address))
        encoded = await self.passwords.hash(check_password(password))
        user = await self._change(parsed, password_hash=encoded)
        log.info("password changed user_id=%d", user.id)
        return user

    async def set_quota(self, address: str, quota_bytes: int) -> User:
        quota = check_quota(quota_bytes)
        return await self._change(str(parse_address(address)), quota_bytes=quota)

    async def set_disabled(self, address: str, disabled: bool) -> User:
        parsed = str(parse_address(address))
        async with self.db.write() as conn:
            if disabled:
                await users.refuse_last_admin(conn, await users.require(conn, parsed))
            user = await users.change(conn, parsed, disabled=disabled)
        log.info("user %s user_id=%d", "disabled" if disabled else "enabled", user.id)
        return user

    async def set_display_name(self, address: str, display_name: str) -> User:
        name = users.check_display_name(display_name)
        return await self._change(str(parse_address(address)), display_name=name)

    async def remove_user(self, address: str) -> list[str]:
        """Remove a user; returns the aliases removed with their last target."""
        parsed = str(parse_address(address))
        async with self.db.write() as conn:
            await users.refuse_last_admin(conn, await users.require(conn, parsed))
            removed = await users.remove(conn, parsed)
        log.info("user removed aliases_removed=%d", len(removed))
        return removed

    async def _change(self, address: str, **values: object) -> User:
        async with self.db.write() as conn:
            return await users.change(conn, address, **values)

    # -- aliases ------------------------------------------------------------

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        """An alias (or a catch-all, ``@domain``) delivering to ``targets``."""
        parsed = parse_alias_address(address)
        refuse_tag(parsed)
        if not targets:
            raise InvalidInput(f"alias {parsed} needs at least one target")
        wanted = [parse_address(target) for target in targets]

        async with self._write(f"alias {parsed} already exists") as conn:
            alias = await aliases.add(conn, parsed, wanted, self.clock.now())
        log.info("alias added targets=%d", len(alias.targets))
        return alias

    async def list_aliases(self, domain: str | None = None) -> list[Alias]:
        ascii_name = None if domain is None else normalize_domain(domain)
        async with self.db.read() as conn:
            return await aliases.list_all(conn, ascii_name)

    async def remove_alias(self, address: str) -> str:
        """Remove an alias; returns its stored address."""
        parsed = str(parse_alias_address(address))
        async with self.db.write() as conn:
            await aliases.remove(conn, parsed)
        log.info("alias removed")
        return parsed

    async def resolve(self, address: str) -> list[User]:
        """The enabled users mail to ``address`` reaches (see ``aliases``);
        a postmaster always reaches someone (see ``_postmasters``)."""
        async with self.db.read() as conn:
            found = await _postmasters(conn, address)
            if found is not None:
                return found
            return await aliases.resolve(conn, address)

    async def may_send_as(self, user_id: int, address: str) -> bool:
        """Whether the user may use ``address`` as sender (see ``aliases``)."""
        async with self.db.read() as conn:
            return await aliases.may_send_as(conn, user_id, address)

    # -- app passwords ------------------------------------------------------

    async def add_app_password(
        self, address: str, name: str
    ) -> tuple[AppPassword, str]:
        """A new app password and its secret, which is not kept: show it once."""
        parsed = str(parse_address(address))
        label = app_passwords.check_name(name)
        secret = new_app_secret()

        conflict = f"an app password named {label!r} already exists"
        async with self._write(conflict) as conn:
            user = await users.require(conn, parsed)
            created = await app_passwords.add(
                conn, user.id, label, app_secret_hash(secret), self.clock.now()
            )
        log.info("app password added user_id=%d", user.id)
        return created, secret

    async def list_app_passwords(self, address: str) -> list[AppPassword]:
        async with self.db.read() as conn:
            user = await users.require(conn, str(parse_address(address)))
            return await app_passwords.list_for(conn, user.id)

    async def revoke_app_password(self, address: str, name: str) -> None:
        async with self.db.write() as conn:
            user = await users.require(conn, str(parse_address(address)))
            await app_passwords.revoke(conn, user.id, name.strip())
        log.info("app password revoked user_id=%d", user.id)

    # -- authentication -----------------------------------------------------

    async def authenticate(
        self, address: str, secret: str, client_address: str
    ) -> AuthResult:
        """Sign in with the password or an app password (see ``auth``)."""
        return await self._auth.authenticate(address, secret, client_address)

    async def prune(self) -> int:
        """Forget old failure counters and known networks; returns rows deleted."""
        return await self.lockout.prune()

    @asynccontextmanager
    async def _write(self, conflict: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction in which a uniqueness violation is AlreadyExists.

        The checks inside run in the same transaction, but two PostgreSQL
        transactions can still race past them to the unique index.
        """
        try:
            async with self.db.write() as conn:
                yield conn
        except IntegrityError:
            raise AlreadyExists(conflict) from None


async def _postmasters(conn: AsyncConnection, text: str) -> list[User] | None:
    """Who ``postmaster@<hosted domain>``, or ``postmaster`` bare, reaches;
    None for any other address.

    RFC 5321 §4.5.1: every domain takes mail for its postmaster, in any case.
    A user or an alias of that address decides; without one (or when all it
    reaches are disabled) it goes to the domain's enabled administrators, or
    to every enabled administrator when the domain has none, as does the bare
    form. A catch-all does not take it: reports about the server belong with
    those who run it.
    """
    if text.strip().lower() == POSTMASTER:
        return await users.admins(conn)
    try:
        address = parse_address(text)
    except InvalidInput:
        return None
    if address.local_part != POSTMASTER:
        return None
    domain_id = await domains.find_id(conn, address.domain)
    if domain_id is None:
        return None

    user = await users.find(conn, str(address))
    named = [user] if user is not None else await aliases.targets(conn, str(address))
    enabled = [found for found in named or [] if not found.disabled]
    if enabled:
        return enabled
    return await users.admins(conn, domain_id) or await users.admins(conn)
