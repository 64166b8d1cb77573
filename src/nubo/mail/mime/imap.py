"""IMAP renderings of a parsed message: BODYSTRUCTURE, BODY, ENVELOPE and
the byte ranges of BODY[section] (RFC 3501 §6.4.5, RFC 3501 §7.4.2).

Strings are written as IMAP wants them (RFC 3501 §4.3): NIL when absent, a
quoted string with ``\\`` before ``"`` and ``\\``, or a literal
``{n}\\r\\n...`` when the value holds CR, LF or 8-bit octets (a quoted string
cannot). NUL cannot be sent at all, so a NUL octet in a header is sent as
U+FFFD in UTF-8, as Dovecot does. Renderings are bytes: literal lengths
count octets.

Part numbers follow RFC 3501 §6.4.5: the parts of a multipart are numbered
from 1; a message that is not multipart has exactly one part, 1, its body; a
part number after a message/rfc822 part numbers the parts of the message it
encapsulates. MIME is a part's own header; HEADER and TEXT after a part
number need a message/rfc822 part and mean the encapsulated message's header
and text. Numbers below a leaf part do not exist (Dovecot answers "2.1" with
part 2 when part 2 is a leaf inside a multipart; RFC 3501 gives that no
meaning, so nubo answers the empty string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from nubo.mail.mime.address import Address
from nubo.mail.mime.headers import Params
from nubo.mail.mime.model import Envelope, MessageInfo, Part

_NIL = b"NIL"
_REPLACEMENT = "\ufffd".encode()


def imap_string(value: str | None) -> bytes:
    """An nstring (RFC 3501 §4.3, §9): NIL, quoted, or literal."""
    if value is None:
        return _NIL
    if (
        value.isascii()
        and value.isprintable()
        and '"' not in value
        and "\\" not in value
    ):
        # The common case, tested by string methods written in C: printable
        # ASCII holds no CR, LF or NUL, and needs no escape.
        return b'"' + value.encode("ascii") + b'"'
    try:
        octets = value.encode("latin-1")
    except UnicodeEncodeError:
        octets = value.encode("utf-8", "surrogateescape")
    if b"\x00" in octets:
        octets = octets.replace(b"\x00", _REPLACEMENT)
    if not octets.isascii() or b"\r" in octets or b"\n" in octets:
        return b"{%d}\r\n%s" % (len(octets), octets)
    if b'"' in octets or b"\\" in octets:
        octets = octets.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + octets + b'"'


def bodystructure(info: MessageInfo, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY (RFC 3501 §7.4.2)."""
    out: list[bytes] = []
    _body(info.structure, extensible, out)
    return b"".join(out)


def envelope_imap(info: MessageInfo | Envelope) -> bytes:
    """ENVELOPE (RFC 3501 §7.4.2)."""
    out: list[bytes] = []
    _envelope(info if isinstance(info, Envelope) else info.envelope, out)
    return b"".join(out)


def _body(part: Part, extensible: bool, out: list[bytes]) -> None:
    out.append(b"(")
    if part.parts:
        for child in part.parts:
            _body(child, extensible, out)
        out += (b" ", imap_string(part.subtype))
        if extensible:
            out += (b" ", _params(part.params), b" ")
            _extension(part, out)
        out.append(b")")
        return
    out += (
        imap_string(part.type),
        b" ",
        imap_string(part.subtype),
        b" ",
        _params(part.params),
        b" ",
        imap_string(part.id),
        b" ",
        imap_string(part.description),
        b" ",
        imap_string(part.encoding),
        b" %d" % part.size,
    )
    if part.message is not None:
        out.append(b" ")
        _envelope(part.message.envelope, out)
        out.append(b" ")
        _body(part.message.structure, extensible, out)
        out.append(b" %d" % part.lines)
    elif part.type == "text":
        out.append(b" %d" % part.lines)
    if extensible:
        out += (b" ", imap_string(part.md5), b" ")
        _extension(part, out)
    out.append(b")")


def _extension(part: Part, out: list[bytes]) -> None:
    """body-fld-dsp SP body-fld-lang SP body-fld-loc (RFC 3501 §9)."""
    if part.disposition is None:
        out.append(_NIL)
    else:
        kind, params = part.disposition
        out += (b"(", imap_string(kind), b" ", _params(params), b")")
    if part.language:
        out.append(b" (" + b" ".join(imap_string(tag) for tag in part.language) + b")")
    else:
        out.append(b" NIL")
    out += (b" ", imap_string(part.location))


def _params(params: Params) -> bytes:
    if not params:
        return _NIL
    items = (imap_string(name) + b" " + imap_string(value) for name, value in params)
    return b"(" + b" ".join(items) + b")"


def _envelope(envelope: Envelope, out: list[bytes]) -> None:
    out += (
        b"(",
        imap_string(envelope.date),
        b" ",
        imap_string(envelope.subject),
    )
    for addresses in (
        envelope.from_,
        envelope.sender,
        envelope.reply_to,
        envelope.to,
        envelope.cc,
        envelope.bcc,
    ):
        out.append(b" ")
        out.append(_addresses(addresses))
    out += (
        b" ",
        imap_string(envelope.in_reply_to),
        b" ",
        imap_string(envelope.message_id),
        b")",
    )


def _addresses(addresses: tuple[Address, ...]) -> bytes:
    if not addresses:
        return _NIL
    items = [
        b"(%s %s %s %s)"
        % (
            imap_string(name),
            imap_string(route),
            imap_string(mailbox),
            imap_string(host),
        )
        for name, route, mailbox, host in addresses
    ]
    return b"(" + b"".join(items) + b")"


class Section(NamedTuple):
    """A parsed section-spec (RFC 3501 §6.4.5, §9 ``section-spec``)."""

    part: tuple[int, ...]  # () for the message itself
    text: str  # "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"
    fields: tuple[str, ...]  # the header-list of HEADER.FIELDS, uppercase


_TEXTS = frozenset({"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"})


def parse_section(spec: str) -> Section:
    """Parse what is between the brackets of BODY[...], e.g. ``2.1.MIME``
    or ``HEADER.FIELDS (From To)``. Raises ValueError on bad syntax."""
    head, space, rest = spec.strip().partition(" ")
    fields: tuple[str, ...] = ()
    if space:
        rest = rest.strip()
        if not (rest.startswith("(") and rest.endswith(")")):
            raise ValueError(f"bad header-list in section {spec!r}")
        fields = tuple(_header_names(rest[1:-1]))
        if not fields:
            raise ValueError(f"empty header-list in section {spec!r}")
    items = head.split(".") if head else []
    if "" in items:  # "1.", ".1", "1..2"
        raise ValueError(f"empty item in section {spec!r}")
    numbers: list[int] = []
    while items and items[0].isdigit():
        if items[0].startswith("0") or not items[0].isascii():
            raise ValueError(f"bad part number in section {spec!r}")
        numbers.append(int(items.pop(0)))
    text = ".".join(items).upper()
    if not (text in _TEXTS or (text == "MIME" and numbers)):
        raise ValueError(f"bad section text in {spec!r}")
    if (text.startswith("HEADER.FIELDS")) != bool(fields):
        raise ValueError(f"header-list does not fit section {spec!r}")
    return Section(tuple(numbers), text, fields)


# A header-list item is an astring (RFC 3501 §9): an atom or a quoted string.
_HEADER_NAME = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"]+)')


def _header_names(text: str) -> list[str]:
    names = []
    for match in _HEADER_NAME.finditer(text):
        quoted, atom = match.groups()
        name = atom if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        names.append(name.upper())
    return names


def find_part(info: MessageInfo, numbers: Iterable[int]) -> Part | None:
    """The part a part number selects (RFC 3501 §6.4.5), or None."""
    context = info.structure
    message_root = True
    selected: Part | None = None
    for number in numbers:
        if selected is not None:
            if selected.message is not None:
                context, message_root = selected.message.structure, True
            elif selected.parts:
                context, message_root = selected, False
            else:
                return None
        if context.parts:
            if not 1 <= number <= len(context.parts):
                return None
            selected = context.parts[number - 1]
        elif message_root and number == 1:
            selected = context
        else:
            return None
    return selected


def section_range(info: MessageInfo, spec: str | Section) -> tuple[int, int] | None:
    """The (start, end) offsets of BODY[spec] in the message, or None when
    the part does not exist (IMAP then sends an empty string).

    For HEADER.FIELDS and HEADER.FIELDS.NOT this is the whole header; pass
    its bytes to ``header_fields`` to keep the fields asked for.
    """
    section = parse_section(spec) if isinstance(spec, str) else spec
    if not section.part:
        root = info.structure
        if section.text == "":
            return root.header_start, root.end
        if section.text == "TEXT":
            return root.body_start, root.end
        return root.header_start, root.body_start
    part = find_part(info, section.part)
    if part is None:
        return None
    if section.text == "":
        return part.body_start, part.end
    if section.text == "MIME":
        return part.header_start, part.body_start
    if part.message is None:
        return None
    inner = part.message.structure
    if section.text == "TEXT":
        return inner.body_start, inner.end
    return inner.header_start, inner.body_start


def header_fields(header: bytes, names: Iterable[str], exclude: bool = False) -> bytes:
    """The fields of a header block named in ``names`` (or, with
    ``exclude``, all others), with the blank line that ends the block:
    BODY[HEADER.FIELDS (...)] and HEADER.FIELDS.NOT (RFC 3501 §6.4.5).
    Field names compare case-insensitively; continuation lines follow their
    field; lines that are no field are left out."""
    wanted = {name.lower() for name in names}
    out: list[bytes] = []
    keep = False
    for line in _lines(header):
        if line in (b"\r\n", b"\n"):
            out.append(line)
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        colon = line.find(b":")
        if colon <= 0:
            keep = False
            continue
        name = line[:colon].rstrip(b" \t").decode("latin-1").lower()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    return b"".join(out)


def _lines(data: bytes) -> Iterable[bytes]:
    """Lines ending at LF, line ends kept (a bare CR ends no line)."""
    pos, size = 0, len(data)
    while pos < size:
        lf = data.find(b"\n", pos)
        end = size if lf < 0 else lf + 1
        yield data[pos:end]
        pos = end
