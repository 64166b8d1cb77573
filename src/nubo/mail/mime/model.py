"""What a parsed message is: its envelope, its part tree and their offsets.

Offsets are octet positions in the original message bytes. Every part has
three: ``header_start``, ``body_start`` and ``end``; its MIME header is
raw[header_start:body_start] (blank line included) and its body
raw[body_start:end]. For the message itself the header is the RFC 5322
header and ``header_start`` is 0. A message/rfc822 part also holds the
message it encapsulates, whose offsets share the part's body.

Strings that come from header fields (envelope fields, parameters, ids,
descriptions) hold one character per octet (latin-1): raw octets, not decoded
text, because IMAP sends them back as written (RFC 3501 §7.4.2).

``to_json`` writes a compact form for the SQL row: short keys, defaults
left out, part numbers not stored (they follow from the tree). ``from_json``
gives back an equal object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nubo.mail.mime.address import Address
from nubo.mail.mime.headers import Params, param_text

JSON_VERSION = 1


@dataclass(frozen=True, slots=True)
class Envelope:
    """The ENVELOPE fields (RFC 3501 §7.4.2), as the header wrote them.

    ``sender`` and ``reply_to`` are already ``from_`` when their header is
    absent or empty, as RFC 3501 §7.4.2 asks of the server.
    """

    date: str | None = None
    subject: str | None = None
    from_: tuple[Address, ...] = ()
    sender: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    in_reply_to: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: the fields BODYSTRUCTURE reports (RFC 3501 §7.4.2)
    and where its header and body lie.

    ``section`` is the IMAP part number that fetches this part's body
    (RFC 3501 §6.4.5): "2.1" for a subpart, "1" for the body of a message
    that is not multipart, and for a multipart message the message's own
    number ("" at the top). ``lines`` is counted for text/* and
    message/rfc822 parts only.
    """

    section: str
    header_start: int
    body_start: int
    end: int
    type: str = "text"
    subtype: str = "plain"
    params: Params = ()
    id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    md5: str | None = None
    disposition: tuple[str, Params] | None = None
    language: tuple[str, ...] = ()
    location: str | None = None
    lines: int = 0
    parts: tuple[Part, ...] = ()
    message: MessageInfo | None = None

    @property
    def size(self) -> int:
        """The body size in octets, as served."""
        return self.end - self.body_start

    @property
    def content_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> str | None:
        """A Content-Type parameter as decoded text (RFC 2231, RFC 2047)."""
        return param_text(self.params, name.lower())

    @property
    def filename(self) -> str | None:
        """The decoded file name: Content-Disposition's ``filename``
        (RFC 2183 §2.3), else Content-Type's ``name``."""
        if self.disposition is not None:
            found = param_text(self.disposition[1], "filename")
            if found is not None:
                return found
        return self.param("name")

    def walk(self) -> Iterator[Part]:
        """This part and every part below it, encapsulated ones included."""
        yield self
        for child in self.parts:
            yield from child.walk()
        if self.message is not None:
            yield from self.message.structure.walk()


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A parsed message: the envelope and the root of its part tree."""

    envelope: Envelope
    structure: Part

    @property
    def size(self) -> int:
        """RFC822.SIZE (RFC 3501 §7.4.2): the octets as stored and served."""
        return self.structure.end - self.structure.header_start

    @property
    def header_end(self) -> int:
        """Where the header (its blank line included) ends and the body starts."""
        return self.structure.body_start

    def walk(self) -> Iterator[Part]:
        return self.structure.walk()

    def to_json(self) -> str:
        return json.dumps(
            {"v": JSON_VERSION, **_message_to_json(self)}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, text: str) -> MessageInfo:
        return _message_from_json(_load(text), "")

    @staticmethod
    def envelope_from_json(text: str) -> Envelope:
        """The envelope alone, without building the structure's parts:
        FETCH ENVELOPE of many messages needs no more."""
        return _envelope_from_json(_load(text).get("e", {}))


def _load(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    if data.get("v") != JSON_VERSION:
        raise ValueError(f"unknown message info version {data.get('v')!r}")
    return data


def _message_to_json(message: MessageInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"s": _part_to_json(message.structure)}
    envelope = _envelope_to_json(message.envelope)
    if envelope:
        out["e"] = envelope
    return out


def _part_to_json(part: Part) -> dict[str, Any]:
    out: dict[str, Any] = {"o": [part.header_start, part.body_start, part.end]}
    if (part.type, part.subtype) != ("text", "plain"):
        out["t"] = part.content_type
    for key, value in (
        ("id", part.id),
        ("de", part.description),
        ("md5", part.md5),
        ("lo", part.location),
    ):
        if value is not None:
            out[key] = value
    if part.params:
        out["p"] = part.params
    if part.encoding != "7bit":
        out["en"] = part.encoding
    if part.disposition is not None:
        out["di"] = part.disposition
    if part.language:
        out["la"] = part.language
    if part.lines:
        out["n"] = part.lines
    if part.parts:
        out["c"] = [_part_to_json(child) for child in part.parts]
    if part.message is not None:
        out["m"] = _message_to_json(part.message)
    return out


_ENVELOPE_KEYS = (
    ("d", "date"),
    ("s", "subject"),
    ("f", "from_"),
    ("se", "sender"),
    ("r", "reply_to"),
    ("t", "to"),
    ("c", "cc"),
    ("b", "bcc"),
    ("i", "in_reply_to"),
    ("m", "message_id"),
)


def _envelope_to_json(envelope: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attribute in _ENVELOPE_KEYS:
        value = getattr(envelope, attribute)
        if value is None or value == ():
            continue
        if key in ("se", "r") and value == envelope.from_:
            continue
        out[key] = value
    return out


def _envelope_from_json(data: dict[str, Any]) -> Envelope:
    def addresses(key: str) -> tuple[Address, ...]:
        return tuple((a[0], a[1], a[2], a[3]) for a in data.get(key, ()))

    sender_from = addresses("f")
    return Envelope(
        date=data.get("d"),
        subject=data.get("s"),
        from_=sender_from,
        sender=addresses("se") if "se" in data else sender_from,
        reply_to=addresses("r") if "r" in data else sender_from,
        to=addresses("t"),
        cc=addresses("c"),
        bcc=addresses("b"),
        in_reply_to=data.get("i"),
        message_id=data.get("m"),
    )


def _message_from_json(data: dict[str, Any], prefix: str) -> MessageInfo:
    root = data["s"]
    section = prefix if "c" in root else join_section(prefix, 1)
    return MessageInfo(
        envelope=_envelope_from_json(data.get("e", {})),
        structure=_part_from_json(root, section),
    )


def _part_from_json(data: dict[str, Any], section: str) -> Part:
    kind, _, sub = data.get("t", "text/plain").partition("/")
    disposition = data.get("di")
    children = tuple(
        _part_from_json(child, join_section(section, index))
        for index, child in enumerate(data.get("c", ()), 1)
    )
    return Part(
        section=section,
        header_start=data["o"][0],
        body_start=data["o"][1],
        end=data["o"][2],
        type=kind,
        subtype=sub,
        params=_params(data.get("p", ())),
        id=data.get("id"),
        description=data.get("de"),
        encoding=data.get("en", "7bit"),
        md5=data.get("md5"),
        disposition=(
            None if disposition is None else (disposition[0], _params(disposition[1]))
        ),
        language=tuple(data.get("la", ())),
        location=data.get("lo"),
        lines=data.get("n", 0),
        parts=children,
        message=None if "m" not in data else _message_from_json(data["m"], section),
    )


def _params(pairs: Any) -> Params:
    return tuple((name, value) for name, value in pairs)


def join_section(prefix: str, number: int) -> str:
    """The part number ``number`` below ``prefix`` (RFC 3501 §6.4.5)."""
    return f"{prefix}.{number}" if prefix else str(number)
