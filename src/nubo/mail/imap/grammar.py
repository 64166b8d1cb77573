"""The syntax of each command (RFC 3501 §9), from bytes to a ``Command``.

``parse_command`` reads the bytes of one whole command (its lines and
literals, as the framer in ``nubo.mail.imap.parser`` collects them) and
returns one of the dataclasses of ``nubo.mail.imap.commands``, or raises
``ParseError`` carrying the tag when the tag was readable. One small reader
per command, looked up by name; UID variants share their command's reader.

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

from nubo.mail.imap.commands import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    Delete,
    Enable,
    Examine,
    Expunge,
    Fetch,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    Rename,
    Search,
    Select,
    StartTLS,
    Status,
    Store,
    StoreMode,
    Subscribe,
    Unselect,
    Unsubscribe,
)
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.fetch import MAX_MODSEQ, read_changedsince, read_items
from nubo.mail.imap.lexer import DEFAULT_LIMITS, Limits, Reader
from nubo.mail.imap.search import read_search

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_STORE_ITEM = re.compile(r"([+-]?)FLAGS(\.SILENT)?")


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
