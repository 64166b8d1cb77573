"""FETCH items (RFC 3501 §6.4.5, RFC 3501 §9 ``fetch-att``).

The macros ALL, FAST and FULL are expanded here, so a server only ever sees
``FetchAttr`` (a named attribute: FLAGS, UID, ENVELOPE, ...) and
``FetchBody`` (BODY[section]<partial> and BODY.PEEK[...]). A ``Section`` is
a part path (1.2.3) and an optional text: HEADER, HEADER.FIELDS with its
field names, HEADER.FIELDS.NOT, TEXT, or MIME (which needs a part).
``FetchBody.response_name`` is the name the answer must carry (RFC 3501
§7.4.2): BODY even for BODY.PEEK, and only the origin of a partial.

MODSEQ (RFC 7162 §3.1.4.1) is an attribute and CHANGEDSINCE a modifier;
UID FETCH implies UID (RFC 3501 §6.4.8), which the server adds itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.lexer import Reader

ATTRIBUTES = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
    }
)
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
MAX_MODSEQ = 2**63 - 1
"""mod-sequence-value is below 2^63 (RFC 7162 §7)."""

_NAME = re.compile(rb"[A-Za-z0-9.]+")
_PART = re.compile(rb"[1-9][0-9]{0,9}(?:\.[1-9][0-9]{0,9})*")
_TEXT = re.compile(
    rb"(?i:HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)(?=[\] ])"
)
# RFC 5322 §3.6.8 ftext that is also ATOM-CHAR, so the name echoes as an atom.
_FIELD = re.compile(r"[!#$&'+-9;-Z\[^-z|}~]+")
_PARTIAL = re.compile(rb"<([0-9]{1,10})\.([0-9]{1,10})>")


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """A named item: ENVELOPE, FLAGS, INTERNALDATE, RFC822*, BODY, UID, ..."""

    name: str


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec`` (RFC 3501 §6.4.5); empty means the whole message."""

    part: tuple[int, ...] = ()
    text: str | None = None
    """HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME."""
    fields: tuple[str, ...] = ()
    """The field names of HEADER.FIELDS and HEADER.FIELDS.NOT, as sent."""

    def __str__(self) -> str:
        spec = ".".join(map(str, self.part))
        if self.text:
            spec = f"{spec}.{self.text}" if spec else self.text
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return spec


@dataclass(frozen=True, slots=True)
class FetchBody:
    """BODY[section]<origin.count>, or BODY.PEEK[...] which sets no \\Seen."""

    section: Section = Section()
    partial: tuple[int, int] | None = None
    """(origin, count) in octets."""
    peek: bool = False

    def response_name(self) -> bytes:
        """The item's name in the FETCH answer, e.g. ``BODY[1.MIME]<0>``."""
        name = f"BODY[{self.section}]"
        if self.partial is not None:
            name += f"<{self.partial[0]}>"
        return name.encode("ascii")


FetchItem = FetchAttr | FetchBody


def read_items(reader: Reader) -> tuple[FetchItem, ...]:
    """A macro, one item, or a parenthesized list of items."""
    if reader.peek() != 0x28:
        macro = MACROS.get(_peek_name(reader))
        if macro is not None:
            reader.atom()
            return tuple(FetchAttr(name) for name in macro)
        return (read_item(reader),)
    return tuple(reader.parenthesized(lambda: read_item(reader)))


def read_changedsince(reader: Reader) -> int:
    """The fetch modifiers: only "(CHANGEDSINCE n)" (RFC 7162 §3.1.4.1)."""
    reader.open()
    if not reader.keyword(b"CHANGEDSINCE"):
        raise ParseError("unknown FETCH modifier")
    reader.sp()
    modseq = reader.nz_number(MAX_MODSEQ)
    reader.close()
    return modseq


def _peek_name(reader: Reader) -> str:
    found = _NAME.match(reader.data, reader.pos)
    return found.group().decode("ascii").upper() if found else ""


def read_item(reader: Reader) -> FetchItem:
    name = _peek_name(reader)
    reader.pos += len(name)
    if name in ("BODY", "BODY.PEEK") and reader.peek() == 0x5B:
        return _body(reader, peek=name == "BODY.PEEK")
    if name not in ATTRIBUTES:
        raise ParseError("unknown FETCH item")
    reader.count()
    return FetchAttr(name)


def _body(reader: Reader, *, peek: bool) -> FetchBody:
    reader.pos += 1  # "["
    reader.count()
    part: tuple[int, ...] = ()
    found = _PART.match(reader.data, reader.pos)
    if found is not None:
        part = tuple(int(number) for number in found.group().split(b"."))
        reader.pos = found.end()
    text: str | None = None
    fields: tuple[str, ...] = ()
    if reader.peek() != 0x5D:
        if part:
            if reader.peek() != 0x2E:
                raise ParseError("malformed BODY section")
            reader.pos += 1
        found = _TEXT.match(reader.data, reader.pos)
        if found is None:
            raise ParseError("unknown BODY section")
        text = found.group().decode("ascii").upper()
        reader.pos = found.end()
        if text == "MIME" and not part:
            raise ParseError("MIME needs a part number")
        if text.startswith("HEADER.FIELDS"):
            reader.sp()
            fields = _header_list(reader)
    if reader.peek() != 0x5D:
        raise ParseError("expected ] after the BODY section")
    reader.pos += 1
    partial = None
    found = _PARTIAL.match(reader.data, reader.pos)
    if found is not None:
        origin, count = int(found.group(1)), int(found.group(2))
        if count == 0 or max(origin, count) > 0xFFFFFFFF:
            raise ParseError("malformed partial range")
        partial = (origin, count)
        reader.pos = found.end()
    return FetchBody(Section(part, text, fields), partial, peek)


def _header_list(reader: Reader) -> tuple[str, ...]:
    return tuple(reader.parenthesized(lambda: _field_name(reader)))


def _field_name(reader: Reader) -> str:
    name = reader.astring().decode("ascii", "replace")
    if not _FIELD.fullmatch(name):
        raise ParseError("malformed header field name")
    return name
