"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nubo.mail.imap import utf7
from nubo.mail.imap.errors import ParseError


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("", ""),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("&", "&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        # RFC 3501 §5.1.3's own example.
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Gesendete Objekte 📨", "Gesendete Objekte &2D3c6A-"),
        ("x\ty", "x&AAk-y"),
        ("ä&ö", "&AOQ-&-&APY-"),
    ],
)
def test_encode_and_decode(name: str, wire: str) -> None:
    assert utf7.encode(name) == wire
    assert utf7.decode(wire.encode("ascii")) == name


@pytest.mark.parametrize(
    "wire",
    [
        b"Entw\xc3\xbcrfe",  # raw UTF-8 without UTF8=ACCEPT
        b"a\x00b",
        b"tab\there",
        b"&APw",  # never closed
        b"&APw=-",  # padding is not part of modified base64
        b"&AP/-",  # "/" is "," in modified base64
        b"&AGE-",  # encodes "a", which must stand for itself
        b"&AP-",  # 12 bits: not a whole UTF-16 unit
        b"&APx-",  # non-zero bits after the last octet
        b"&2D0-",  # an unpaired high surrogate
        b"&A-",  # one base64 digit is six bits
    ],
)
def test_malformed_names_are_refused(wire: bytes) -> None:
    with pytest.raises(ParseError):
        utf7.decode(wire)


def test_adjacent_shift_sequences_decode() -> None:
    # Not what an encoder writes, but unambiguous: accepted.
    assert utf7.decode(b"&AOQ-&APY-") == "äö"


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_round_trip(name: str) -> None:
    wire = utf7.encode(name)
    assert wire.isascii()
    assert utf7.decode(wire.encode("ascii")) == name


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=40))
def test_decode_raises_only_parse_errors(wire: bytes) -> None:
    try:
        name = utf7.decode(wire)
    except ParseError:
        return
    # Whatever decodes re-encodes to the same bytes, but for adjacent shifts.
    assert utf7.encode(name).encode("ascii") == wire or b"-&" in wire
