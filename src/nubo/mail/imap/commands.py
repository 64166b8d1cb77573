"""IMAP commands as typed values (RFC 3501 §6 and the extensions nubo offers).

One frozen dataclass per command; each carries the client's ``tag``. The
class attribute ``name`` is the command ("FETCH"); ``label`` is how a log
line names it ("UID FETCH"). Commands that have a UID form carry ``uid``.
Mailbox names are decoded (modified UTF-7, RFC 3501 §5.1.3) with INBOX in
one spelling; LOGIN's strings and search strings are UTF-8 text.
``nubo.mail.imap.grammar`` makes these from bytes; whether a command is
allowed in the session's state is the server's business.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from nubo.mail.imap.fetch import FetchItem
from nubo.mail.imap.search import SearchKey
from nubo.mail.imap.sequence import SequenceSet


@dataclass(frozen=True, slots=True)
class Command:
    """Any command; ``tag`` is the client's (RFC 3501 §2.2.1)."""

    tag: str
    name: ClassVar[str] = ""
    """The command's name, upper case: "FETCH" for FETCH and UID FETCH."""

    @property
    def label(self) -> str:
        """The name as a log line says it: "UID FETCH" for UID FETCH."""
        return f"UID {self.name}" if getattr(self, "uid", False) else self.name


# --- any state (RFC 3501 §6.1) and not authenticated (RFC 3501 §6.2) --------


@dataclass(frozen=True, slots=True)
class Capability(Command):
    name = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    name = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    name = "LOGOUT"


@dataclass(frozen=True, slots=True)
class StartTLS(Command):
    name = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """RFC 3501 §6.2.2; ``initial_response`` is SASL-IR's (RFC 4959)."""

    mechanism: str
    initial_response: bytes | None = None
    name = "AUTHENTICATE"

    def __repr__(self) -> str:  # the response holds the password
        return f"Authenticate(tag={self.tag!r}, mechanism={self.mechanism!r}, ...)"


@dataclass(frozen=True, slots=True)
class Login(Command):
    """RFC 3501 §6.2.3."""

    userid: str
    password: str
    name = "LOGIN"

    def __repr__(self) -> str:  # so no log or traceback ever shows it
        return f"Login(tag={self.tag!r}, userid={self.userid!r}, password=...)"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971: the client's fields, or None for "ID NIL"."""

    fields: tuple[tuple[str, str | None], ...] | None
    name = "ID"


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """RFC 5161: capability names, upper case."""

    capabilities: tuple[str, ...]
    name = "ENABLE"


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """RFC 2177; the server then calls ``Parser.expect_done``."""

    name = "IDLE"


# --- authenticated state (RFC 3501 §6.3) ------------------------------------


@dataclass(frozen=True, slots=True)
class Select(Command):
    """RFC 3501 §6.3.1; ``condstore`` for "(CONDSTORE)" (RFC 7162 §3.1.8)."""

    mailbox: str
    condstore: bool = False
    name = "SELECT"


@dataclass(frozen=True, slots=True)
class Examine(Command):
    """RFC 3501 §6.3.2: SELECT, read-only."""

    mailbox: str
    condstore: bool = False
    name = "EXAMINE"


@dataclass(frozen=True, slots=True)
class Create(Command):
    mailbox: str
    name = "CREATE"


@dataclass(frozen=True, slots=True)
class Delete(Command):
    mailbox: str
    name = "DELETE"


@dataclass(frozen=True, slots=True)
class Rename(Command):
    mailbox: str
    new_name: str
    name = "RENAME"


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    mailbox: str
    name = "SUBSCRIBE"


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    mailbox: str
    name = "UNSUBSCRIBE"


@dataclass(frozen=True, slots=True)
class List(Command):
    """RFC 3501 §6.3.8 with LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154)
    and LIST-STATUS (RFC 5819) options, upper case."""

    reference: str
    patterns: tuple[str, ...]
    select_options: frozenset[str] = frozenset()
    """SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE."""
    return_options: frozenset[str] = frozenset()
    """SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS."""
    status_items: tuple[str, ...] = ()
    """The items of RETURN (STATUS (...))."""
    name = "LIST"


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    reference: str
    pattern: str
    name = "LSUB"


@dataclass(frozen=True, slots=True)
class Status(Command):
    """RFC 3501 §6.3.10; items upper case."""

    mailbox: str
    items: tuple[str, ...]
    name = "STATUS"


@dataclass(frozen=True, slots=True)
class Append(Command):
    """RFC 3501 §6.3.11. ``message`` is None when the parser streamed it
    (``AppendStart`` and ``AppendData`` came first); ``size`` is its length."""

    mailbox: str
    flags: tuple[str, ...]
    date_time: datetime.datetime | None
    size: int
    message: bytes | None = None
    name = "APPEND"


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    name = "NAMESPACE"


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """RFC 9208 §4.2."""

    root: str
    name = "GETQUOTA"


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """RFC 9208 §4.3."""

    mailbox: str
    name = "GETQUOTAROOT"


# --- selected state (RFC 3501 §6.4) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Check(Command):
    name = "CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    name = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    """RFC 3691."""

    name = "UNSELECT"


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """RFC 3501 §6.4.3; with ``uids`` it is UID EXPUNGE (RFC 4315 §2.1)."""

    uids: SequenceSet | None = None
    name = "EXPUNGE"

    @property
    def uid(self) -> bool:
        return self.uids is not None


@dataclass(frozen=True, slots=True)
class Search(Command):
    """RFC 3501 §6.4.4; ``uid`` for UID SEARCH."""

    charset: str | None
    key: SearchKey
    uid: bool = False

    name = "SEARCH"


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """RFC 3501 §6.4.5; ``changedsince`` is RFC 7162 §3.1.4.1."""

    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changedsince: int | None = None

    name = "FETCH"


class StoreMode(Enum):
    """FLAGS, +FLAGS or -FLAGS (RFC 3501 §6.4.6)."""

    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True, slots=True)
class Store(Command):
    """RFC 3501 §6.4.6; ``unchangedsince`` is RFC 7162 §3.1.3."""

    sequence_set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchangedsince: int | None = None

    name = "STORE"


@dataclass(frozen=True, slots=True)
class Copy(Command):
    """RFC 3501 §6.4.7."""

    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False

    name = "COPY"


@dataclass(frozen=True, slots=True)
class Move(Command):
    """RFC 6851 §3.1."""

    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False

    name = "MOVE"
