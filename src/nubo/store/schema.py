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

# -- mailstore ----------------------------------------------------------------

# SQLite gives an INTEGER PRIMARY KEY its rowid (and autoincrement) only when
# the type is exactly INTEGER; PostgreSQL needs 64 bits for message rows.
BigId = BigInteger().with_variant(Integer, "sqlite")

# Bytes a user's mail (and later files) take, kept beside the quota so that
# a delivery can check and count them in one UPDATE.
user_usage = Table(
    "user_usage",
    metadata,
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("mail_bytes", BigInteger, nullable=False, server_default="0"),
)

# A mailbox (RFC 3501 §2.3.1.1 and §5.1): ``name`` is the full UTF-8 name
# with "/" as hierarchy delimiter, INBOX spelled "INBOX". ``uidnext`` is the
# next UID to give and ``highestmodseq`` the MODSEQ of the last change
# (RFC 7162 §3.1.1); both only grow. ``special_use`` is an RFC 6154
# attribute without its backslash ("Sent", "Drafts", ...). Ids are never
# reused: a session or an event that names a deleted mailbox must not reach
# a new one created after it.
mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(1000), nullable=False),
    Column("special_use", String(20), nullable=True),
    Column("subscribed", Boolean, nullable=False, server_default="1"),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False, server_default="1"),
    Column("highestmodseq", BigInteger, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "name"),
    sqlite_autoincrement=True,
)

# One message in one mailbox; a copy is another row on the same blob.
# ``flags`` holds the system flags as bits (see nubo.mail.flags) and
# ``keywords`` the other flags, space-separated with a space at each end so
# that one keyword can be matched with LIKE. ``info`` is the parsed
# structure (nubo.mail.mime.model, JSON) and ``search`` the decoded header
# text SEARCH reads (JSON), so neither needs the bytes again. Ids are never
# reused, as in the queue below, so a stale id can only miss.
messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "mailbox_id",
        Integer,
        ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("keywords", Text, nullable=False, server_default=" "),
    Column("internal_date", UTCDateTime, nullable=False),
    Column("sent_date", UTCDateTime, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("blob_id", String(64), nullable=False),
    Column("info", Text, nullable=False),
    Column("search", Text, nullable=False),
    UniqueConstraint("mailbox_id", "uid"),
    Index(None, "mailbox_id", "modseq"),
    # Covers flag searches and FETCH FLAGS without reading the wide rows.
    Index(None, "mailbox_id", "uid", "flags", "modseq", "keywords"),
    sqlite_autoincrement=True,
)

# UIDs expunged from a mailbox with the MODSEQ of their expunge, for
# QRESYNC's VANISHED (RFC 7162 §3.2.10) and for sync clients.
expunged = Table(
    "expunged",
    metadata,
    Column(
        "mailbox_id",
        Integer,
        ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("uid", BigInteger, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
    Index(None, "mailbox_id", "modseq"),
)

# -- mail transport -------------------------------------------------------

# The DKIM key a domain signs its outgoing mail with (RFC 6376 §3.6).
dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column(
        "domain_id",
        Integer,
        ForeignKey("domains.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(20), nullable=False),  # "rsa-sha256"
    Column("private_key", Text, nullable=False),  # PEM
    Column("public_key", Text, nullable=False),  # base64, for the DNS record
    Column("created_at", UTCDateTime, nullable=False),
)

# The outbound queue: one row per message to send, one per recipient. A
# worker leases due recipients (``lease_until``, ``lease_owner``) with
# SELECT ... FOR UPDATE SKIP LOCKED, so several processes never send one
# recipient twice and a dead worker's lease runs out.
# Ids are never reused (sqlite_autoincrement; PostgreSQL sequences never
# go back): a queue id names one message in ``nubo queue`` and in the log,
# even after an earlier message with that id was delivered or deleted.
queue_messages = Table(
    "queue_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("sender", String(320), nullable=False),  # "" for a bounce
    Column("blob_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

queue_recipients = Table(
    "queue_recipients",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "message_id",
        BigInteger,
        ForeignKey("queue_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("recipient", String(320), nullable=False),
    Column("domain", String(253), nullable=False),
    # "queued", "sent", "bounced"; finished rows are deleted with their
    # message once every recipient is finished.
    Column("state", String(10), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("last_reply", Text, nullable=True),
    Column("delay_notified", Boolean, nullable=False, server_default="0"),
    Index(None, "state", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Counters for fixed-window rate limits shared by every process, such as
# messages submitted per user per hour.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("subject", String(400), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
)
