"""Properties of parse_message that hold for every input, malformed or not.

Checked on every sample, on messages built at random with a known right
answer, on mutations of the samples, on random octets (``random.Random``
with fixed seeds, so a failure repeats), and on large inputs made to find
quadratic work (the limits must hold; no timing is asserted):

- parse_message never raises and returns a structure;
- offsets lie within the message, each part within its parent, siblings
  in order, and the root spans the whole message;
- part numbers select their part (RFC 3501 §6.4.5) and BODY[section],
  MIME, HEADER and TEXT are the slices the offsets say;
- ``lines`` counts the body's line ends, for text and message/rfc822;
- to_json/from_json give back an equal object, envelope_from_json its
  envelope;
- BODYSTRUCTURE, BODY and ENVELOPE are valid IMAP (RFC 3501 §9);
- MAX_DEPTH, MAX_PARTS and MAX_ADDRESSES hold.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nubo.mail.message import (
    MAX_DEPTH,
    MessageInfo,
    Part,
    bodystructure,
    envelope_imap,
    find_part,
    parse_message,
    search_headers,
    section_range,
    sent_date,
)
from nubo.mail.mime.structure import MAX_ADDRESSES, MAX_PARTS
from tests.mail.imap_syntax import check_body, check_envelope, read_value

MESSAGES = Path(__file__).parent / "messages"
SAMPLES = {path.stem: path.read_bytes() for path in sorted(MESSAGES.glob("*.eml"))}


# -- The invariants -----------------------------------------------------------


def check_message(raw: bytes) -> MessageInfo:
    """Parse ``raw`` and check every property; return the parse."""
    info = parse_message(raw)
    root = info.structure
    assert (root.header_start, root.end) == (0, len(raw))
    assert info.size == len(raw)
    assert info.header_end == root.body_start

    _check_tree(raw, info, root, depth=0)
    _check_sections(raw, info)
    assert MessageInfo.from_json(info.to_json()) == info
    assert MessageInfo.envelope_from_json(info.to_json()) == info.envelope

    check_body(read_value(bodystructure(info)), extensible=True)
    check_body(read_value(bodystructure(info, extensible=False)), extensible=False)
    check_envelope(read_value(envelope_imap(info)))
    assert sum(1 for _ in info.walk()) <= MAX_PARTS + MAX_DEPTH
    assert _address_count(info) <= MAX_ADDRESSES + 6 * _message_count(info)

    search_headers(raw, info)
    sent_date(info)
    return info


def _check_tree(raw: bytes, info: MessageInfo, part: Part, depth: int) -> None:
    assert depth <= MAX_DEPTH
    assert 0 <= part.header_start <= part.body_start <= part.end <= len(raw)
    if part.type == "text" or part.message is not None:
        assert part.lines == raw.count(b"\n", part.body_start, part.end)
    else:
        assert part.lines == 0
    if part.type == "multipart":
        assert part.parts, "IMAP has no multipart without parts"
    previous_end = part.body_start
    for number, child in enumerate(part.parts, 1):
        assert child.section == f"{part.section}.{number}".lstrip(".")
        assert previous_end <= child.header_start
        assert child.end <= part.end
        previous_end = child.end
        _check_tree(raw, info, child, depth + 1)
    if part.message is not None:
        inner = part.message.structure
        assert inner.header_start == part.body_start
        assert inner.end == part.end
        expected = part.section if inner.parts else f"{part.section}.1"
        assert inner.section == expected
        _check_tree(raw, info, inner, depth + 1)


def _check_sections(raw: bytes, info: MessageInfo) -> None:
    root = info.structure
    assert _slice(raw, info, "") == raw
    assert _slice(raw, info, "HEADER") + _slice(raw, info, "TEXT") == raw
    assert _slice(raw, info, "HEADER") == raw[: root.body_start]
    for part in _selectable(root):
        numbers = tuple(int(n) for n in part.section.split("."))
        assert find_part(info, numbers) is part
        assert _slice(raw, info, part.section) == raw[part.body_start : part.end]
        mime = _slice(raw, info, f"{part.section}.MIME")
        assert mime == raw[part.header_start : part.body_start]
        inner = part.message.structure if part.message is not None else None
        header = section_range(info, f"{part.section}.HEADER")
        text = section_range(info, f"{part.section}.TEXT")
        if inner is None:
            assert header is None
            assert text is None
        else:
            assert header == (inner.header_start, inner.body_start)
            assert text == (inner.body_start, inner.end)
    count = len(root.parts) if root.parts else 1
    assert section_range(info, str(count + 1)) is None


def _selectable(part: Part, message_root: bool = True) -> Iterator[Part]:
    """The parts a part number selects: all but the root of a multipart
    message, whose number is that of the message itself."""
    if part.parts:
        if not message_root:
            yield part
        for child in part.parts:
            yield from _selectable(child, message_root=False)
        return
    yield part
    if part.message is not None:
        yield from _selectable(part.message.structure)


def _slice(raw: bytes, info: MessageInfo, spec: str) -> bytes:
    found = section_range(info, spec)
    assert found is not None, spec
    return raw[found[0] : found[1]]


def _messages(info: MessageInfo) -> Iterator[MessageInfo]:
    yield info
    for part in info.walk():
        if part.message is not None:
            yield part.message


def _message_count(info: MessageInfo) -> int:
    return sum(1 for _ in _messages(info))


def _address_count(info: MessageInfo) -> int:
    total = 0
    for message in _messages(info):
        envelope = message.envelope
        for addresses in (envelope.from_, envelope.to, envelope.cc, envelope.bcc):
            total += len(addresses)
        if envelope.sender is not envelope.from_:
            total += len(envelope.sender)
        if envelope.reply_to is not envelope.from_:
            total += len(envelope.reply_to)
    return total


# -- Samples and random octets ------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_properties(name: str) -> None:
    check_message(SAMPLES[name])


@pytest.mark.parametrize("seed", range(40))
def test_random_octets(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        check_message(rng.randbytes(rng.randrange(0, 2000)))


@pytest.mark.parametrize("seed", range(40))
def test_random_lines(seed: int) -> None:
    """Random lines from the alphabet MIME parsers trip over."""
    rng = random.Random(seed)
    words = [
        b"--",
        b"--b",
        b"--b--",
        b"--bb",
        b"Content-Type: multipart/mixed; boundary=b",
        b"Content-Type: multipart/digest; boundary=bb",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain; name*0*=utf-8''%E2; name*1=x",
        b"To: a@b, g: c@d;, <@r:e@f>",
        b"Subject: =?utf-8?q?x?=",
        b" folded",
        b"",
        b"\r",
        b"\x00",
        b"x",
    ]
    for _ in range(25):
        lines = [rng.choice(words) for _ in range(rng.randrange(0, 60))]
        check_message(
            b"".join(line + rng.choice((b"\r\n", b"\n", b"\r")) for line in lines)
        )


@pytest.mark.parametrize("seed", range(60))
def test_mutated_samples(seed: int) -> None:
    """Samples cut, spliced, repeated and with line ends changed."""
    rng = random.Random(seed)
    names = sorted(SAMPLES)
    for _ in range(10):
        raw = bytearray(SAMPLES[rng.choice(names)])
        for _ in range(rng.randrange(1, 5)):
            _mutate(rng, raw, SAMPLES[rng.choice(names)])
        check_message(bytes(raw))


def _mutate(rng: random.Random, raw: bytearray, other: bytes) -> None:
    a = rng.randrange(0, len(raw) + 1)
    b = rng.randrange(a, min(len(raw), a + 200) + 1)
    kind = rng.randrange(6)
    if kind == 0:
        del raw[a:b]
    elif kind == 1:
        raw[a:a] = raw[a:b] * rng.randrange(1, 4)
    elif kind == 2:
        raw[a:a] = rng.randbytes(rng.randrange(1, 20))
    elif kind == 3:
        raw[a:b] = raw[a:b].replace(b"\r\n", rng.choice((b"\n", b"\r", b"\n\r")))
    elif kind == 4:
        c = rng.randrange(0, len(other) + 1)
        raw[a:b] = other[c : c + rng.randrange(0, 400)]
    else:
        del raw[a:]


# -- Well-formed messages built at random, with their right answer ------------


@dataclass
class Node:
    """An entity as built: its MIME header (empty line included) and body."""

    content_type: str
    header: bytes
    body: bytes
    children: list[Node] = field(default_factory=list)
    message: Node | None = None


class Builder:
    """Random well-formed MIME messages (RFC 2046 §5.1.1): boundaries that
    never occur in content, close delimiters present, one line end."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.eol = rng.choice((b"\r\n", b"\n"))
        self.serial = 0

    def message(self, depth: int, outer: bytes) -> Node:
        fields = b"Subject: s%d%s" % (self.rng.randrange(1000), self.eol)
        node = self.entity(depth, outer)
        node.header = fields + node.header
        return node

    def entity(self, depth: int, outer: bytes) -> Node:
        eol, rng = self.eol, self.rng
        kind = (
            rng.choice(("leaf", "leaf", "multipart", "rfc822")) if depth < 4 else "leaf"
        )
        if kind == "multipart":
            return self.multipart(depth, outer)
        if kind == "rfc822":
            inner = self.message(depth + 1, outer)
            header = b"Content-Type: message/rfc822" + eol + eol
            return Node(
                "message/rfc822", header, inner.header + inner.body, message=inner
            )
        lines = [b"line %d" % rng.randrange(100) for _ in range(rng.randrange(0, 4))]
        body = eol.join(lines) + (eol if lines and rng.random() < 0.5 else b"")
        if rng.random() < 0.3:
            return Node("text/plain", eol, body)  # no header: text/plain
        subtype = rng.choice((b"plain", b"html"))
        header = b"Content-Type: text/" + subtype + eol + eol
        return Node("text/" + subtype.decode(), header, body)

    def multipart(self, depth: int, outer: bytes) -> Node:
        eol, rng = self.eol, self.rng
        self.serial += 1
        # Sometimes the outer boundary extended: the innermost must win.
        boundary = (
            outer + b"x%d" % self.serial
            if outer and rng.random() < 0.5
            else b"b%d" % self.serial
        )
        children = [
            self.entity(depth + 1, boundary) for _ in range(rng.randrange(1, 4))
        ]
        body = b""
        if rng.random() < 0.3:
            body += b"preamble" + eol
        for child in children:
            body += b"--" + boundary + eol + child.header + child.body + eol
        body += b"--" + boundary + b"--"
        if rng.random() < 0.3:
            body += eol + b"epilogue"
        subtype = rng.choice((b"mixed", b"alternative"))
        header = (
            b"Content-Type: multipart/"
            + subtype
            + b'; boundary="'
            + boundary
            + b'"'
            + eol
            + eol
        )
        return Node("multipart/" + subtype.decode(), header, body, children)


def _expected_body(node: Node, eol: bytes, nested: bool) -> bytes:
    """The body as served: a nested multipart without epilogue (or a
    message that ends with one) keeps the line end after its close
    delimiter (Dovecot counts it too). Leaf lines never end with "--"."""
    if nested and node.body.endswith(b"--"):
        return node.body + eol
    return node.body


def _compare(raw: bytes, node: Node, part: Part, eol: bytes, nested: bool) -> None:
    assert part.content_type == node.content_type
    assert raw[part.header_start : part.body_start] == node.header
    assert raw[part.body_start : part.end] == _expected_body(node, eol, nested)
    assert len(part.parts) == len(node.children)
    for child_node, child in zip(node.children, part.parts, strict=True):
        _compare(raw, child_node, child, eol, nested=True)
    if node.message is not None:
        assert part.message is not None
        _compare(raw, node.message, part.message.structure, eol, nested)


@pytest.mark.parametrize("seed", range(150))
def test_built_messages(seed: int) -> None:
    builder = Builder(random.Random(seed))
    node = builder.message(0, b"")
    raw = node.header + node.body
    info = check_message(raw)
    _compare(raw, node, info.structure, builder.eol, nested=False)


# -- Large inputs: linear work and the limits ---------------------------------


def test_ten_thousand_parts() -> None:
    """10 MB in 10,000 parts: parsed, and MAX_PARTS holds (the root counts,
    so the last part is the rest of the body, one opaque part)."""
    part = b"--b\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000 + b"\r\n"
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + part * 10_000
        + b"--b--\r\n"
    )
    info = check_message(raw)
    parts = info.structure.parts
    assert len(parts) == MAX_PARTS
    assert parts[0].size == 1000
    last = parts[-1]
    assert last.content_type == "application/octet-stream"
    assert raw[last.body_start :].startswith(b"Content-Type: text/plain\r\n")
    assert raw[last.end :] == b"\r\n--b--\r\n"


def test_millions_of_empty_parts_are_bounded() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n" * 2_000_000
    info = parse_message(raw)
    parts = info.structure.parts
    assert len(parts) == MAX_PARTS
    assert parts[-1].end == len(raw)
    assert MessageInfo.from_json(info.to_json()) == info


def test_parts_limit_inside_nested_multiparts() -> None:
    """The rest of a nested multipart ends at its own close delimiter; the
    outer multipart then gets its rest too."""
    inner = b"--i\r\n\r\nx\r\n" * (MAX_PARTS + 10) + b"--i--\r\n"
    raw = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        b"Content-Type: multipart/mixed; boundary=i\r\n\r\n"
        + inner
        + b"--o\r\n\r\nafter\r\n--o--\r\n"
    )
    info = check_message(raw)
    first, rest = info.structure.parts
    assert raw[first.parts[-1].end :].startswith(b"\r\n--i--\r\n--o\r\n")
    assert raw[rest.body_start : rest.end] == b"\r\nafter"


def test_hundred_thousand_header_lines() -> None:
    header = b"".join(b"X-Header-%d: value %d\r\n" % (n, n) for n in range(100_000))
    raw = b"Subject: many\r\n" + header + b"From: a@b.test\r\n\r\nbody\r\n"
    info = check_message(raw)
    assert info.envelope.subject == "many"
    assert info.envelope.from_ == ((None, None, "a", "b.test"),)
    assert raw[info.structure.body_start :] == b"body\r\n"


def test_a_thousand_nested_multiparts() -> None:
    raw = b"".join(
        b"Content-Type: multipart/mixed; boundary=n%d\r\n\r\n--n%d\r\n" % (n, n)
        for n in range(1000)
    )
    info = check_message(raw + b"deepest\r\n")
    depth, part = 0, info.structure
    while part.parts:
        depth, part = depth + 1, part.parts[0]
    assert depth == MAX_DEPTH
    assert part.content_type == "application/octet-stream"


def test_a_thousand_nested_messages() -> None:
    raw = b"Subject: m\r\nContent-Type: message/rfc822\r\n\r\n" * 1000 + b"\r\nend\r\n"
    info = check_message(raw)
    depth, part = 0, info.structure
    while part.message is not None:
        depth, part = depth + 1, part.message.structure
    assert depth == MAX_DEPTH
    assert part.content_type == "application/octet-stream"


def test_addresses_are_bounded() -> None:
    """A To of 300,000 addresses keeps MAX_ADDRESSES, counted over the
    envelopes of the message and of those it encapsulates."""
    to = b"To: " + b"a@b.test, " * 300_000 + b"\r\n"
    inner = b"Content-Type: message/rfc822\r\n\r\n" + to + b"\r\nx\r\n"
    raw = to + b"Cc: c@d.test\r\n" + inner
    info = check_message(raw)
    assert len(info.envelope.to) == MAX_ADDRESSES
    assert info.envelope.cc == ()
    assert info.structure.message is not None
    assert info.structure.message.envelope.to == ()
    assert info.envelope.from_ == info.envelope.sender == ()


def test_many_delimiter_like_lines() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
        + b"--a\r\n-- b\r\n" * 100_000
        + b"--b--\r\n"
    )
    info = check_message(raw)
    assert len(info.structure.parts) == 1
