"""What submission reads of a message's header: its authors, what it lacks.

Bytes in, facts out, no I/O; the fields are read with the mailstore's own
scanner (``nubo.mail.mime``), so a header that does not parse cleanly is read
the same way here as everywhere else.

- ``authors``: the addresses of the From and Sender fields (RFC 5322
  §3.6.2), which submission checks against what the user may send as.
- ``missing_fields``: the Date and Message-ID fields a submission server
  may add when the client left them out (RFC 6409 §8.2, §8.3).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from nubo.mail.mime.address import MISSING_DOMAIN, MISSING_MAILBOX, parse_address_list
from nubo.mail.mime.scan import Scanner, header_fields

_READ = frozenset({"from", "sender", "date", "message-id"})


@dataclass(frozen=True)
class HeaderFacts:
    """The header fields submission looks at."""

    authors: tuple[str, ...]  # mailboxes of From, then Sender
    has_from: bool
    has_date: bool
    has_message_id: bool


def read_header(raw: bytes) -> HeaderFacts:
    found = Scanner(raw).empty_line(0)
    end = len(raw) if found is None else found[0]
    fields = header_fields(raw, 0, end, _READ)
    names = {name for name, _value in fields}

    authors: list[str] = []
    for name in ("from", "sender"):
        for field_name, value in fields:
            if field_name == name:
                authors += _mailboxes(value.decode("utf-8", "replace"))
    return HeaderFacts(
        authors=tuple(authors),
        has_from="from" in names,
        has_date="date" in names,
        has_message_id="message-id" in names,
    )


def _mailboxes(value: str) -> list[str]:
    out = []
    for _name, _adl, mailbox, host in parse_address_list(value):
        if host is None:
            continue  # a group's start or end
        if mailbox in (None, MISSING_MAILBOX) or host == MISSING_DOMAIN:
            out.append("")  # an address nobody owns
            continue
        out.append(f"{mailbox}@{host}")
    return out


def missing_fields(facts: HeaderFacts, hostname: str) -> bytes:
    """Date and Message-ID fields for a header that lacks them."""
    added = b""
    if not facts.has_date:
        added += f"Date: {format_datetime(datetime.now(UTC))}\r\n".encode("ascii")
    if not facts.has_message_id:
        token = secrets.token_hex(16)
        added += f"Message-ID: <{token}@{hostname}>\r\n".encode("ascii", "replace")
    return added
