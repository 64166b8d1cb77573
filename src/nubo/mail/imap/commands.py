"""IMAP commands as typed values, and the parser of one whole command.

One frozen dataclass per command of RFC 3501 §6 and of the extensions nubo
speaks; every one carries the client's ``tag``, and ``name`` is the command
as a log line should name it ("UID FETCH"). ``parse_command`` reads the
bytes of one command (lines and literals, as the framer in
``nubo.mail.imap.parser`` collects them) and returns one of these or raises
``ParseError`` with the tag when the tag was readable. Whether a command is
allowed in the session's state is the server's business, not the parser's.

Mailbox names arrive decoded (modified UTF-7, RFC 3501 §5.1.3) with INBOX in
one spelling; LOGIN's strings and search strings are UTF-8 text.

# Limitation: extensions nubo does not offer are not parsed and get BAD:
# ESEARCH's SEARCH RETURN (RFC 4731), QRESYNC's SELECT parameter and
# VANISHED (RFC 7162 §3.2), BINARY and literal8 (RFC 3516), SETQUOTA
# (RFC 9208 §4.4), CREATE's USE (RFC 6154 §3). Each needs its arguments
# added here when the server offers it.
"""

from __future__ import annotations

import binascii
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.fetch import MAX_MODSEQ, FetchItem, read_changedsince, read_items
from nubo.mail.imap.lexer import Limits, Reader
from nubo.mail.imap.search import SearchKey, read_search
from nubo.mail.imap.sequence import SequenceSet

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_STORE_ITEM = re.compile(r"([+-]?)FLAGS(\.SILENT)?")
DEFAULT_LIMITS = Limits()


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


# --- the parser -------------------------------------------------------------


def parse_command(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, utf8: bool = False
) -> Command:
    """The command in ``data`` (no final CRLF); ParseError when malformed.

    Literals in ``data`` are written as on the wire: ``{n}`` or ``{n+}``,
    CRLF, n octets. ``utf8`` is set once the client enabled UTF8=ACCEPT.
    """
    reader = Reader(data, limits, utf8=utf8)
    try:
        tag = reader.tag()
    except ParseError:
        raise ParseError("missing or malformed tag") from None
    try:
        reader.sp()
        name = reader.atom()
        uid = name == "UID"
        if uid:
            reader.sp()
            name = reader.atom()
            parse = _UID_COMMANDS.get(name)
        else:
            parse = _COMMANDS.get(name)
        if parse is None:
            raise ParseError("unknown command")
        command = parse(reader, tag, uid)
        reader.end()
    except ParseError as error:
        error.tag = tag
        raise
    return command


Parse = Callable[[Reader, str, bool], Command]


def _no_arguments(kind: type[Command]) -> Parse:
    return lambda reader, tag, uid: kind(tag)


def _mailbox_only(kind: Callable[[str, str], Command]) -> Parse:
    def parse(reader: Reader, tag: str, uid: bool) -> Command:
        reader.sp()
        return kind(tag, reader.mailbox())

    return parse


def _authenticate(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    mechanism = reader.atom()
    if not reader.maybe_sp():
        return Authenticate(tag, mechanism)
    # RFC 4959 §3: "=" is an empty initial response.
    return Authenticate(tag, mechanism, sasl_base64(reader))


def sasl_base64(reader: Reader) -> bytes:
    """A base64 SASL response, or "=" for an empty one (RFC 4959 §3)."""
    found = _BASE64.match(reader.data, reader.pos)
    if found is None or not found.group():
        raise ParseError("expected base64")
    reader.pos = found.end()
    reader.count()
    if found.group() == b"=":
        return b""
    return decode_base64(found.group())


def decode_base64(octets: bytes) -> bytes:
    """Canonical base64 (RFC 4648 §4) only, so one response has one form."""
    try:
        data = binascii.a2b_base64(octets, strict_mode=True)
    except binascii.Error:
        raise ParseError("malformed base64") from None
    if binascii.b2a_base64(data, newline=False) != octets:
        raise ParseError("malformed base64")
    return data


def _login(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    userid = reader.text(reader.astring())
    reader.sp()
    return Login(tag, userid, reader.text(reader.astring()))


def _id(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    if reader.keyword(b"NIL"):
        return Id(tag, None)
    reader.open()
    fields: list[tuple[str, str | None]] = []
    # RFC 2971 §3.3 wants at least one pair; some clients send "()".
    while not reader.maybe_close():
        if fields:
            reader.sp()
        key = reader.string().decode("utf-8", "replace")
        reader.sp()
        value = reader.nstring()
        fields.append(
            (key, None if value is None else value.decode("utf-8", "replace"))
        )
    return Id(tag, tuple(fields))


def _enable(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    return Enable(tag, tuple(reader.spaced(reader.atom)))


def _select(kind: type[Select] | type[Examine]) -> Parse:
    def parse(reader: Reader, tag: str, uid: bool) -> Command:
        reader.sp()
        mailbox = reader.mailbox()
        condstore = False
        if reader.maybe_sp():
            # RFC 4466 §2.1 select-params; nubo knows CONDSTORE only.
            reader.open()
            if not reader.keyword(b"CONDSTORE"):
                raise ParseError("unknown SELECT parameter")
            reader.close()
            condstore = True
        return kind(tag, mailbox, condstore)

    return parse


def _rename(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    mailbox = reader.mailbox()
    reader.sp()
    return Rename(tag, mailbox, reader.mailbox())


_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


def _list(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    select_options: frozenset[str] = frozenset()
    if reader.peek() == 0x28:
        select_options = _options(reader, _SELECT_OPTIONS, "LIST selection option")
        # RFC 5258 §3.1: RECURSIVEMATCH alone is an error.
        if select_options == {"RECURSIVEMATCH"}:
            raise ParseError("RECURSIVEMATCH needs another selection option")
        reader.sp()
    reference = reader.list_mailbox()
    reader.sp()
    if reader.peek() == 0x28:
        patterns = reader.parenthesized(reader.list_mailbox)
    else:
        patterns = [reader.list_mailbox()]
    return_options: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()
    if reader.maybe_sp():
        if not reader.keyword(b"RETURN"):
            raise ParseError("expected RETURN")
        reader.sp()
        return_options, status_items = _return_options(reader)
    return List(
        tag, reference, tuple(patterns), select_options, return_options, status_items
    )


def _options(reader: Reader, known: frozenset[str], what: str) -> frozenset[str]:
    reader.open()
    options: list[str] = []
    while not reader.maybe_close():
        if options:
            reader.sp()
        option = reader.atom()
        if option not in known:
            raise ParseError(f"unknown {what}")
        options.append(option)
    return frozenset(options)


def _return_options(reader: Reader) -> tuple[frozenset[str], tuple[str, ...]]:
    reader.open()
    options: list[str] = []
    items: tuple[str, ...] = ()
    while not reader.maybe_close():
        if options:
            reader.sp()
        option = reader.atom()
        if option not in _RETURN_OPTIONS:
            raise ParseError("unknown LIST return option")
        if option == "STATUS":
            reader.sp()
            items = _status_items(reader)
        options.append(option)
    return frozenset(options), items


def _lsub(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    reference = reader.list_mailbox()
    reader.sp()
    return Lsub(tag, reference, reader.list_mailbox())


STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",  # RFC 9051 §6.3.11
        "SIZE",  # RFC 8438
        "HIGHESTMODSEQ",  # RFC 7162 §3.1.6
        "APPENDLIMIT",  # RFC 7889 §3
    }
)


def _status(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    mailbox = reader.mailbox()
    reader.sp()
    return Status(tag, mailbox, _status_items(reader))


def _status_items(reader: Reader) -> tuple[str, ...]:
    items = reader.parenthesized(reader.atom)
    if not STATUS_ITEMS.issuperset(items):
        raise ParseError("unknown STATUS item")
    return tuple(items)


def read_append_head(
    reader: Reader,
) -> tuple[str, tuple[str, ...], datetime.datetime | None]:
    """APPEND's arguments before the message (RFC 3501 §6.3.11), and the SP."""
    reader.sp()
    mailbox = reader.mailbox()
    reader.sp()
    flags: tuple[str, ...] = ()
    if reader.peek() == 0x28:
        flags = reader.flag_list()
        reader.sp()
    date_time = None
    if reader.peek() == 0x22:
        date_time = reader.date_time()
        reader.sp()
    return mailbox, flags, date_time


def _append(reader: Reader, tag: str, uid: bool) -> Command:
    mailbox, flags, date_time = read_append_head(reader)
    if reader.peek() != 0x7B:
        raise ParseError("APPEND needs the message as a literal")
    message = reader.literal()
    return Append(tag, mailbox, flags, date_time, len(message), message)


def _getquota(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    return GetQuota(tag, reader.text(reader.astring()))


def _expunge(reader: Reader, tag: str, uid: bool) -> Command:
    if not uid:
        return Expunge(tag)
    reader.sp()
    return Expunge(tag, reader.sequence_set())


def _search(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    charset, key = read_search(reader)
    return Search(tag, charset, key, uid)


def _fetch(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    sequence_set = reader.sequence_set()
    reader.sp()
    items = read_items(reader)
    changedsince = read_changedsince(reader) if reader.maybe_sp() else None
    return Fetch(tag, sequence_set, items, uid, changedsince)


def _store(reader: Reader, tag: str, uid: bool) -> Command:
    reader.sp()
    sequence_set = reader.sequence_set()
    reader.sp()
    unchangedsince = None
    if reader.peek() == 0x28:
        reader.open()
        if not reader.keyword(b"UNCHANGEDSINCE"):
            raise ParseError("unknown STORE modifier")
        reader.sp()
        unchangedsince = reader.number(MAX_MODSEQ)
        reader.close()
        reader.sp()
    item = _STORE_ITEM.fullmatch(reader.atom())
    if item is None:
        raise ParseError("expected FLAGS, +FLAGS or -FLAGS")
    mode, silent = StoreMode(item.group(1)), item.group(2) is not None
    reader.sp()
    if reader.peek() == 0x28:
        flags = reader.flag_list()
    else:
        flags = tuple(reader.spaced(reader.flag))
    return Store(tag, sequence_set, mode, flags, silent, uid, unchangedsince)


def _copy_or_move(kind: type[Copy] | type[Move]) -> Parse:
    def parse(reader: Reader, tag: str, uid: bool) -> Command:
        reader.sp()
        sequence_set = reader.sequence_set()
        reader.sp()
        return kind(tag, sequence_set, reader.mailbox(), uid)

    return parse


_COMMANDS: dict[str, Parse] = {
    "CAPABILITY": _no_arguments(Capability),
    "NOOP": _no_arguments(Noop),
    "LOGOUT": _no_arguments(Logout),
    "STARTTLS": _no_arguments(StartTLS),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ID": _id,
    "ENABLE": _enable,
    "IDLE": _no_arguments(Idle),
    "SELECT": _select(Select),
    "EXAMINE": _select(Examine),
    "CREATE": _mailbox_only(Create),
    "DELETE": _mailbox_only(Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _mailbox_only(Subscribe),
    "UNSUBSCRIBE": _mailbox_only(Unsubscribe),
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "NAMESPACE": _no_arguments(Namespace),
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _mailbox_only(GetQuotaRoot),
    "CHECK": _no_arguments(Check),
    "CLOSE": _no_arguments(Close),
    "UNSELECT": _no_arguments(Unselect),
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_or_move(Copy),
    "MOVE": _copy_or_move(Move),
}
_UID_COMMANDS = {
    name: _COMMANDS[name]
    for name in ("COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE")
}
