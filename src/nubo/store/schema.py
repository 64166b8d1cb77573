"""The one schema of nubo's metadata store, for SQLite and PostgreSQL alike.

Every table of every service is declared here; migrations in
``store/migrations/versions`` move a database from one revision of this module
to the next, and a test checks that the newest migration matches it.

Times are stored as UTC and read back as timezone-aware UTC ``datetime``s on
both databases (``UTCDateTime``). Addresses and domain names are stored in
their normalized lookup form (lowercase, IDNA A-labels for domains).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Constraint names that are the same on every database, so that migrations can
# name what they drop.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as naive UTC, returned as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- store: content-addressed blobs ----------------------------------------

# One row per distinct content. ``refcount`` counts committed rows of other
# tables that use the bytes; ``pinned_until`` keeps freshly written bytes from
# the collector until the writer's own transaction has had time to commit.
blobs = Table(
    "blobs",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256, lowercase hex
    Column("size", BigInteger, nullable=False),
    Column("refcount", Integer, nullable=False, server_default="0"),
    Column("pinned_until", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "refcount", "pinned_until"),
)

# -- accounts -----------------------------------------------------------------

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(253), nullable=False, unique=True),  # A-label form
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "domain_id",
        Integer,
        ForeignKey("domains.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("local_part", String(64), nullable=False),
    Column("address", String(320), nullable=False, unique=True),  # normalized
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("password_hash", Text, nullable=False),
    Column("quota_bytes", BigInteger, nullable=False, server_default="0"),
    Column("is_admin", Boolean, nullable=False, server_default="0"),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
)

# An alias address delivers to one or more users. A catch-all alias of a
# domain has ``local_part`` NULL and the address ``@domain``.
aliases = Table(
    "aliases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "domain_id",
        Integer,
        ForeignKey("domains.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("local_part", String(64), nullable=True),
    Column("address", String(320), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

alias_targets = Table(
    "alias_targets",
    metadata,
    Column(
        "alias_id",
        Integer,
        ForeignKey("aliases.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

# Per-device passwords: random secrets, so a fast hash (SHA-256) suffices and
# lets authentication find one by its hash instead of trying each.
app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    UniqueConstraint("user_id", "name"),
)

# Failed authentications, counted per account and per client network. The
# ``subject`` is "account:<sha256 of the address>" (with "@<prefix>" appended
# for a network known to the account) or "network:<prefix>"; unknown accounts
# are counted like known ones so the answers cannot tell them apart. The
# address is hashed because people type passwords into the user name field.
auth_failures = Table(
    "auth_failures",
    metadata,
    Column("subject", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
)

# Client networks that have signed in to an account: the account's lockout
# does not apply to them (they have a counter of their own), so an attacker
# elsewhere cannot lock a member out.
known_networks = Table(
    "known_networks",
    metadata,
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("network", String(64), primary_key=True),
    Column("last_success_at", UTCDateTime, nullable=False),
)
