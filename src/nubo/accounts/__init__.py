"""Accounts: domains, users, aliases, app passwords, quotas and sign-in.

Every protocol and the portal go through ``Accounts`` (``service``); nothing
else reads or writes the account tables. The rules and where they live:

- ``addresses``: the one normalized form of addresses and domain names.
- ``aliases``: delivery resolution (exact, alias, ``+tag``, catch-all).
- ``passwords``: Argon2id off the event loop; app password secrets.
- ``auth`` and ``lockout``: the one authentication, with lockouts that an
  attacker cannot turn against a member.
- ``network``: the shortened client network that lockouts count and logs
  show (IPv4 /24, IPv6 /48).
- ``bootstrap``: the first domain and administrator of an empty store.

Known gaps: quotas are stored here but enforced by the services that store
bytes; removing a user removes only account rows (the mailstore and files
must remove theirs); a user and an alias with one address are refused by a
check in the same transaction, not by the schema, so on PostgreSQL two
concurrent creations could both pass it.
"""

from nubo.accounts.auth import AuthResult, AuthStatus
from nubo.accounts.bootstrap import bootstrap
from nubo.accounts.clock import Clock, ManualClock, SystemClock
from nubo.accounts.errors import (
    AccountsError,
    AlreadyExists,
    Conflict,
    DomainNotEmpty,
    InvalidAddress,
    InvalidDomain,
    InvalidInput,
    InvalidName,
    InvalidPassword,
    InvalidQuota,
    NoSuchAlias,
    NoSuchAppPassword,
    NoSuchDomain,
    NoSuchUser,
    NotFound,
)
from nubo.accounts.models import Alias, AppPassword, Domain, User
from nubo.accounts.network import client_network
from nubo.accounts.quota import format_size, parse_size
from nubo.accounts.service import Accounts

__all__ = [
    "Accounts",
    "AccountsError",
    "Alias",
    "AlreadyExists",
    "AppPassword",
    "AuthResult",
    "AuthStatus",
    "Clock",
    "Conflict",
    "Domain",
    "DomainNotEmpty",
    "InvalidAddress",
    "InvalidDomain",
    "InvalidInput",
    "InvalidName",
    "InvalidPassword",
    "InvalidQuota",
    "ManualClock",
    "NoSuchAlias",
    "NoSuchAppPassword",
    "NoSuchDomain",
    "NoSuchUser",
    "NotFound",
    "SystemClock",
    "User",
    "bootstrap",
    "client_network",
    "format_size",
    "parse_size",
]
