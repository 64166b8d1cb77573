"""The text SEARCH BODY and TEXT look in (RFC 3501 §6.4.4), from a message's bytes.

The body is not indexed: for BODY and TEXT the mailstore reads the spans
of a candidate message that ``needed_spans`` names and this module turns
them into text, with no I/O. Every text/* part is undone from its
Content-Transfer-Encoding (base64, quoted-printable; RFC 2045 §6) and
decoded from its charset (RFC 2046 §4.1.2); HTML loses its tags and
entities, so "caf&eacute;" is found as "café". The header of a
message/rfc822 part is body text of the message that holds it. Parts of
other types (images, PDFs) are neither searched nor held in memory, as
most servers do without a full-text index.

Header fields are decoded as the delivery-time index decodes them
(``nubo.mail.message.header_text``: RFC 2047 encoded-words, raw UTF-8 or
Windows-1252 octets), so a HEADER search of a field outside the index
agrees with one inside it. All text is lowercased: SEARCH is
case-insensitive.
"""

from __future__ import annotations

import binascii
import codecs
import html
import re
from functools import cached_property

from nubo.mail.message import MessageInfo, Part, header_text

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_TAG = re.compile(r"<[^>]*>")
_INVISIBLE = re.compile(r"<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


Span = tuple[int, int]
"""Octets ``start`` to ``end`` of a message."""


def needed_spans(info: MessageInfo, *, body: bool) -> list[Span]:
    """The spans of the message the search reads: the header, and with
    ``body`` the bodies of text parts and the headers of encapsulated
    messages; never an attachment's octets."""
    spans = [(0, info.header_end)]
    if body:
        for part in info.walk():
            if part.message is not None:
                inner = part.message.structure
                spans.append((inner.header_start, inner.body_start))
            elif _is_text(part):
                spans.append((part.body_start, part.end))
    return spans


class MessageText:
    """The searchable text of one message from the ``needed_spans`` read
    (``octets``), computed on first use."""

    def __init__(self, info: MessageInfo, octets: dict[Span, bytes]) -> None:
        self.info = info
        self.octets = octets

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.octets.values())

    @cached_property
    def fields(self) -> dict[str, str]:
        """Every field of the message header, decoded and lowercased."""
        header = self.octets[(0, self.info.header_end)]
        return {name: text.lower() for name, text in header_text(header).items()}

    @cached_property
    def header(self) -> str:
        """The header as "name: text" lines, for TEXT."""
        return "\n".join(f"{name}: {text}" for name, text in self.fields.items())

    @cached_property
    def body(self) -> str:
        """The decoded text of the body, lowercased."""
        return body_text(self.info, self.octets).lower()

    def contains(self, needle: str, *, headers: bool) -> bool:
        """Whether ``needle`` (lowercased) is in the body, or the header too."""
        if headers and needle in self.header:
            return True
        return needle in self.body


def body_text(info: MessageInfo, octets: dict[Span, bytes]) -> str:
    """The text of every text/* part, and of encapsulated headers."""
    pieces: list[str] = []
    for part in info.walk():
        if part.message is not None:
            inner = part.message.structure
            header = octets[(inner.header_start, inner.body_start)]
            fields = header_text(header)
            pieces.extend(f"{name}: {text}" for name, text in fields.items())
        elif _is_text(part):
            pieces.append(part_text(octets[(part.body_start, part.end)], part))
    return "\n".join(pieces)


def _is_text(part: Part) -> bool:
    return not part.parts and part.message is None and part.type.lower() == "text"


def part_text(body: bytes, part: Part) -> str:
    """One text part's body as text: transfer encoding undone, charset
    decoded, HTML reduced to its words."""
    text = decode_charset(transfer_decode(body, part.encoding), part.param("charset"))
    if part.subtype.lower() == "html":
        text = html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", text)))
    return text


def transfer_decode(body: bytes, encoding: str) -> bytes:
    """Undo base64 or quoted-printable (RFC 2045 §6.7, §6.8), leniently:
    stray characters are skipped, a broken body is searched as written."""
    name = encoding.lower()
    if name == "base64":
        data = _NOT_BASE64.sub(b"", body)
        if len(data) % 4 == 1:
            data = data[:-1]  # a lone last character holds no whole octet
        data += b"=" * (-len(data) % 4)
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            return body
    if name == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def decode_charset(data: bytes, charset: str | None) -> str:
    """Octets as text in ``charset``; unlabelled, US-ASCII or unknown
    charsets are read as UTF-8, else Windows-1252 (what mislabelled mail
    most often is)."""
    codec = None
    if charset:
        try:
            codec = codecs.lookup(charset.strip()).name
        except LookupError:
            codec = None
    if codec is None or codec == "ascii":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    try:
        return data.decode(codec, "replace")
    except (LookupError, ValueError, TypeError):
        # Not a text codec ("base64" names a bytes transform).
        return data.decode("latin-1")
