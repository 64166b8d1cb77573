"""Structured MIME field values, parameters and encoded-words.

Header values arrive here as ``str`` holding one character per octet
(latin-1), so the exact octets can be given back to IMAP clients.

- Content-Type and Content-Disposition: ``type/subtype *(";" parameter)``
  (RFC 2045 §5.1, RFC 2183 §2), with comments skipped and junk between
  parameters tolerated. A Content-Type that does not parse counts as
  ``text/plain; charset=us-ascii`` (RFC 2045 §5.2).
- Parameters split over several sections (``name*0``, ``name*1``) are joined
  (RFC 2231 §3). A joined parameter that carries a charset keeps the RFC 2231
  form, ``name*`` with ``charset'language'%XX`` text, which is what IMAP
  clients decode themselves (Dovecot answers the same); ``param_text`` gives
  the decoded text.
- ``decode_text`` turns a header value into display text: encoded-words
  (RFC 2047 §6) decoded, adjacent ones joined (and decoded together when
  they share a charset), raw 8-bit octets read as UTF-8 where they are
  valid UTF-8 and as Windows-1252 elsewhere. It never raises.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import urllib.parse
from email import quoprimime

Params = tuple[tuple[str, str], ...]

# Parameters read from one field at most (RFC 2231 sections counted one by
# one): real fields have a handful, and a field of millions would cost
# time at delivery and room in every BODYSTRUCTURE.
MAX_PARAMS = 100

# RFC 2045 §5.1: tspecials, the octets that end a token.
_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
_SPACE = frozenset(" \t\r\n")

# Runs of octets the readers below step over at once, so that a long value
# costs one regular-expression match, not one Python step per octet.
_SPACE_RUN = re.compile(r"[ \t\r\n]*")
_TOKEN_RUN = re.compile(r'[^()<>@,;:\\"/\[\]?=\x00-\x20\x7f]*')
_COMMENT_RUN = re.compile(r"[^()\\]*")
_QUOTED_RUN = re.compile(r'[^"\\\r\n]*')
_VALUE_RUN = re.compile(r"[^; \t\r\n]*")
_LANGUAGE_RUN = re.compile(r"[^,( \t\r\n]*")
_JUNK_RUN = {stop: re.compile(f'[^"(\\{stop}]*') for stop in ";>"}


_TOKEN = re.compile(r'[^()<>@,;:\\"/\[\]?=\x00-\x20\x7f-\U0010ffff]+')


def is_token(text: str) -> bool:
    """True for a non-empty RFC 2045 §5.1 token."""
    return _TOKEN.fullmatch(text) is not None


class FieldReader:
    """A cursor over a structured field value that skips CFWS."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip_cfws(self) -> None:
        text = self.text
        while True:
            self.skip_space()
            if not text.startswith("(", self.pos):
                return
            self.comment()

    def skip_space(self) -> None:
        if self.text[self.pos : self.pos + 1] in _SPACE:  # "" is not in it
            self.pos = _run(_SPACE_RUN, self.text, self.pos)

    def comment(self) -> str:
        """Read a comment at "(" (nested, with quoted-pairs); return its text.
        An unclosed comment runs to the end."""
        text, n = self.text, len(self.text)
        depth, out = 0, []
        while self.pos < n:
            run_end = _run(_COMMENT_RUN, text, self.pos)
            if run_end > self.pos:
                out.append(text[self.pos : run_end])
                self.pos = run_end
                continue
            ch = text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < n:
                out.append(text[self.pos])
                self.pos += 1
            elif ch == "(":
                if depth:
                    out.append(ch)
                depth += 1
            elif ch == ")":
                depth -= 1
                if not depth:
                    break
                out.append(ch)
            else:
                out.append(ch)
        return "".join(out)

    def token(self) -> str:
        start = self.pos
        self.pos = _run(_TOKEN_RUN, self.text, start)
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """Read a quoted-string at '"'; return its content without quotes.
        CR and LF (folding) are dropped; an unclosed one runs to the end."""
        text, n = self.text, len(self.text)
        self.pos += 1
        out = []
        while self.pos < n:
            run_end = _run(_QUOTED_RUN, text, self.pos)
            out.append(text[self.pos : run_end])
            if run_end >= n:
                self.pos = n
                break
            ch = text[run_end]
            self.pos = run_end + 1
            if ch == "\\" and self.pos < n:
                out.append(text[self.pos])
                self.pos += 1
            elif ch == '"':
                break
            elif ch == "\\":
                out.append(ch)
        return "".join(out)

    def skip_past(self, stop: str) -> None:
        """Move past the next ``stop`` (";" or ">") outside quoted strings and
        comments, or to the end: "; b=1" in ``a/b (c; b=1); d=2`` is a
        comment."""
        text, n, junk = self.text, len(self.text), _JUNK_RUN[stop]
        while self.pos < n:
            self.pos = _run(junk, text, self.pos)
            ch = self.peek()
            if ch == '"':
                self.quoted()
            elif ch == "(":
                self.comment()
            elif ch:
                self.pos += 1
                return


def _run(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """The end of the run of ``pattern`` (which matches the empty string)
    at ``pos``."""
    match = pattern.match(text, pos)
    return pos if match is None else match.end()


def parse_content_type(value: str) -> tuple[str, str, Params] | None:
    """``type/subtype; params`` lowercased (params keep their values), or
    None when the value is not a valid RFC 2045 §5.1 Content-Type."""
    reader = FieldReader(value)
    reader.skip_cfws()
    main = reader.token()
    reader.skip_cfws()
    if reader.peek() != "/":
        return None
    reader.pos += 1
    reader.skip_cfws()
    sub = reader.token()
    if not (is_token(main) and is_token(sub)):
        return None
    return main.lower(), sub.lower(), _parameters(reader)


def parse_disposition(value: str) -> tuple[str, Params] | None:
    """``disposition-type; params`` (RFC 2183 §2), or None without a type."""
    reader = FieldReader(value)
    reader.skip_cfws()
    kind = reader.token()
    if not is_token(kind):
        return None
    return kind.lower(), _parameters(reader)


def parse_token(value: str) -> str | None:
    """The single token of a field like Content-Transfer-Encoding, lowercase."""
    reader = FieldReader(value)
    reader.skip_cfws()
    token = reader.token()
    return token.lower() if is_token(token) else None


def parse_language(value: str) -> tuple[str, ...]:
    """Content-Language tags (RFC 3282 §2), a comma-separated list."""
    reader = FieldReader(value)
    tags = []
    while True:
        reader.skip_cfws()
        start = reader.pos
        reader.pos = _run(_LANGUAGE_RUN, value, start)
        if reader.pos > start:
            tags.append(value[start : reader.pos])
        reader.skip_cfws()
        if reader.peek() != ",":
            if reader.pos >= len(value):
                return tuple(tags)
            reader.pos += 1  # junk: step over it
        else:
            reader.pos += 1


def _parameters(reader: FieldReader) -> Params:
    """Read ``*(";" attribute "=" value)`` leniently, then join RFC 2231
    sections."""
    raw: list[tuple[str, str]] = []
    while len(raw) < MAX_PARAMS:
        reader.skip_past(";")
        if reader.pos >= len(reader.text):
            break
        reader.skip_cfws()
        name = reader.token()
        reader.skip_cfws()
        if not name or reader.peek() != "=":
            continue
        reader.pos += 1
        reader.skip_cfws()
        if reader.peek() == '"':
            raw.append((name.lower(), reader.quoted()))
        else:
            # Leniently up to ";" or space: unquoted values with tspecials
            # ("boundary=----=_Part_1") are common.
            start = reader.pos
            reader.pos = _run(_VALUE_RUN, reader.text, start)
            raw.append((name.lower(), reader.text[start : reader.pos]))
    return _join_sections(raw) if any("*" in name for name, _ in raw) else tuple(raw)


_SECTION = re.compile(r"^(?P<name>[^*]+)\*(?P<n>[0-9]+)(?P<ext>\*?)$")


def _join_sections(raw: list[tuple[str, str]]) -> Params:
    """Join RFC 2231 §3 continuations ``name*0``, ``name*1*`` in section order.

    The joined value takes the RFC 2231 §4 form (``name*``) when any section
    is extended; plain sections joined into it are percent-encoded, and
    when the first section is plain the value gets an empty charset and
    language (``''``), since only the first section may carry them.
    """
    out: list[tuple[str, str | None]] = []  # None: the joined sections go here
    groups: dict[str, list[tuple[int, bool, str]]] = {}
    for name, value in raw:
        match = _SECTION.match(name)
        if match is None:
            out.append((name, value))
            continue
        base = match["name"]
        if base not in groups:
            groups[base] = []
            out.append((base, None))
        groups[base].append((int(match["n"]), bool(match["ext"]), value))
    joined: list[tuple[str, str]] = []
    for name, plain in out:
        if plain is not None:
            joined.append((name, plain))
            continue
        sections = sorted(groups[name], key=lambda section: section[0])
        if any(ext for _, ext, _ in sections):
            text = "".join(
                part if ext else urllib.parse.quote(part, safe="", encoding="latin-1")
                for _, ext, part in sections
            )
            prefix = "" if sections[0][1] else "''"
            joined.append((name + "*", prefix + text))
        else:
            joined.append((name, "".join(part for _, _, part in sections)))
    return tuple(joined)


def param_value(params: Params, name: str) -> str | None:
    """The raw value of the first parameter ``name`` (or ``name*``)."""
    for key, value in params:
        if key == name or key == name + "*":
            return value
    return None


def param_text(params: Params, name: str) -> str | None:
    """The decoded text of parameter ``name``: RFC 2231 §4 for ``name*``,
    else RFC 2047 encoded-words and raw octets as ``decode_text`` reads them."""
    for key, value in params:
        if key == name + "*":
            return _decode_2231(value)
        if key == name:
            return decode_text(value)
    return None


def _decode_2231(value: str) -> str:
    charset, quote, rest = value.partition("'")
    if not quote:
        return decode_text(value)
    _language, _, encoded = rest.partition("'")
    octets = urllib.parse.unquote_to_bytes(encoded)
    return _decode_octets(octets, charset)


# RFC 2047 §2: =?charset?encoding?encoded-text?=, charset may carry *language.
_ENCODED_WORD = re.compile(
    r"=\?(?P<charset>[^?\s]+)\?(?P<enc>[QqBb])\?(?P<text>[^?\s]*)\?="
)
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]*")


def decode_text(value: str) -> str:
    """Header text for display or search (RFC 2047 §6), never raising.

    Adjacent encoded-words in one charset are decoded together: RFC 2047 §5
    wants each to hold whole characters, but mailers split a UTF-8
    character across two, and readers (Dovecot among them) join them.
    """
    if "=?" not in value:
        return _decode_raw(value)
    out: list[str] = []
    pending = bytearray()  # octets of adjacent words in ``charset``
    charset = ""
    pos = 0
    decoded = False  # the word before the gap was decoded
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        if not (decoded and _is_space(gap)):
            out.append(_decode_octets(bytes(pending), charset))
            pending.clear()
            out.append(_decode_raw(gap))
        word_charset = match["charset"].partition("*")[0]
        octets = _word_octets(match["enc"], match["text"])
        if octets is None or word_charset.lower() != charset.lower():
            out.append(_decode_octets(bytes(pending), charset))
            pending.clear()
            charset = word_charset
        if octets is None:
            out.append(match.group())  # not decodable: as written
        else:
            pending += octets
        decoded = octets is not None
        pos = match.end()
    out.append(_decode_octets(bytes(pending), charset))
    out.append(_decode_raw(value[pos:]))
    return "".join(out)


def _is_space(text: str) -> bool:
    return _BETWEEN_WORDS.fullmatch(text) is not None


def _word_octets(encoding: str, text: str) -> bytes | None:
    """The octets of an encoded-word's text (RFC 2047 §4), or None."""
    if encoding in "Bb":
        data = text.encode("latin-1", "replace")
        try:
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return None
    return quoprimime.header_decode(text).encode("latin-1", "replace")


def _decode_octets(octets: bytes, charset: str) -> str:
    try:
        codec = codecs.lookup(charset.strip().lower() or "us-ascii").name
    except LookupError:
        return _decode_raw(octets.decode("latin-1"))
    if codec == "ascii":
        codec = "utf-8"  # mislabelled 8-bit text is most often UTF-8
    try:
        return octets.decode(codec, "replace")
    except (LookupError, ValueError):
        return octets.decode("latin-1")


# Octets that are no UTF-8, as the surrogateescape error handler gives them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]+")


def _decode_raw(text: str) -> str:
    """Raw header octets (latin-1 str) as text: UTF-8 where valid, the other
    octets as Windows-1252, so that a field mixing both ("caf\xc3\xa9 and
    caf\xe9") reads right in both places."""
    if text.isascii():
        return text
    decoded = text.encode("latin-1").decode("utf-8", "surrogateescape")
    return _NOT_UTF8.sub(_cp1252, decoded)


def _cp1252(match: re.Match[str]) -> str:
    octets = bytes(ord(ch) - 0xDC00 for ch in match.group())
    return octets.decode("cp1252", "replace")
