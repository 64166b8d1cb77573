"""The errors of the accounts service, one class per thing that can go wrong.

Each carries a one-line message fit to show an administrator (the command
line prints it as is). Messages may name the address or domain involved, so
they are for the person who asked, not for routine logs.

::

    AccountsError
     ├── InvalidInput             the request itself is malformed
     │    ├── InvalidAddress      not a usable email address
     │    ├── InvalidDomain       not a usable domain name
     │    ├── InvalidPassword     empty or unusable password
     │    ├── InvalidQuota        not a size, or negative
     │    └── InvalidName         display or app password name unusable
     ├── NotFound                 the thing named does not exist
     │    ├── NoSuchDomain
     │    ├── NoSuchUser
     │    ├── NoSuchAlias
     │    └── NoSuchAppPassword
     └── Conflict                 the store's current state forbids it
          ├── AlreadyExists       the address or name is taken
          └── DomainNotEmpty      users or aliases still live in the domain

Authentication failures are not errors: ``authenticate`` answers with an
``AuthResult`` so that every protocol treats them the same way.
"""

from __future__ import annotations


class AccountsError(Exception):
    """Base of every error the accounts service raises."""


class InvalidInput(AccountsError):
    """The request is malformed; asking again unchanged cannot succeed."""


class InvalidAddress(InvalidInput):
    """Not a usable email address."""


class InvalidDomain(InvalidInput):
    """Not a usable domain name."""


class InvalidPassword(InvalidInput):
    """An empty or unusable password."""


class InvalidQuota(InvalidInput):
    """A quota that is not a size, or is negative."""


class InvalidName(InvalidInput):
    """A display name or an app password name that cannot be stored."""


class NotFound(AccountsError):
    """The domain, user, alias or app password named does not exist."""


class NoSuchDomain(NotFound):
    """The domain is not one this server hosts."""


class NoSuchUser(NotFound):
    """No user has this address."""


class NoSuchAlias(NotFound):
    """No alias has this address."""


class NoSuchAppPassword(NotFound):
    """The user has no app password of this name."""


class Conflict(AccountsError):
    """The current state of the store forbids the change."""


class AlreadyExists(Conflict):
    """The address (user or alias), domain or name is already taken."""


class DomainNotEmpty(Conflict):
    """A domain cannot be removed while users or aliases live in it."""
