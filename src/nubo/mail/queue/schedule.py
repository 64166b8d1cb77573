"""What becomes of a recipient after an attempt: sent, retried or bounced.

Pure rules, no I/O. A 2yz reply is delivery. A 5yz reply is a bounce at
once (RFC 5321 §4.2.1: the same request would fail again). Anything else is
retried after a wait that starts at ``queue_first_retry`` and doubles up to
``queue_max_retry``, until ``queue_retry_for`` has passed since the message
was queued: then the last temporary failure becomes a bounce, with its own
4.x.x status, as RFC 3464 §2.3.4 allows for "failed". The last retry is
moved to the expiry time so a message is tried once more before it bounces.
The sender hears of a delay once, after ``queue_delay_notice_after``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from nubo.config import Config
from nubo.mail.queue.model import Leased
from nubo.mail.queue.reply import Reply

# Doubling past this many attempts cannot stay under any sane maximum wait;
# capping the exponent keeps the float finite.
_MAX_DOUBLINGS = 40


class Report(Enum):
    """The DSN entry (RFC 3464 §2.3.3, Action) an attempt calls for."""

    FAILED = "failed"
    DELAYED = "delayed"


@dataclass(frozen=True)
class Policy:
    first_retry: float
    max_retry: float
    retry_for: float
    delay_notice_after: float

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        return cls(
            first_retry=config.queue_first_retry,
            max_retry=config.queue_max_retry,
            retry_for=config.queue_retry_for,
            delay_notice_after=config.queue_delay_notice_after,
        )

    def wait(self, attempts: int) -> float:
        """Seconds before the next try, after ``attempts`` attempts (>= 1)."""
        doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
        return float(min(self.first_retry * 2**doublings, self.max_retry))

    def expires(self, created_at: datetime) -> datetime:
        return created_at + timedelta(seconds=self.retry_for)


@dataclass(frozen=True)
class Decision:
    """The new state of one recipient row after an attempt."""

    row: Leased
    reply: Reply
    state: str  # "sent", "queued" or "bounced"
    next_attempt_at: datetime | None  # for "queued"
    report: Report | None  # a DSN entry to send the sender
    expired: bool = False  # bounced because retrying ran out of time


def decide(policy: Policy, row: Leased, reply: Reply, now: datetime) -> Decision:
    if reply.sent:
        return Decision(row, reply, "sent", None, None)
    if reply.permanent:
        return Decision(row, reply, "bounced", None, Report.FAILED)

    expires = policy.expires(row.created_at)
    if now >= expires:
        return Decision(row, reply, "bounced", None, Report.FAILED, expired=True)

    wait = timedelta(seconds=policy.wait(row.attempts + 1))
    next_attempt_at = min(now + wait, expires)
    notice_due = now - row.created_at >= timedelta(seconds=policy.delay_notice_after)
    report = Report.DELAYED if notice_due and not row.delay_notified else None
    return Decision(row, reply, "queued", next_attempt_at, report)
