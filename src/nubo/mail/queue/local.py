"""Delivery to recipients of the domains this server hosts: into mailboxes.

A local recipient is resolved by the accounts service (aliases, catch-all,
plus-addressing) to the users it reaches; the message goes into each of
their Inboxes with one ``Mailstore.deliver`` call per message, so a user
reached through two recipients of one message gets it once. No reach is a
permanent 550 5.1.1 (RFC 3463 §3.2, bad destination mailbox address).

An alias that reaches several users can succeed for some and fail for
others (one is over quota): it then counts as sent, and each failed user's
own address is queued again on its own (``Local.split``), so that a retry
never delivers twice to those who have it; like other servers' "expanded
from" bounces, a DSN then names the user's address.

Each copy gets the trace fields of final delivery on top of the queued
bytes (RFC 5321 §4.4): ``Return-Path`` with the envelope sender and a
``Received`` line for this hop (``nubo.mail.trace``). The queued bytes, and
so the sender's Sent copy and what a remote host gets, stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from nubo.accounts.models import User
from nubo.mail.mailstore.errors import MailstoreError, QuotaExceeded, UnknownUser
from nubo.mail.queue.model import Leased
from nubo.mail.queue.reply import Reply, clean
from nubo.mail.trace import received, return_path


class MailDelivery(Protocol):
    """What the queue needs of ``nubo.mail.mailstore.Mailstore``."""

    async def deliver(
        self, user_ids: Sequence[int], raw: bytes
    ) -> Mapping[int, object]: ...


class Directory(Protocol):
    """What the queue needs of ``nubo.accounts.Accounts``."""

    async def resolve(self, address: str) -> list[User]: ...


DELIVERED = Reply(250, "2.0.0", "delivered to mailbox")
NO_SUCH_USER = Reply(550, "5.1.1", "no such user here")


@dataclass
class LocalOutcome:
    """Each row's reply, and the addresses to queue again on their own."""

    replies: dict[int, Reply] = field(default_factory=dict)
    split: dict[int, list[str]] = field(default_factory=dict)


async def deliver_local(
    mailstore: MailDelivery,
    directory: Directory,
    rows: Sequence[Leased],
    raw: bytes,
    *,
    hostname: str,
    now: datetime,
) -> LocalOutcome:
    """Deliver one message to its local recipient ``rows``, all of one
    queued message; ``hostname`` and ``now`` go into ``Received``."""
    outcome = LocalOutcome()
    reach: dict[int, list[User]] = {}
    for row in rows:
        users = await directory.resolve(row.recipient)
        if users:
            reach[row.id] = users
        else:
            outcome.replies[row.id] = NO_SUCH_USER

    user_ids = sorted({user.id for users in reach.values() for user in users})
    results: Mapping[int, object] = {}
    if user_ids:
        results = await mailstore.deliver(
            user_ids, _traced(rows[0], raw, hostname, now)
        )

    for row_id, users in reach.items():
        replies = [(user, _reply(results.get(user.id))) for user in users]
        failed = [(user, reply) for user, reply in replies if not reply.sent]
        permanent = [reply for _user, reply in failed if reply.permanent]
        if not failed:
            outcome.replies[row_id] = DELIVERED
        elif len(failed) < len(users):
            # Sent to some: the others are queued again on their own.
            outcome.replies[row_id] = DELIVERED
            outcome.split[row_id] = [user.address for user, _reply in failed]
        elif permanent and len(permanent) < len(failed):
            # The row bounces; the users that may still take it are retried.
            outcome.replies[row_id] = permanent[0]
            outcome.split[row_id] = [
                user.address for user, reply in failed if not reply.permanent
            ]
        else:
            outcome.replies[row_id] = failed[0][1]
    return outcome


def _traced(row: Leased, raw: bytes, hostname: str, now: datetime) -> bytes:
    """``raw`` with Return-Path and this hop's Received on top."""
    hop = received(
        helo="queue",
        client_ip=None,
        hostname=hostname,
        protocol=None,
        token=f"q{row.message_id}",
        when=now,
    )
    return return_path(row.sender) + hop + raw


def _reply(result: object) -> Reply:
    """The reply standing for one user's ``deliver`` result."""
    if result is None:
        return Reply(451, "4.3.0", "no result from the mailstore")
    if not isinstance(result, MailstoreError):
        return DELIVERED
    reason = clean(str(result)) or type(result).__name__
    if isinstance(result, QuotaExceeded):
        return Reply(552, "5.2.2", reason)  # RFC 3463 §3.3, mailbox full
    if isinstance(result, UnknownUser):
        return Reply(550, "5.1.1", reason)
    if result.temporary:
        return Reply(451, "4.3.0", reason)
    return Reply(554, "5.3.0", reason)
