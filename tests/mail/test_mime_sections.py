"""BODY[section] (RFC 3501 §6.4.5): section-spec syntax, part numbers and
the octets each section selects, on the example message of RFC 3501
§6.4.5 built part for part."""

from __future__ import annotations

import pytest

from nubo.mail.message import (
    Section,
    find_part,
    header_fields,
    parse_message,
    parse_section,
    section_range,
)


def _part(content_type: str, body: bytes) -> bytes:
    return b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body


def _multipart(subtype: str, boundary: bytes, parts: list[bytes]) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return _part(
        f"multipart/{subtype}; boundary={boundary.decode()}",
        body + b"--" + boundary + b"--",
    )


def _message(subject: bytes, entity: bytes) -> bytes:
    return b"Subject: " + subject + b"\r\nMIME-Version: 1.0\r\n" + entity


# The structure RFC 3501 §6.4.5 lists, with each body naming its part.
RFC3501_EXAMPLE = _message(
    b"top",
    _multipart(
        "mixed",
        b"top",
        [
            _part("text/plain", b"body 1"),
            _part("application/octet-stream", b"body 2"),
            _part(
                "message/rfc822",
                _message(
                    b"three",
                    _multipart(
                        "mixed",
                        b"three",
                        [
                            _part("text/plain", b"body 3.1"),
                            _part("application/octet-stream", b"body 3.2"),
                        ],
                    ),
                ),
            ),
            _multipart(
                "mixed",
                b"four",
                [
                    _part("image/gif", b"body 4.1"),
                    _part(
                        "message/rfc822",
                        _message(
                            b"four-two",
                            _multipart(
                                "mixed",
                                b"fourtwo",
                                [
                                    _part("text/plain", b"body 4.2.1"),
                                    _multipart(
                                        "alternative",
                                        b"alt",
                                        [
                                            _part("text/plain", b"body 4.2.2.1"),
                                            _part("text/richtext", b"body 4.2.2.2"),
                                        ],
                                    ),
                                ],
                            ),
                        ),
                    ),
                ],
            ),
        ],
    ),
)


@pytest.mark.parametrize(
    ("spec", "content_type"),
    [
        ("1", "text/plain"),
        ("2", "application/octet-stream"),
        ("3", "message/rfc822"),
        ("3.1", "text/plain"),
        ("3.2", "application/octet-stream"),
        ("4", "multipart/mixed"),
        ("4.1", "image/gif"),
        ("4.2", "message/rfc822"),
        ("4.2.1", "text/plain"),
        ("4.2.2", "multipart/alternative"),
        ("4.2.2.1", "text/plain"),
        ("4.2.2.2", "text/richtext"),
    ],
)
def test_rfc3501_part_numbers(spec: str, content_type: str) -> None:
    info = parse_message(RFC3501_EXAMPLE)
    part = find_part(info, [int(n) for n in spec.split(".")])
    assert part is not None
    assert part.content_type == content_type
    assert part.section == spec
    found = section_range(info, spec)
    assert found == (part.body_start, part.end)
    if not content_type.startswith(("multipart/", "message/")):
        assert RFC3501_EXAMPLE[found[0] : found[1]] == b"body " + spec.encode()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("HEADER", b"Subject: top\r\nMIME-Version: 1.0\r\n"),
        ("3.HEADER", b"Subject: three\r\nMIME-Version: 1.0\r\n"),
        ("4.2.HEADER", b"Subject: four-two\r\nMIME-Version: 1.0\r\n"),
        ("4.1.MIME", b"Content-Type: image/gif\r\n\r\n"),
        ("3.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        ("4.2.2.MIME", b"Content-Type: multipart/alternative; boundary=alt\r\n\r\n"),
    ],
)
def test_rfc3501_headers(spec: str, expected: bytes) -> None:
    info = parse_message(RFC3501_EXAMPLE)
    found = section_range(info, spec)
    assert found is not None
    assert RFC3501_EXAMPLE[found[0] : found[1]].startswith(expected)
    if spec.endswith("MIME"):
        assert RFC3501_EXAMPLE[found[0] : found[1]] == expected


@pytest.mark.parametrize(
    ("spec", "first_line"),
    [
        ("TEXT", b"--top\r\n"),
        ("3.TEXT", b"--three\r\n"),
        ("4.2.TEXT", b"--fourtwo\r\n"),
    ],
)
def test_rfc3501_texts(spec: str, first_line: bytes) -> None:
    info = parse_message(RFC3501_EXAMPLE)
    found = section_range(info, spec)
    assert found is not None
    text = RFC3501_EXAMPLE[found[0] : found[1]]
    assert text.startswith(first_line)
    boundary = first_line[2:-2]
    assert text.rstrip(b"\r\n").endswith(b"--" + boundary + b"--")


@pytest.mark.parametrize(
    "spec",
    [
        "5",  # no part 5
        "1.1",  # below a leaf
        "2.HEADER",  # HEADER and TEXT need a message/rfc822 part
        "2.TEXT",
        "4.HEADER",
        "4.3",
        "4.2.3",
        "4.2.2.3",
        "3.3",
    ],
)
def test_rfc3501_parts_that_do_not_exist(spec: str) -> None:
    assert section_range(parse_message(RFC3501_EXAMPLE), spec) is None


@pytest.mark.parametrize(
    ("spec", "section"),
    [
        ("", Section((), "", ())),
        ("HEADER", Section((), "HEADER", ())),
        ("text", Section((), "TEXT", ())),
        ("1", Section((1,), "", ())),
        ("4.2.2.1", Section((4, 2, 2, 1), "", ())),
        ("1.MIME", Section((1,), "MIME", ())),
        ("3.header", Section((3,), "HEADER", ())),
        ("3.TEXT", Section((3,), "TEXT", ())),
        (
            "HEADER.FIELDS (From Subject)",
            Section((), "HEADER.FIELDS", ("FROM", "SUBJECT")),
        ),
        (
            "2.header.fields.not (x-spam  received)",
            Section((2,), "HEADER.FIELDS.NOT", ("X-SPAM", "RECEIVED")),
        ),
        # Fixed fault: header-list items are astrings (RFC 3501 §9); a quoted
        # name kept its quotes and matched no field.
        (
            'HEADER.FIELDS ("From" "X-\\"Q\\"")',
            Section((), "HEADER.FIELDS", ("FROM", 'X-"Q"')),
        ),
    ],
)
def test_parse_section(spec: str, section: Section) -> None:
    assert parse_section(spec) == section


@pytest.mark.parametrize(
    "spec",
    [
        "0",
        "01",
        "1.0",
        "MIME",  # MIME needs a part number
        "HEADER.FIELDS",
        "HEADER.FIELDS ()",
        "HEADER (From)",
        "HEADER.FIELDS From",
        "1.X",
        "BODY",
        # Fixed fault: an empty item was read as nothing ("1." as "1").
        "1.",
        ".1",
        "1..2",
        "1.2.",
    ],
)
def test_parse_section_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_section(spec)


HEADER = (
    b"From: a@example.org\r\n"
    b"to: b@example.org\r\n"
    b"Subject: folded\r\n"
    b" over two lines\r\n"
    b"Not a field line\r\n"
    b"X-Empty:\r\n"
    b"Received: one\r\n"
    b"RECEIVED: two\r\n"
    b"\r\n"
)


@pytest.mark.parametrize(
    ("names", "exclude", "expected"),
    [
        (("TO",), False, b"to: b@example.org\r\n\r\n"),
        (
            ("subject", "x-empty"),
            False,
            b"Subject: folded\r\n over two lines\r\nX-Empty:\r\n\r\n",
        ),
        (("received",), False, b"Received: one\r\nRECEIVED: two\r\n\r\n"),
        (
            ("from", "to", "subject"),
            True,
            b"X-Empty:\r\nReceived: one\r\nRECEIVED: two\r\n\r\n",
        ),
        (("nothing",), False, b"\r\n"),
    ],
)
def test_header_fields(names: tuple[str, ...], exclude: bool, expected: bytes) -> None:
    """HEADER.FIELDS and HEADER.FIELDS.NOT (RFC 3501 §6.4.5): whole fields
    with their continuation lines, names compared case-insensitively, the
    empty line kept."""
    assert header_fields(HEADER, names, exclude) == expected
