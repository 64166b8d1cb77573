"""Encoding of server responses (RFC 3501 §4, RFC 3501 §7).

Values become bytes here, in the one form the client's parser will read
back as the same value:

- ``astring``: an atom when the value is one (never NIL, which would read
  as nothing), else a string;
- ``string``: quoted, with ``\\`` before ``"`` and ``\\``, when every octet
  is printable 7-bit (or valid UTF-8 once the client enabled UTF8=ACCEPT,
  RFC 6855 §3); a literal ``{n}`` CRLF octets otherwise: CR and LF cannot
  be quoted at all, and other controls are safer in a literal. NUL cannot
  be sent even in a literal (RFC 3501 §4.3), so it becomes U+FFFD, as
  Dovecot does;
- ``mailbox``: modified UTF-7 (RFC 3501 §5.1.3) unless UTF8=ACCEPT;
- ``nstring``: NIL for None.

Lines: ``tagged``, ``untagged``, ``continuation``, and ``fetch`` for one
message's FETCH data. Response text never holds CR or LF, so no value can
end a line early and forge a response.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

from nubo.mail.imap import utf7
from nubo.mail.imap.lexer import ASTRING, ATOM
from nubo.mail.imap.sequence import NumberSet

NIL = b"NIL"
_QUOTABLE = re.compile(rb"[\x20-\x7e]*")
_QUOTABLE_UTF8 = re.compile(rb"[^\x00-\x1f\x7f]*")
_ESCAPE = re.compile(rb'(["\\])')
_LINE_BREAKS = re.compile(r"[\r\n\x00]+")
_MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec"


def _octets(value: str | bytes) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if b"\x00" in value:
        value = value.replace(b"\x00", "\ufffd".encode())
    return value


def literal(value: str | bytes) -> bytes:
    """A literal whatever the value: BODY[...] data is always sent so."""
    octets = _octets(value)
    return b"{%d}\r\n%s" % (len(octets), octets)


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """``string``: quoted when it can be, else a literal."""
    octets = _octets(value)
    if _QUOTABLE.fullmatch(octets) or (utf8 and _utf8_quotable(octets)):
        return b'"' + _ESCAPE.sub(rb"\\\1", octets) + b'"'
    return b"{%d}\r\n%s" % (len(octets), octets)


def _utf8_quotable(octets: bytes) -> bool:
    if not _QUOTABLE_UTF8.fullmatch(octets):
        return False
    try:
        octets.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    return NIL if value is None else string(value, utf8=utf8)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """``astring``: an atom when that reads back the same, else a string."""
    octets = _octets(value)
    if ASTRING.fullmatch(octets) and octets.upper() != NIL:
        return octets
    return string(octets, utf8=utf8)


def atom(value: str) -> bytes:
    """An atom the server chose (a flag, a keyword); checked, never guessed."""
    octets = value.encode("ascii")
    if not ATOM.fullmatch(octets):
        raise ValueError(f"not an IMAP atom: {value!r}")
    return octets


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name as LIST, STATUS and the like send it."""
    return astring(name if utf8 else utf7.encode(name), utf8=utf8)


def flags(names: Iterable[str]) -> bytes:
    """``flag-list``: "(\\Seen $Junk)"; flags are atoms, "\\" allowed first."""
    return b"(" + b" ".join(name.encode("ascii") for name in names) + b")"


def paren(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def date_time(moment: datetime.datetime) -> bytes:
    """``date-time``: "17-Jul-1996 02:44:25 -0700" (RFC 3501 §9)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    month = _MONTHS[3 * moment.month - 3 : 3 * moment.month]
    # Not strftime's %Y: glibc writes the year 1 as "1", not "0001".
    stamp = f"{moment.day:02d}-{month}-{moment.year:04d} {moment:%H:%M:%S %z}"
    return b'"' + stamp.encode("ascii") + b'"'


def text(value: str) -> bytes:
    """Human-readable ``text``: one line, whatever the value held."""
    return _LINE_BREAKS.sub(" ", value).encode("utf-8")


# --- lines --------------------------------------------------------------------


def tagged(tag: str, status: str, message: str, code: str | None = None) -> bytes:
    """``tag OK [code] text`` (RFC 3501 §7.1)."""
    return b"%s %s\r\n" % (tag.encode("ascii"), _resp_text(status, message, code))


def untagged_status(status: str, message: str, code: str | None = None) -> bytes:
    """``* OK [code] text``, ``* BYE ...``, ``* PREAUTH ...`` (RFC 3501 §7.1)."""
    return b"* %s\r\n" % _resp_text(status, message, code)


def untagged(*parts: bytes) -> bytes:
    """``* `` and the parts separated by spaces: "* 3 EXISTS", "* SEARCH 2"."""
    return b"* " + b" ".join(parts) + b"\r\n"


def continuation(message: str = "Ready") -> bytes:
    """``+ text``: go on sending (RFC 3501 §7.5)."""
    return b"+ " + text(message) + b"\r\n"


def _resp_text(status: str, message: str, code: str | None) -> bytes:
    words = status.encode("ascii")
    if code:
        words += b" [" + text(code).replace(b"]", b"") + b"]"
    return words + b" " + text(message)


def fetch(number: int, items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``* n FETCH (NAME value ...)`` from encoded (name, value) pairs."""
    body = b" ".join(name + b" " + value for name, value in items)
    return b"* %d FETCH (%s)\r\n" % (number, body)


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SEARCH 2 5 9`` (RFC 3501 §7.2.5), with "(MODSEQ n)" (RFC 7162)."""
    line = b" ".join([b"* SEARCH", *(b"%d" % number for number in numbers)])
    if modseq is not None:
        line += b" (MODSEQ %d)" % modseq
    return line + b"\r\n"


def number_set(numbers: Iterable[int]) -> bytes:
    """A compact set ("3:5,9") for COPYUID and APPENDUID (RFC 4315 §3)."""
    return str(NumberSet.of(numbers)).encode("ascii")
