"""Message rows: what a message is parsed into once, and read back as.

At delivery a message is parsed once (``parse``): its structure as JSON
(``nubo.mail.message``), the decoded header text SEARCH matches (RFC 3501
§6.4.4) as JSON, and its Date in UTC. Neither the structure nor the search
text needs the bytes again, so FETCH and SEARCH never re-read a blob.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from nubo.mail import flags as fl
from nubo.mail.mailstore.models import MessageRow
from nubo.mail.message import parse_message, search_headers, sent_date
from nubo.store.schema import messages

# Columns of a MessageRow, without and with the parsed structure.
ROW = (
    messages.c.uid,
    messages.c.modseq,
    messages.c.flags,
    messages.c.keywords,
    messages.c.internal_date,
    messages.c.size,
    messages.c.blob_id,
    messages.c.sent_date,
)
ROW_INFO = (*ROW, messages.c.info)
# Everything a copy duplicates.
COPY = (*ROW_INFO, messages.c.search)


@dataclass(frozen=True)
class Prepared:
    """A message stored in the blob store and parsed, ready for rows."""

    blob_id: str
    size: int
    info_json: str
    search_json: str
    sent_date: datetime | None


def parse(raw: bytes) -> tuple[str, str, datetime | None]:
    """(structure JSON, search header JSON, sent date) of a message; never
    raises, whatever the bytes (the parser gives a best-effort structure)."""
    info = parse_message(raw)
    search = json.dumps(search_headers(raw, info), separators=(",", ":"))
    sent = sent_date(info)
    if sent is not None:
        try:
            sent = sent.astimezone(UTC)
        except (OverflowError, ValueError):
            sent = None  # a Date near year 1 or 9999 that UTC cannot hold
    return info.to_json(), search, sent


def internal_date(value: datetime | None) -> datetime:
    """INTERNALDATE (RFC 3501 §2.3.3): now, or the given time (naive is UTC)."""
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def new_values(
    message: Prepared,
    mailbox_id: int,
    uid: int,
    modseq: int,
    *,
    bits: int,
    keywords: str,
    when: datetime,
) -> dict[str, Any]:
    """The ``messages`` row of a new message."""
    return {
        "mailbox_id": mailbox_id,
        "uid": uid,
        "modseq": modseq,
        "flags": bits,
        "keywords": keywords,
        "internal_date": when,
        "sent_date": message.sent_date,
        "size": message.size,
        "blob_id": message.blob_id,
        "info": message.info_json,
        "search": message.search_json,
    }


def copied_values(
    row: Row[Any], mailbox_id: int, uid: int, modseq: int
) -> dict[str, Any]:
    """The ``messages`` row of a copy of ``row`` (read with ``COPY``)."""
    return {
        "mailbox_id": mailbox_id,
        "uid": uid,
        "modseq": modseq,
        "flags": row.flags,
        "keywords": row.keywords,
        "internal_date": row.internal_date,
        "sent_date": row.sent_date,
        "size": row.size,
        "blob_id": row.blob_id,
        "info": row.info,
        "search": row.search,
    }


def message_row(
    row: Row[Any],
    *,
    bits: int | None = None,
    keywords: str | None = None,
    modseq: int | None = None,
) -> MessageRow:
    """A ``MessageRow`` of a row read with ``ROW`` or ``ROW_INFO``, with
    flags and MODSEQ replaced when given (after a STORE)."""
    return MessageRow(
        uid=row.uid,
        modseq=row.modseq if modseq is None else modseq,
        flags=fl.flag_names(
            row.flags if bits is None else bits,
            row.keywords if keywords is None else keywords,
        ),
        internal_date=row.internal_date,
        size=row.size,
        blob_id=row.blob_id,
        info_json=row._mapping.get("info") or "",
        sent_date=row.sent_date,
    )
