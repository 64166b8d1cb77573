"""``nubo domain``, ``nubo user``, ``nubo alias``, ``nubo app-password``.

Each command does one thing to the accounts and says so in one line; list
commands print one line per item. Passwords are read from the terminal
(asked twice) or, when standard input is not a terminal, from its first
line, so that scripts can pipe them. Bad input ends the command with one
line naming the problem (``nubo: no such domain: …``) and exit status 1.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from nubo.accounts import (
    Accounts,
    AccountsError,
    Alias,
    AppPassword,
    Domain,
    User,
    format_size,
    parse_size,
)
from nubo.accounts.passwords import check_new_password
from nubo.accounts.users import check_display_name
from nubo.cli import mail
from nubo.cli.common import CommandError, read_secret, runtime
from nubo.config import Config
from nubo.store.database import describe_error

Handler = Callable[[argparse.Namespace, Config], Awaitable[int]]


def register(commands: Any) -> None:
    _register_domain(commands)
    _register_user(commands)
    _register_alias(commands)
    _register_app_password(commands)


def _group(commands: Any, name: str, help_text: str) -> Any:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    return actions


def _action(actions: Any, name: str, help_text: str, handler: Handler) -> Any:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    parser.set_defaults(handler=handler)
    return parser


def _register_domain(commands: Any) -> None:
    actions = _group(commands, "domain", "mail domains this server hosts")

    add = _action(actions, "add", "host a new domain", _domain_add)
    add.add_argument("name", help="domain name, Unicode or A-labels")
    _action(actions, "list", "list domains", _domain_list)
    remove = _action(actions, "remove", "remove a domain without users", _domain_remove)
    remove.add_argument("name")
    mail.register_domain(actions)  # nubo domain dns


def _register_user(commands: Any) -> None:
    actions = _group(commands, "user", "user accounts")

    add = _action(actions, "add", "create a user (asks for the password)", _user_add)
    add.add_argument("address")
    add.add_argument("--name", default="", help="display name")
    add.add_argument(
        "--quota", help="storage quota: bytes, or 500M, 5G, 1T, 1P; 0 is none"
    )
    add.add_argument("--admin", action="store_true", help="make an administrator")

    listing = _action(actions, "list", "list users", _user_list)
    listing.add_argument("--domain", help="only the users of this domain")

    passwd = _action(actions, "passwd", "set a user's password", _user_passwd)
    passwd.add_argument("address")

    quota = _action(actions, "quota", "set a user's quota", _user_quota)
    quota.add_argument("address")
    quota.add_argument("size", help="bytes, or 500M, 5G, 1T, 1P; 0 is unlimited")

    for name, help_text, handler in (
        ("disable", "refuse the user's sign-ins and mail", _user_disable),
        ("enable", "undo disable", _user_enable),
        ("remove", "delete a user's account", _user_remove),
    ):
        _action(actions, name, help_text, handler).add_argument("address")


def _register_alias(commands: Any) -> None:
    actions = _group(commands, "alias", "addresses that deliver to users")

    add = _action(actions, "add", "create an alias or catch-all", _alias_add)
    add.add_argument("address", help="alias address, or @domain for a catch-all")
    add.add_argument("targets", nargs="+", metavar="TARGET", help="user address")

    listing = _action(actions, "list", "list aliases", _alias_list)
    listing.add_argument("--domain", help="only the aliases of this domain")

    remove = _action(actions, "remove", "remove an alias", _alias_remove)
    remove.add_argument("address")


def _register_app_password(commands: Any) -> None:
    actions = _group(commands, "app-password", "per-device passwords")

    add = _action(actions, "add", "create one; its secret is shown once", _app_add)
    add.add_argument("address")
    add.add_argument("name", help="the device, e.g. phone")

    listing = _action(actions, "list", "list a user's app passwords", _app_list)
    listing.add_argument("address")

    revoke = _action(actions, "revoke", "revoke one", _app_revoke)
    revoke.add_argument("address")
    revoke.add_argument("name")


# -- plumbing ----------------------------------------------------------------


def _reported(handler: Handler) -> Handler:
    """Turn the service's errors into one-line command errors."""

    @functools.wraps(handler)
    async def run(args: argparse.Namespace, config: Config) -> int:
        try:
            return await handler(args, config)
        except AccountsError as exc:
            raise CommandError(str(exc)) from None
        except SQLAlchemyError as exc:
            raise CommandError(f"store error: {describe_error(exc)}") from None

    return run


@asynccontextmanager
async def _accounts(config: Config) -> AsyncIterator[Accounts]:
    # The command prints what it did; the service's own INFO lines would
    # say it a second time on standard error.
    if config.log_level.lower() != "debug":
        logging.getLogger("nubo.accounts").setLevel(logging.WARNING)

    async with runtime(config) as rt:
        yield Accounts(rt.db, config)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%dT%H:%MZ")


# -- domain ------------------------------------------------------------------


@_reported
async def _domain_add(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        domain = await accounts.add_domain(args.name)
    print(f"domain {_domain_name(domain)} added")
    return 0


@_reported
async def _domain_list(_args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        found = await accounts.list_domains()
    for domain in found:
        users = f"{domain.users} user{'' if domain.users == 1 else 's'}"
        aliases = f"{domain.aliases} alias{'' if domain.aliases == 1 else 'es'}"
        print(f"{_domain_name(domain)}  {users}  {aliases}")
    return 0


@_reported
async def _domain_remove(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        name = await accounts.remove_domain(args.name)
    print(f"domain {name} removed")
    return 0


def _domain_name(domain: Domain) -> str:
    """``xn--bcher-kva.example (bücher.example)``, or just the ASCII name."""
    shown = domain.display_name
    return domain.name if shown == domain.name else f"{domain.name} ({shown})"


# -- user --------------------------------------------------------------------


@_reported
async def _user_add(args: argparse.Namespace, config: Config) -> int:
    quota = None if args.quota is None else parse_size(args.quota)
    check_display_name(args.name)

    async with _accounts(config) as accounts:
        # Refuse a taken address or a missing domain before asking for a password.
        address = await accounts.check_new_user(args.address)
        password = check_new_password(read_secret(f"password for {address}: "))
        user = await accounts.add_user(
            address,
            password,
            display_name=args.name,
            quota_bytes=quota,
            is_admin=args.admin,
        )

    role = ", administrator" if user.is_admin else ""
    print(f"user {user.address} added (quota {format_size(user.quota_bytes)}{role})")
    return 0


@_reported
async def _user_list(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        found = await accounts.list_users(args.domain)
    for user in found:
        print(_user_line(user))
    return 0


def _user_line(user: User) -> str:
    fields = [user.address, f"quota {format_size(user.quota_bytes)}"]
    if user.is_admin:
        fields.append("admin")
    if user.disabled:
        fields.append("disabled")
    fields.append(f"last login {_when(user.last_login_at)}")
    if user.display_name:
        fields.append(repr(user.display_name))
    return "  ".join(fields)


@_reported
async def _user_passwd(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        user = await accounts.get_user(args.address)  # no such user: ask nothing
        password = check_new_password(read_secret(f"new password for {user.address}: "))
        await accounts.set_password(user.address, password)
    print(f"password of {user.address} changed")
    return 0


@_reported
async def _user_quota(args: argparse.Namespace, config: Config) -> int:
    size = parse_size(args.size)
    async with _accounts(config) as accounts:
        user = await accounts.set_quota(args.address, size)
    print(f"quota of {user.address} set to {format_size(user.quota_bytes)}")
    return 0


@_reported
async def _user_disable(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        user = await accounts.set_disabled(args.address, True)
    print(f"user {user.address} disabled")
    return 0


@_reported
async def _user_enable(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        user = await accounts.set_disabled(args.address, False)
    print(f"user {user.address} enabled")
    return 0


@_reported
async def _user_remove(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        user = await accounts.get_user(args.address)
        emptied = await accounts.remove_user(user.address)

    also = f" with the aliases left empty: {', '.join(emptied)}" if emptied else ""
    print(f"user {user.address} removed{also}")
    return 0


# -- alias -------------------------------------------------------------------


@_reported
async def _alias_add(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        alias = await accounts.add_alias(args.address, args.targets)
    print(f"alias {_alias_line(alias)} added")
    return 0


@_reported
async def _alias_list(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        found = await accounts.list_aliases(args.domain)
    for alias in found:
        print(_alias_line(alias))
    return 0


def _alias_line(alias: Alias) -> str:
    kind = " (catch-all)" if alias.is_catch_all else ""
    return f"{alias.address}{kind} -> {', '.join(alias.targets) or 'no one'}"


@_reported
async def _alias_remove(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        address = await accounts.remove_alias(args.address)
    print(f"alias {address} removed")
    return 0


# -- app-password ------------------------------------------------------------


@_reported
async def _app_add(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        user = await accounts.get_user(args.address)
        created, secret = await accounts.add_app_password(user.address, args.name)
    print(
        f"app password {created.name!r} for {user.address}: {secret} "
        "(shown once: enter it in the device now)"
    )
    return 0


@_reported
async def _app_list(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        found = await accounts.list_app_passwords(args.address)
    for app_password in found:
        print(_app_line(app_password))
    return 0


def _app_line(app_password: AppPassword) -> str:
    return (
        f"{app_password.name!r}  created {_when(app_password.created_at)}  "
        f"last used {_when(app_password.last_used_at)}"
    )


@_reported
async def _app_revoke(args: argparse.Namespace, config: Config) -> int:
    async with _accounts(config) as accounts:
        user = await accounts.get_user(args.address)
        await accounts.revoke_app_password(user.address, args.name)
    print(f"app password {args.name.strip()!r} of {user.address} revoked")
    return 0
