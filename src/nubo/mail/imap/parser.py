"""The incremental IMAP command parser, with no I/O (RFC 3501 §2.2, §7.5).

A server feeds the bytes it reads and pulls events until there is none::

    parser = Parser(Limits(max_append=config.max_message_size))
    while data := await reader.read(65536):
        parser.feed(data)
        while (event := parser.next_event()) is not None:
            ...  # answer it; may call parser.cancel(), expect_done(), ...

Events, in the order the client's bytes produce them:

- a ``Command`` (``nubo.mail.imap.commands``): one whole command, literals
  included, parsed and typed.
- ``NeedContinuation(tag, size)``: a synchronizing literal ``{n}`` was
  announced (RFC 3501 §7.5); send "+ Ready" and keep feeding, or answer the
  command with NO/BAD and call ``cancel()``: the client then sends nothing
  more for it. Non-synchronizing literals ``{n+}`` (LITERAL+, RFC 7888) need
  no answer: their octets follow at once and are always read as data, never
  as commands (``../shared/realworld/IMAP-01_*``).
- ``AppendStart`` then ``AppendData`` chunks then the ``Append`` command
  (with ``message`` None): APPEND's message is streamed, never held whole,
  so the server can write it to a blob as it arrives. ``AppendStart`` comes
  before the ``NeedContinuation`` of a synchronizing literal, so the server
  can refuse (quota, APPENDLIMIT, TRYCREATE) before the client sends it.
  A ``Reject`` after ``AppendStart`` means: throw the message away.
- ``Reject(tag, text, code, status)``: answer ``tag BAD [code] text`` (or
  ``* BAD`` when ``tag`` is None) and go on; the parser has already skipped
  the rest of that command, literals included. ``fatal`` asks the server to
  close: the client announced a literal so large that its end cannot be
  found.
- ``Done`` after ``expect_done()`` (IDLE, RFC 2177), ``SaslResponse`` after
  ``expect_sasl()`` (AUTHENTICATE, RFC 3501 §6.2.2).

Bounds (``Limits``): a line without CRLF longer than ``max_line``, a literal
above ``max_literal`` (APPEND's message: ``max_append``, RFC 7889 TOOBIG),
a command above ``max_command`` octets, nesting and argument counts. The
buffer holds at most one line or literal beyond what the caller fed, so a
server that reads a bounded amount and drains events stays bounded.

A bare LF ends a line as CRLF does: clients that send it exist, and
IMAP, unlike SMTP DATA, has no dot-stuffing for it to smuggle past.
"""

from __future__ import annotations

import datetime
import re
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum

from nubo.mail.imap.commands import Append, Command
from nubo.mail.imap.errors import ParseError, Status
from nubo.mail.imap.grammar import decode_base64, parse_command, read_append_head
from nubo.mail.imap.lexer import DEFAULT_LIMITS, Limits, Reader, tag_of


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """The client waits for "+" before sending ``size`` octets."""

    tag: str | None
    size: int


@dataclass(frozen=True, slots=True)
class AppendStart:
    """APPEND's arguments; ``size`` octets of message follow as AppendData."""

    tag: str
    mailbox: str
    flags: tuple[str, ...]
    date_time: datetime.datetime | None
    size: int
    synchronizing: bool


@dataclass(frozen=True, slots=True)
class AppendData:
    """The next octets of the message of the last AppendStart."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Reject:
    """A command that cannot run: answer ``status`` with ``code`` and ``text``."""

    tag: str | None
    text: str
    code: str | None = None
    status: Status = "BAD"
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """The client ended IDLE (RFC 2177 §3). Any other line gives an
    untagged ``Reject``: the server answers it with the IDLE command's tag."""


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """A line of an AUTHENTICATE exchange, decoded; None: the client's "*"."""

    data: bytes | None

    def __repr__(self) -> str:  # it holds credentials
        return "SaslResponse(...)"


Event = (
    Command | NeedContinuation | AppendStart | AppendData | Reject | Done | SaslResponse
)


class _Mode(Enum):
    COMMAND = "command"
    IDLE = "idle"
    SASL = "sasl"


_ANNOUNCE = re.compile(rb"\{([0-9]+)(\+?)\}$")
_APPEND = re.compile(rb"[^ ]+ APPEND ", re.IGNORECASE)
_TAIL = 32  # octets of a skipped line kept to see a literal announced at its end
_MAX_TAG_ECHO = 1024  # a longer tag on a line too long gets an untagged BAD


class Parser:
    """Bytes in (``feed``), events out (``next_event``); see the module doc."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.utf8 = False
        """Set after ENABLE UTF8=ACCEPT (RFC 6855): mailbox names in UTF-8."""
        self._buf = bytearray()
        self._scanned = 0  # octets of _buf known to hold no LF
        self._ready: deque[Event] = deque()
        self._mode = _Mode.COMMAND
        self._cmd = bytearray()  # the command so far: lines and literals
        self._tag: str | None = None
        self._literal = 0  # octets still to copy into _cmd
        self._stream = 0  # octets of APPEND's message still to hand out
        self._discard = 0  # octets still to drop
        self._skipping = False  # dropping the rest of a rejected command
        self._append: AppendStart | None = None  # streamed, awaiting its CRLF

    # --- the interface ------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Add octets read from the client."""
        self._buf += data

    def next_event(self) -> Event | None:
        """The next event, or None until more octets are fed."""
        while True:
            if self._ready:
                return self._ready.popleft()
            if self._stream:
                return self._stream_chunk()
            if self._literal or self._discard:
                if not self._take_octets():
                    return None
                continue
            line = self._next_line()
            if line is None:
                if self._ready:
                    continue
                return None
            event = self._on_line(line)
            if event is not None:
                return event

    @property
    def buffered(self) -> int:
        """Octets held: unread input and the command collected so far."""
        return len(self._buf) + len(self._cmd)

    def cancel(self) -> None:
        """Forget the command whose ``NeedContinuation`` was answered with
        NO or BAD instead of "+": the client will not send that literal."""
        self._ready.clear()
        self._reset()

    def expect_done(self) -> None:
        """The next line ends IDLE: ``Done``, or a ``Reject`` for anything else."""
        self._mode = _Mode.IDLE

    def expect_sasl(self) -> None:
        """The next line answers an AUTHENTICATE challenge: ``SaslResponse``."""
        self._mode = _Mode.SASL

    # --- octets -------------------------------------------------------------

    def _stream_chunk(self) -> AppendData | None:
        if not self._buf:
            return None
        size = min(len(self._buf), self._stream)
        chunk = bytes(self._buf[:size])
        del self._buf[:size]
        self._stream -= size
        return AppendData(chunk)

    def _take_octets(self) -> bool:
        """Copy a literal into the command, or drop a rejected one."""
        wanted = self._literal or self._discard
        size = min(len(self._buf), wanted)
        if self._literal:
            self._cmd += self._buf[:size]
            self._literal -= size
        else:
            self._discard -= size
        del self._buf[:size]
        self._scanned = 0
        return size == wanted

    def _next_line(self) -> bytes | None:
        end = self._buf.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buf)
            if self._skipping:
                # Keep only the tail, where a literal may be announced.
                del self._buf[:-_TAIL]
                self._scanned = len(self._buf)
            elif len(self._buf) > self.limits.max_line:
                self._ready.append(
                    self._reject(self._tag_of(self._buf), "line too long")
                )
                self._skipping = True
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.limits.max_line and not self._skipping:
            self._ready.append(self._reject(self._tag_of(line), "line too long"))
            self._skip_literal(line)
            return None
        return line

    def _tag_of(self, line: bytes | bytearray) -> str | None:
        """The tag a line too long is refused with: none for a line that
        answers IDLE or AUTHENTICATE, whose command's tag the session has,
        nor for one whose "tag" is itself too long to send back."""
        if self._mode is not _Mode.COMMAND:
            return None
        tag = self._tag or tag_of(line[:_MAX_TAG_ECHO])
        return tag if tag is not None and len(tag) < _MAX_TAG_ECHO else None

    # --- lines --------------------------------------------------------------

    def _on_line(self, line: bytes) -> Event | None:
        if self._skipping:
            self._skipping = False
            self._skip_literal(line)
            return None
        if self._mode is not _Mode.COMMAND:
            return self._on_mode_line(line)
        if self._append is not None:
            return self._end_append(line)
        if not self._cmd:
            if not line:
                return None  # a stray CRLF between commands harms nobody
            self._tag = tag_of(line)
        if len(self._cmd) + len(line) > self.limits.max_command:
            return self._reject_line(line, "command too long", code="TOOBIG")
        announced = _ANNOUNCE.search(line) if line.endswith(b"}") else None
        if announced is None:
            self._cmd += line
            return self._parse()
        if self._tag is None:
            # Refused anyway: neither ask for the literal nor hold it.
            return self._reject_line(line, "missing or malformed tag")
        brace = len(self._cmd) + announced.start()
        self._cmd += line
        self._cmd += b"\r\n"
        digits, plus = announced.groups()
        if len(digits) > 20:
            return self._reject_line(
                line, "literal too large", code="TOOBIG", fatal=True
            )
        return self._on_literal(brace, int(digits), synchronizing=not plus)

    def _on_literal(
        self, brace: int, size: int, *, synchronizing: bool
    ) -> Event | None:
        head = self._append_head(brace)
        if head is not None:
            return self._on_message(head, size, synchronizing)
        limit = min(self.limits.max_literal, self.limits.max_command - len(self._cmd))
        if size > limit:
            return self._reject_literal(size, synchronizing, "literal too large", "BAD")
        self._literal = size
        return NeedContinuation(self._tag, size) if synchronizing else None

    def _on_message(
        self, head: AppendStart, size: int, synchronizing: bool
    ) -> Event | None:
        if size > self.limits.max_append:
            return self._reject_literal(size, synchronizing, "message too large", "NO")
        self._cmd.clear()
        self._append = head = replace(head, size=size, synchronizing=synchronizing)
        self._stream = size
        if synchronizing:
            self._ready.append(NeedContinuation(head.tag, size))
        return head

    def _append_head(self, brace: int) -> AppendStart | None:
        """APPEND's arguments when the literal at ``brace`` is its message;
        its size is filled in by the caller."""
        if self._tag is None or not _APPEND.match(self._cmd):
            return None
        reader = Reader(bytes(self._cmd[:brace]), self.limits, utf8=self.utf8)
        try:
            reader.tag()
            reader.sp()
            reader.atom()
            mailbox, flags, date_time = read_append_head(reader)
            reader.end()
        except ParseError:
            # Not yet at the message (the mailbox is this literal), or not
            # APPEND's syntax: the whole command's parse will say which.
            return None
        return AppendStart(self._tag, mailbox, flags, date_time, 0, False)

    def _end_append(self, line: bytes) -> Event:
        head, self._append = self._append, None
        assert head is not None
        if line:
            # Limitation: MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) are
            # not offered, so a second message in one APPEND is refused.
            self._tag = head.tag
            return self._reject_line(line, "expected the end of APPEND")
        self._reset()
        return Append(head.tag, head.mailbox, head.flags, head.date_time, head.size)

    def _parse(self) -> Event:
        data = bytes(self._cmd)
        self._reset()
        try:
            return parse_command(data, self.limits, utf8=self.utf8)
        except ParseError as error:
            return Reject(error.tag, error.text, error.code, error.status)

    def _on_mode_line(self, line: bytes) -> Event:
        mode, self._mode = self._mode, _Mode.COMMAND
        if mode is _Mode.IDLE:
            if line.upper() == b"DONE":
                return Done()
            return self._reject_line(line, "expected DONE")
        if line == b"*":
            return SaslResponse(None)
        try:
            return SaslResponse(decode_base64(line))
        except ParseError as error:
            return self._reject_line(line, error.text)

    # --- refusals -----------------------------------------------------------

    def _reject(
        self,
        tag: str | None,
        text: str,
        *,
        code: str | None = None,
        status: Status = "BAD",
        fatal: bool = False,
    ) -> Reject:
        self._reset()
        return Reject(tag, text, code, status, fatal)

    def _reject_line(
        self, line: bytes, text: str, *, code: str | None = None, fatal: bool = False
    ) -> Reject:
        """Refuse the command this line belongs to, and skip what it announced."""
        reject = self._reject(self._tag, text, code=code, fatal=fatal)
        if not fatal:
            self._skip_literal(line)
        return reject

    def _reject_literal(
        self, size: int, synchronizing: bool, text: str, status: Status
    ) -> Reject:
        reject = self._reject(self._tag, text, code="TOOBIG", status=status)
        if not synchronizing:
            # RFC 7888 §4: the octets come anyway; read them as data.
            self._discard = size
            self._skipping = True
        return reject

    def _skip_literal(self, line: bytes) -> None:
        """After a refused line: drop the non-synchronizing literal it
        announces and the rest of its command. A synchronizing one will not
        come, since the refusal answers the command."""
        announced = _ANNOUNCE.search(line) if line.endswith(b"}") else None
        if announced is None or not announced.group(2):
            return
        if len(announced.group(1)) > 20:
            self._ready.append(
                Reject(None, "literal too large", "TOOBIG", "BAD", fatal=True)
            )
            return
        self._discard = int(announced.group(1))
        self._skipping = True

    def _reset(self) -> None:
        # A refusal also ends IDLE or AUTHENTICATE: the next line is a command.
        self._mode = _Mode.COMMAND
        self._cmd.clear()
        self._tag = None
        self._literal = 0
        self._stream = 0
        self._append = None
