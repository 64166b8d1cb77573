"""The parser: a message's bytes into its envelope and part tree, once.

One forward pass over the bytes builds the tree of RFC 2045 entities: an
entity's header ends at its first empty line, a multipart's children lie
between its boundary delimiters (RFC 2046 §5.1.1), a message/rfc822 body is
parsed again as a message (RFC 2046 §5.2.1). A part's content ends where the
next delimiter of any enclosing multipart starts, so a missing close
delimiter (the MAIL-05 input) ends the part at the next outer delimiter or
at the end of the message.

Malformed input gives a best-effort tree and never an exception:

- A Content-Type that does not parse counts as text/plain; charset=us-ascii
  (RFC 2045 §5.2); so does a multipart without a usable boundary parameter.
- A multipart in which no delimiter of its own is found gets one text/plain
  part holding its whole body, so the text is still readable (Dovecot gives
  an empty part instead). IMAP has no multipart without parts.
- A header cut short by a delimiter line ends there; its body is empty.
- Entities nested deeper than MAX_DEPTH are opaque application/octet-stream
  leaves, their parameters kept.
- Past MAX_PARTS entities, a multipart gets no more parts of its own: what
  is left of its body becomes one application/octet-stream part without a
  header. Dovecot stops at the same number (its max_total_mime_parts), and
  so a 50 MB message of empty parts cannot make millions of them.
- The envelopes of a message (its own, then those of the messages it
  encapsulates) hold at most MAX_ADDRESSES addresses together; a list cut
  short keeps its group closed.
- In a multipart/digest a part without Content-Type is message/rfc822
  (RFC 2046 §5.1.5).

Known gaps: message/global (RFC 6532 §3.5) is a leaf, as in IMAP4rev1 and
Dovecot 2.3; a message/rfc822 body in base64 or quoted-printable is parsed as
it stands, not decoded (RFC 2046 §5.2.1 forbids that encoding).
"""

from __future__ import annotations

import dataclasses
import re

from nubo.mail.mime.address import Address, parse_address_list
from nubo.mail.mime.headers import (
    Params,
    parse_content_type,
    parse_disposition,
    parse_language,
    parse_token,
)
from nubo.mail.mime.model import Envelope, MessageInfo, Part, join_section
from nubo.mail.mime.scan import Delimiter, Scanner, header_fields

MAX_DEPTH = 50
MAX_PARTS = 10_000
MAX_ADDRESSES = 10_000

_MIME_FIELDS = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "content-id",
        "content-description",
        "content-md5",
        "content-disposition",
        "content-language",
        "content-location",
    }
)
_ENVELOPE_FIELDS = frozenset(
    {
        "date",
        "subject",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "in-reply-to",
        "message-id",
    }
)
_MESSAGE_FIELDS = _MIME_FIELDS | _ENVELOPE_FIELDS

_US_ASCII: Params = (("charset", "us-ascii"),)
_PLAIN = ("text", "plain", _US_ASCII)
_RFC822 = ("message", "rfc822", ())


def parse_message(raw: bytes) -> MessageInfo:
    """Parse a stored message into its envelope, structure and offsets.

    Never raises on any input: malformed messages get a best-effort tree.
    """
    message, _ = _Parser(raw).message(0, (), "", 0)
    return message


class _Header:
    """An entity's header: where it ends, its fields, and whether a
    delimiter line cut it short."""

    __slots__ = ("body_start", "cut", "fields")

    def __init__(
        self, body_start: int, fields: dict[str, str], cut: Delimiter | None
    ) -> None:
        self.body_start = body_start
        self.fields = fields
        self.cut = cut


class _Parser:
    __slots__ = ("addresses", "entities", "raw", "scan", "size")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.scan = Scanner(raw)
        self.size = len(raw)
        self.entities = 0  # entities made so far, against MAX_PARTS
        self.addresses = MAX_ADDRESSES  # addresses the envelopes may still hold

    def message(
        self, start: int, stack: tuple[bytes, ...], prefix: str, depth: int
    ) -> tuple[MessageInfo, Delimiter | None]:
        """The message at ``start``; it ends at the next delimiter of
        ``stack`` (or the end). Returns it and that delimiter."""
        header = self.header(start, stack, _MESSAGE_FIELDS)
        envelope = self.envelope(header.fields)
        part, delimiter = self.entity(start, header, stack, prefix, depth, _PLAIN)
        return MessageInfo(envelope=envelope, structure=part), delimiter

    def header(
        self, start: int, stack: tuple[bytes, ...], wanted: frozenset[str]
    ) -> _Header:
        empty = self.scan.empty_line(start)
        stop = self.size if empty is None else empty[0]
        cut = self.scan.delimiter(start, stop, stack)
        if cut is not None:
            end = body_start = self.scan.line_end_before(cut.start, start)
        elif empty is not None:
            end, body_start = empty
        else:
            end = body_start = self.size
        fields: dict[str, str] = {}
        for name, value in header_fields(self.raw, start, end, wanted):
            if name not in fields:  # the first of duplicated fields counts
                fields[name] = value.decode("latin-1")
        return _Header(body_start, fields, cut)

    def entity(
        self,
        start: int,
        header: _Header,
        stack: tuple[bytes, ...],
        section: str,
        depth: int,
        default: tuple[str, str, Params],
        root: bool = True,
    ) -> tuple[Part, Delimiter | None]:
        """The entity whose header starts at ``start``: a message root
        (``section`` is then the message's own number) or a part."""
        self.entities += 1
        kind, sub, params = _content_type(header.fields, default)
        boundary = _boundary(params) if kind == "multipart" else None
        if kind == "multipart" and boundary is None:
            kind, sub, params = _PLAIN
        if depth >= MAX_DEPTH and (kind == "multipart" or (kind, sub) == _RFC822[:2]):
            kind, sub = "application", "octet-stream"
        if root and kind != "multipart":
            section = join_section(section, 1)
        if header.cut is None and stack:
            header = self.cut_after_header(start, header, stack, boundary)

        body_start = header.body_start
        parts: tuple[Part, ...] = ()
        message: MessageInfo | None = None
        if kind == "multipart" and boundary is not None:
            parts, end, delimiter = self.multipart(
                body_start, header.cut, stack, boundary, section, depth, sub
            )
        elif (kind, sub) == _RFC822[:2]:
            message, delimiter = self.encapsulated(
                body_start, header.cut, stack, section, depth
            )
            end = message.structure.end
        elif header.cut is not None:
            end, delimiter = body_start, header.cut
        else:
            end, delimiter = self.leaf_end(body_start, stack)

        lines = 0
        if kind == "text" or message is not None:
            lines = self.raw.count(b"\n", body_start, end)
        offsets = (start, body_start, end)
        media = (kind, sub, params)
        part = _part(header.fields, section, offsets, media, lines, parts, message)
        return part, delimiter

    def cut_after_header(
        self,
        start: int,
        header: _Header,
        stack: tuple[bytes, ...],
        boundary: bytes | None,
    ) -> _Header:
        """The header again when an enclosing delimiter line follows its
        empty line at once: that line end belongs to the delimiter
        (RFC 2046 §5.1.1), so the part ends before it and has no body.

        The entity's own boundary is checked first, as the innermost: with
        an outer boundary "ab", the line "--abc" opens a multipart whose
        boundary is "abc" and does not end it.
        """
        own = () if boundary is None else (b"--" + boundary,)
        found = self.scan.delimiter_at(header.body_start, self.size, (*stack, *own))
        if found is None or found.level >= len(stack):
            return header
        end = self.scan.line_end_before(found.start, start)
        return _Header(end, header.fields, found)

    def rest(
        self, start: int, stack: tuple[bytes, ...], section: str
    ) -> tuple[Part, Delimiter | None]:
        """Past MAX_PARTS: the rest of the multipart whose boundary is the
        last of ``stack``, from ``start`` on, as one opaque part.

        One regular-expression search finds where it ends: the close
        delimiter of its own boundary, or a delimiter of an enclosing one
        that its own (the innermost, which wins) does not also match.
        """
        own = stack[-1]
        ends = [re.escape(own + b"--")]
        if len(stack) > 1:
            outer = b"|".join(re.escape(boundary) for boundary in stack[:-1])
            ends.append(b"(?!" + re.escape(own) + b")(?:" + outer + b")")
        pattern = re.compile(b"(?m)^(?:" + b"|".join(ends) + b")")
        found = pattern.search(self.raw, start)
        delimiter = None
        end = self.size
        if found is not None:
            delimiter = self.scan.delimiter_at(found.start(), self.size, stack)
            end = self.scan.line_end_before(found.start(), start)
        self.entities += 1
        part = Part(section, start, start, end, "application", "octet-stream")
        return part, delimiter

    def envelope(self, fields: dict[str, str]) -> Envelope:
        """The ENVELOPE of RFC 3501 §7.4.2 from a message's first fields,
        its addresses counted against what is left of MAX_ADDRESSES."""
        lists: dict[str, tuple[Address, ...]] = {}
        for name in ("from", "sender", "reply-to", "to", "cc", "bcc"):
            value = fields.get(name)
            found = parse_address_list(value, self.addresses) if value else ()
            self.addresses -= len(found)
            lists[name] = found
        from_ = lists["from"]
        return Envelope(
            date=fields.get("date"),
            subject=fields.get("subject"),
            from_=from_,
            sender=lists["sender"] or from_,
            reply_to=lists["reply-to"] or from_,
            to=lists["to"],
            cc=lists["cc"],
            bcc=lists["bcc"],
            in_reply_to=fields.get("in-reply-to"),
            message_id=fields.get("message-id"),
        )

    def leaf_end(
        self, body_start: int, stack: tuple[bytes, ...]
    ) -> tuple[int, Delimiter | None]:
        """Where a body ends: before the next delimiter line of ``stack``."""
        delimiter = self.scan.delimiter(body_start, self.size, stack)
        if delimiter is None:
            return self.size, None
        return self.scan.line_end_before(delimiter.start, body_start), delimiter

    def encapsulated(
        self,
        body_start: int,
        cut: Delimiter | None,
        stack: tuple[bytes, ...],
        section: str,
        depth: int,
    ) -> tuple[MessageInfo, Delimiter | None]:
        """The message inside a message/rfc822 body (RFC 2046 §5.2.1)."""
        if cut is not None:
            empty = Part(join_section(section, 1), body_start, body_start, body_start)
            return MessageInfo(
                Envelope(), dataclasses.replace(empty, params=_US_ASCII)
            ), cut
        return self.message(body_start, stack, section, depth + 1)

    def multipart(
        self,
        body_start: int,
        cut: Delimiter | None,
        stack: tuple[bytes, ...],
        boundary: bytes,
        section: str,
        depth: int,
        subtype: str,
    ) -> tuple[tuple[Part, ...], int, Delimiter | None]:
        """The parts of a multipart body (RFC 2046 §5.1.1), its end, and the
        delimiter of an enclosing multipart that ended it."""
        default = _RFC822 if subtype == "digest" else _PLAIN
        inner = (*stack, b"--" + boundary)
        level = len(stack)
        delimiter = cut or self.scan.delimiter(body_start, self.size, inner)
        parts: list[Part] = []
        while (
            delimiter is not None and delimiter.level == level and not delimiter.close
        ):
            start = delimiter.after
            if self.entities >= MAX_PARTS:
                number = join_section(section, len(parts) + 1)
                rest, delimiter = self.rest(start, inner, number)
                parts.append(rest)
                break
            header = self.header(start, inner, _MIME_FIELDS)
            number = join_section(section, len(parts) + 1)
            child, delimiter = self.entity(
                start, header, inner, number, depth + 1, default, root=False
            )
            parts.append(child)

        if not parts:  # no part of its own: its body, readable as text
            end = self.size
            if delimiter is not None:
                end = self.scan.line_end_before(delimiter.start, body_start)
            lines = self.raw.count(b"\n", body_start, end)
            text = Part(join_section(section, 1), body_start, body_start, end)
            parts.append(dataclasses.replace(text, params=_US_ASCII, lines=lines))
        if delimiter is not None and delimiter.level == level:  # close delimiter
            epilogue = delimiter.after
            end, delimiter = self.leaf_end(epilogue, stack)
            end = max(end, epilogue)
        else:
            end = parts[-1].end
        return tuple(parts), end, delimiter


def _content_type(
    fields: dict[str, str], default: tuple[str, str, Params]
) -> tuple[str, str, Params]:
    value = fields.get("content-type")
    if value is None:
        return default
    parsed = parse_content_type(value)
    if parsed is None:
        return _PLAIN
    kind, sub, params = parsed
    if kind == "text" and not any(name == "charset" for name, _ in params):
        params = (*params, *_US_ASCII)
    return kind, sub, params


def _boundary(params: Params) -> bytes | None:
    for name, value in params:
        if name == "boundary":
            return value.encode("latin-1") if value else None
    return None


def _part(
    fields: dict[str, str],
    section: str,
    offsets: tuple[int, int, int],
    media: tuple[str, str, Params],
    lines: int,
    parts: tuple[Part, ...],
    message: MessageInfo | None,
) -> Part:
    """A Part from its MIME fields, (header_start, body_start, end) and
    (type, subtype, parameters)."""
    disposition = fields.get("content-disposition")
    return Part(
        section=section,
        header_start=offsets[0],
        body_start=offsets[1],
        end=offsets[2],
        type=media[0],
        subtype=media[1],
        params=media[2],
        id=_text(fields.get("content-id")),
        description=_text(fields.get("content-description")),
        encoding=parse_token(fields.get("content-transfer-encoding", "")) or "7bit",
        md5=_text(fields.get("content-md5")),
        disposition=None if disposition is None else parse_disposition(disposition),
        language=parse_language(fields.get("content-language", "")),
        location=_text(fields.get("content-location")),
        lines=lines,
        parts=parts,
        message=message,
    )


def _text(value: str | None) -> str | None:
    """A MIME field's text for an nstring: NIL when absent or empty."""
    return value or None
