"""Tokens of one IMAP command (RFC 3501 §4, RFC 3501 §9).

A ``Reader`` walks the bytes of one whole command: its lines and the
literals the framer in ``nubo.mail.imap.parser`` has collected, each literal
written as ``{n}`` or ``{n+}``, CRLF, then its n octets. Each method reads
one grammar element at the cursor and raises ``ParseError`` when the bytes
are not that element, so a command parser reads as the RFC's ABNF.

Lenient where real clients are: quoted strings may hold 8-bit octets
(UTF-8 search strings are common without UTF8=ACCEPT), a one-digit day in a
date-time needs no leading space, lowercase keywords are fine. Strict where
looseness would give one thing two meanings: mailbox names (strict modified
UTF-7), numbers (no sign, no leading zero in nz-number, 32-bit).

Bounded: ``Limits.max_depth`` parenthesis levels (and SEARCH nesting) and
``Limits.max_args`` tokens per command, so no input can exhaust the stack
or build a huge object from a short line.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from nubo.mail.imap import utf7
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.sequence import SequenceSet

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may make the parser hold."""

    max_line: int = 64 * 1024
    """Octets of one line, not counting literals."""
    max_literal: int = 64 * 1024
    """Octets of a literal other than APPEND's message."""
    max_command: int = 1024 * 1024
    """Octets of a whole command held in memory: lines plus literals."""
    max_append: int = 64 * 1024 * 1024
    """Octets of an APPEND message; larger gets NO [TOOBIG] (RFC 7889)."""
    max_depth: int = 100
    """Nesting of parenthesized lists and of SEARCH's OR, NOT and (...)."""
    max_args: int = 2000
    """Tokens in one command."""


DEFAULT_LIMITS = Limits()


# RFC 3501 §9: atom-specials are ( ) { SP CTL % * " \ ]; CHAR is 7-bit.
ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
ASTRING = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')  # atom plus "]"
_LIST_MAILBOX = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')  # plus % *
_TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')  # astring minus "+"
_NUMBER = re.compile(rb"[0-9]+")
_SEQUENCE = re.compile(rb"[0-9:*,]+")
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_LITERAL = re.compile(rb"\{([0-9]{1,20})(\+?)\}\r\n")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    rb'" ?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1
    )
}
# RFC 3501 §2.3.2: system flags are case-insensitive; keep one spelling.
_SYSTEM_FLAGS = {
    flag.upper(): flag
    for flag in (
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Seen",
        "\\Draft",
        "\\Recent",
    )
}
_SP, _OPEN, _CLOSE, _QUOTE, _BRACE = 0x20, 0x28, 0x29, 0x22, 0x7B


def tag_of(line: bytes | bytearray) -> str | None:
    """The tag a line starts with, to answer even a malformed command."""
    found = _TAG.match(line)
    if found is None or (found.end() < len(line) and line[found.end()] != _SP):
        return None
    return found.group().decode("ascii")


class Reader:
    """A cursor over one command's bytes, reading RFC 3501 §9 elements."""

    __slots__ = ("args", "data", "depth", "limits", "pos", "utf8")

    def __init__(self, data: bytes, limits: Limits, *, utf8: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.limits = limits
        self.utf8 = utf8
        self.depth = 0
        self.args = 0

    # --- structure ---------------------------------------------------------

    def peek(self) -> int:
        """The next octet, or -1 at the end."""
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def end(self) -> None:
        if self.pos < len(self.data):
            raise ParseError("unexpected characters at the end of the command")

    def sp(self) -> None:
        if self.peek() != _SP:
            what = "the end of the command" if self.at_end() else "a character"
            raise ParseError(f"expected a space, found {what}")
        self.pos += 1

    def maybe_sp(self) -> bool:
        """Read a space if one comes next: there are more arguments."""
        if self.peek() == _SP:
            self.pos += 1
            return True
        return False

    def open(self) -> None:
        """Read "(", one level deeper."""
        if self.peek() != _OPEN:
            raise ParseError("expected (")
        self.pos += 1
        self.enter()

    def close(self) -> None:
        if self.peek() != _CLOSE:
            raise ParseError("expected )")
        self.pos += 1
        self.depth -= 1

    def maybe_close(self) -> bool:
        if self.peek() == _CLOSE:
            self.close()
            return True
        return False

    def spaced(self, read: Callable[[], T]) -> list[T]:
        """``x *(SP x)``: one or more elements read by ``read``."""
        items = [read()]
        while self.maybe_sp():
            items.append(read())
        return items

    def parenthesized(self, read: Callable[[], T]) -> list[T]:
        """``"(" x *(SP x) ")"``: one or more elements in parentheses."""
        self.open()
        items = self.spaced(read)
        self.close()
        return items

    def enter(self) -> None:
        """One nesting level more (a list, or SEARCH's OR and NOT)."""
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise ParseError("command nested too deeply")

    def leave(self) -> None:
        self.depth -= 1

    def count(self) -> None:
        """One more token; ParseError past ``Limits.max_args``."""
        self.args += 1
        if self.args > self.limits.max_args:
            raise ParseError("too many arguments")

    def keyword(self, word: bytes) -> bool:
        """Read the atom ``word`` (upper case) if it comes next."""
        end = self.pos + len(word)
        if self.data[self.pos : end].upper() != word:
            return False
        if end < len(self.data) and ATOM.match(self.data, end, end + 1):
            return False
        self.pos = end
        self.count()
        return True

    # --- atoms and numbers -------------------------------------------------

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        found = pattern.match(self.data, self.pos)
        if found is None:
            raise ParseError(f"expected {what}")
        self.pos = found.end()
        self.count()
        return found.group()

    def atom(self) -> str:
        """An atom, upper-cased: command names and keywords."""
        return self._match(ATOM, "an atom").decode("ascii").upper()

    def raw_atom(self) -> bytes:
        return self._match(ATOM, "an atom")

    def tag(self) -> str:
        return self._match(_TAG, "a tag").decode("ascii")

    def number(self, limit: int = 0xFFFFFFFF) -> int:
        """``number`` (32-bit unsigned), or up to ``limit`` (mod-sequences)."""
        digits = self._match(_NUMBER, "a number")
        if len(digits) > 20 or int(digits) > limit:
            raise ParseError("number out of range")
        return int(digits)

    def nz_number(self, limit: int = 0xFFFFFFFF) -> int:
        number = self.number(limit)
        if number == 0:
            raise ParseError("expected a number above zero")
        return number

    def sequence_set(self) -> SequenceSet:
        found = _SEQUENCE.match(self.data, self.pos)
        if found is None:
            raise ParseError("expected a sequence set")
        self.pos = found.end()
        self.count()
        return SequenceSet.parse(found.group())

    # --- strings -----------------------------------------------------------

    def string(self) -> bytes:
        """``string``: a quoted string or a literal, as octets."""
        first = self.peek()
        if first == _QUOTE:
            return self.quoted()
        if first == _BRACE:
            return self.literal()
        raise ParseError("expected a string")

    def quoted(self) -> bytes:
        found = _QUOTED.match(self.data, self.pos)
        if found is None:
            raise ParseError("malformed quoted string")
        self.pos = found.end()
        self.count()
        body = found.group(1)
        if b"\\" in body:
            body = re.sub(rb"\\(.)", rb"\1", body)
        return body

    def literal(self) -> bytes:
        found = _LITERAL.match(self.data, self.pos)
        if found is None:
            raise ParseError("malformed literal")
        start = found.end()
        end = start + int(found.group(1))
        if end > len(self.data):
            raise ParseError("literal shorter than announced")
        self.pos = end
        self.count()
        return self.data[start:end]

    def astring(self) -> bytes:
        """``astring``: an atom (``]`` allowed) or a string."""
        if self.peek() in (_QUOTE, _BRACE):
            return self.string()
        return self._match(ASTRING, "a string")

    def nstring(self) -> bytes | None:
        if self.keyword(b"NIL"):
            return None
        return self.string()

    def text(self, raw: bytes) -> str:
        """Octets of a string as text: UTF-8 (RFC 6855), else BAD."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("string is not valid UTF-8") from None

    # --- mailboxes and flags -----------------------------------------------

    def mailbox(self) -> str:
        """``mailbox``: modified UTF-7 (UTF-8 after ENABLE UTF8=ACCEPT)."""
        name = self._mailbox_name(self.astring())
        # RFC 3501 §5.1: INBOX is case-insensitive.
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        """``list-mailbox``: a mailbox name that may hold % and *."""
        if self.peek() in (_QUOTE, _BRACE):
            return self._mailbox_name(self.string())
        return self._mailbox_name(self._match(_LIST_MAILBOX, "a mailbox pattern"))

    def _mailbox_name(self, raw: bytes) -> str:
        if self.utf8:  # RFC 6855 §3: UTF-8 names, "&" is just "&"
            return self.text(raw)
        return utf7.decode(raw)

    def flag(self) -> str:
        """``flag``: a system flag (one spelling), ``\\ext`` or a keyword."""
        backslash = self.peek() == 0x5C
        if backslash:
            self.pos += 1
        name = self._match(ATOM, "a flag").decode("ascii")
        if not backslash:
            return name
        flag = "\\" + name
        return _SYSTEM_FLAGS.get(flag.upper(), flag)

    def flag_list(self) -> tuple[str, ...]:
        """``flag-list``: "(" [flag *(SP flag)] ")"."""
        if self.data.startswith(b"()", self.pos):
            self.pos += 2
            return ()
        return tuple(self.parenthesized(self.flag))

    # --- dates -------------------------------------------------------------

    def date(self) -> datetime.date:
        """``date``: 1-Feb-1994, bare or quoted (RFC 3501 §9)."""
        quoted = self.peek() == _QUOTE
        start = self.pos + quoted
        found = _DATE.match(self.data, start)
        if found is None or (
            quoted and self.data[found.end() : found.end() + 1] != b'"'
        ):
            raise ParseError("expected a date like 1-Feb-1994")
        self.pos = found.end() + quoted
        self.count()
        day, month, year = found.groups()
        try:
            return datetime.date(int(year), _month(month), int(day))
        except ValueError:
            raise ParseError("no such date") from None

    def date_time(self) -> datetime.datetime:
        """``date-time``: "17-Jul-1996 02:44:25 -0700" (RFC 3501 §9)."""
        found = _DATE_TIME.match(self.data, self.pos)
        if found is None:
            raise ParseError('expected a date-time like "17-Jul-1996 02:44:25 -0700"')
        self.pos = found.end()
        self.count()
        day, month, year, hour, minute, second, sign, zh, zm = found.groups()
        if int(zm) > 59:
            raise ParseError("no such time zone")
        try:
            offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
            zone = datetime.timezone(-offset if sign == b"-" else offset)
            moment = datetime.datetime(
                int(year),
                _month(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=zone,
            )
        except ValueError:
            raise ParseError("no such date-time") from None
        try:
            # Stored in UTC: 1-Jan-0001 00:00:00 +1400 has no UTC time.
            moment.astimezone(datetime.UTC)
        except OverflowError:
            raise ParseError("date-time out of range") from None
        return moment


def _month(name: bytes) -> int:
    number = _MONTHS.get(name.upper())
    if number is None:
        raise ParseError("no such month")
    return number
