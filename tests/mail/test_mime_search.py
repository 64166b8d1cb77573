"""Header text and the sent date for SEARCH (RFC 3501 §6.4.4), computed
once at delivery from the sample messages."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from nubo.mail.message import header_text, parse_message, search_headers, sent_date

MESSAGES = Path(__file__).parent / "messages"


def _search(name: str) -> dict[str, str]:
    raw = (MESSAGES / f"{name}.eml").read_bytes()
    return search_headers(raw, parse_message(raw))


def test_encoded_words_are_decoded_and_lowercased() -> None:
    assert _search("encoded_words") == {
        "from": "jörg müller <joerg@example.de>",
        "to": "françois <francois@example.fr>, привет <privet@example.ru>",
        "subject": "🍕 pizza tonight? “yes” or –no日本語",
        "date": "sat, 8 mar 2025 19:30:00 +0900",
        "message-id": "<ew-1@example.de>",
    }


def test_other_charsets() -> None:
    found = _search("non_utf8_charsets")
    assert found["from"] == "ваня <vanya@example.ru>"
    assert found["subject"] == "日本語 / €uro"


def test_raw_eight_bit_octets() -> None:
    """Fixed fault: a field mixing UTF-8 with Latin-1 octets was read all
    as Windows-1252, so "crème" (UTF-8) became "crã¨me" and a search for it
    found nothing. Each run now reads as what it is."""
    found = _search("eight_bit_headers")
    assert found["subject"] == "café crème and café"
    assert found["from"] == "jörg müller <joerg@example.de>"
    assert found["to"] == '"françois" <francois@example.fr>'


def test_repeated_fields_are_all_searchable() -> None:
    found = _search("duplicated_headers")
    assert found["subject"] == "first subject\nsecond subject"
    assert found["from"] == "first <first@example.net>\nsecond <second@example.net>"


def test_folded_and_odd_fields() -> None:
    found = _search("header_oddities")
    assert found["subject"] == "spaces around  the fold"
    assert found["message-id"] == "<folded-id@example.net>"
    assert found["from"] == "dana@example.net"


def test_broken_words_stay_as_written() -> None:
    found = _search("broken_encoded_words")
    assert found["subject"] == (
        "=?utf-8?b?!!!notbase64?= and =?utf-8?q?unterminated and "
        "=?utf-8?x?bad_encoding?="
    )
    assert found["to"] == "abc <x@example.org>"


def test_only_search_fields_are_kept() -> None:
    found = _search("simple_text")
    assert set(found) == {"from", "to", "subject", "date", "message-id"}
    assert "received" not in found


def test_header_text_of_all_fields() -> None:
    header = b"Subject: =?utf-8?q?caf=C3=A9?=\r\nX-Tag: One\r\nx-tag: Two\r\n\r\n"
    assert header_text(header) == {"subject": "café", "x-tag": "One\nTwo"}
    assert header_text(header, frozenset({"x-tag"})) == {"x-tag": "One\nTwo"}


def _aware(*args: int, hours: int = 0, minutes: int = 0) -> datetime.datetime:
    zone = datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))
    return datetime.datetime(*args, tzinfo=zone)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 04 Mar 2025 10:05:00 +0000", _aware(2025, 3, 4, 10, 5)),
        ("4 Mar 2025 10:05 -0530", _aware(2025, 3, 4, 10, 5, hours=-5, minutes=-30)),
        # RFC 5322 §4.3: two-digit years and zone names (obsolete).
        ("Tue, 4 Mar 25 10:05:00 EST", _aware(2025, 3, 4, 10, 5, hours=-5)),
        ("Tue, 04 Mar 2025 10:05:00 +0000 (UTC)", _aware(2025, 3, 4, 10, 5)),
        ("Tue,\r\n 04 Mar 2025 10:05:00 +0100", _aware(2025, 3, 4, 10, 5, hours=1)),
        # "-0000" and a missing zone: UTC (RFC 5322 §3.3).
        ("Fri, 14 Mar 2025 10:00:00 -0000", _aware(2025, 3, 14, 10)),
        ("Tue, 04 Mar 2025 10:05:00", _aware(2025, 3, 4, 10, 5)),
        ("not a date at all", None),
        ("31 Feb 2025 10:00 +0000", None),
        ("Tue, 04 Mar 2025 10:05:00 +9999", None),
        ("Mon, 1 Jan 99999 00:00:00 +0000", None),
        ("", None),
    ],
)
def test_sent_date(date: str, expected: datetime.datetime | None) -> None:
    info = parse_message(b"Date: " + date.encode() + b"\r\n\r\nbody\r\n")
    assert sent_date(info) == expected


def test_sent_date_absent() -> None:
    raw = (MESSAGES / "missing_date.eml").read_bytes()
    assert sent_date(parse_message(raw)) is None
