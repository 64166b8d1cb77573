"""What the accounts service hands out: plain, immutable records.

They hold no secrets: a user record carries no password hash, and an app
password record no secret, so one can be logged or shown without care for
those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nubo.accounts.addresses import display_domain


@dataclass(frozen=True)
class Domain:
    id: int
    name: str  # A-label form, as stored
    created_at: datetime
    users: int = 0
    aliases: int = 0

    @property
    def display_name(self) -> str:
        """The Unicode form, for people to read."""
        return display_domain(self.name)


@dataclass(frozen=True)
class User:
    id: int
    address: str
    display_name: str
    quota_bytes: int  # 0 is unlimited
    is_admin: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> User:
        return cls(
            id=row.id,
            address=row.address,
            display_name=row.display_name,
            quota_bytes=row.quota_bytes,
            is_admin=bool(row.is_admin),
            disabled=bool(row.disabled),
            created_at=row.created_at,
            last_login_at=row.last_login_at,
        )


@dataclass(frozen=True)
class Alias:
    address: str  # "@domain" for a catch-all
    targets: tuple[str, ...]  # user addresses, sorted

    @property
    def is_catch_all(self) -> bool:
        return self.address.startswith("@")


@dataclass(frozen=True)
class AppPassword:
    name: str
    created_at: datetime
    last_used_at: datetime | None
