"""Header text for SEARCH (RFC 3501 §6.4.4), computed once at delivery.

SEARCH FROM, TO, CC, BCC, SUBJECT and HEADER match substrings of header
text, case-insensitively; SENTBEFORE, SENTON and SENTSINCE compare the Date
header's date. The text here is decoded (RFC 2047 encoded-words, raw UTF-8
or Windows-1252 octets) so a search for "jörg" finds "=?utf-8?q?J=C3=B6rg?=".
Fields that occur more than once are joined with a line feed.
"""

from __future__ import annotations

import datetime
from email.utils import parsedate_to_datetime

from nubo.mail.mime.headers import decode_text
from nubo.mail.mime.model import MessageInfo
from nubo.mail.mime.scan import header_fields

SEARCH_FIELDS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "in-reply-to",
        "references",
        "date",
    }
)


def header_text(header: bytes, names: frozenset[str] | None = None) -> dict[str, str]:
    """Decoded text of the fields of a header block, by lowercase name;
    all fields, or only ``names``. Repeated fields are joined with "\\n"."""
    found: dict[str, list[str]] = {}
    for name, value in header_fields(header, 0, len(header), names):
        found.setdefault(name, []).append(decode_text(value.decode("latin-1")))
    return {name: "\n".join(values) for name, values in found.items()}


def search_headers(raw: bytes, info: MessageInfo) -> dict[str, str]:
    """The lowercased decoded text of the SEARCH fields of a message."""
    root = info.structure
    header = raw[root.header_start : root.body_start]
    return {
        name: text.lower() for name, text in header_text(header, SEARCH_FIELDS).items()
    }


def sent_date(info: MessageInfo) -> datetime.datetime | None:
    """The Date header (RFC 5322 §3.3) as an aware datetime, or None when it
    is absent or unreadable. A "-0000" or missing zone counts as UTC."""
    value = info.envelope.date
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(decode_text(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed
