"""The queue's records: a leased recipient, a listed message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The largest queue id: both databases keep it as a signed 64-bit integer
# (SQLite INTEGER, PostgreSQL BIGINT), and a larger one cannot even be
# looked up.
MAX_QUEUE_ID = 2**63 - 1


@dataclass(frozen=True)
class Leased:
    """One recipient row leased for an attempt, with its message's fields."""

    id: int
    message_id: int
    recipient: str
    domain: str
    attempts: int  # attempts made before this one
    delay_notified: bool
    sender: str  # "" for a bounce
    blob_id: str
    size: int
    created_at: datetime


@dataclass(frozen=True)
class QueueEntry:
    """A message still queued, as ``nubo queue list`` shows it."""

    id: int
    sender: str
    size: int
    created_at: datetime
    recipients: int  # recipients not yet delivered or bounced
    attempts: int  # the most any of them had
    next_attempt_at: datetime  # the earliest of theirs
    last_reply: str | None
