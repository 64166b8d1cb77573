"""The MX: mail from the internet for the domains this server hosts.

RFC 5321 as a receiving server doing final delivery:

- MAIL FROM takes any sender, the null one (``<>``) included (RFC 5321
  §4.5.5); SIZE= is checked against ``max_message_size`` by aiosmtpd (552).
- RCPT TO: an address of no hosted domain is refused ``550 5.7.1`` (no
  relaying, RFC 5321 §3.6.2); one of a hosted domain that reaches no one
  ``550 5.1.1``; aliases, the catch-all and ``+tag`` resolve to users in the
  accounts service. ``postmaster`` of a hosted domain, and bare
  ``<postmaster>``, in any case, are always taken (RFC 5321 §4.5.1): the
  accounts service sends them to the administrators. A recipient whose
  every user is out of room (their usage, plus the SIZE= the client
  declared) gets ``452 4.2.2``: the sender keeps the message and tries
  later.
- DATA: the message gets ``Return-Path`` (final delivery, RFC 5321 §4.4),
  ``Received`` and, with ``smtp_verify``, ``Authentication-Results``
  (RFC 8601) on top of the exact bytes received, and goes into every user's
  Inbox in one ``Mailstore.deliver``: a user reached by several recipients
  gets it once. ``250`` is said only once it is stored for every user, or
  handed to the outbound queue for those it could not be stored for yet.

Partial failure (one user of several is over quota, or the store failed for
one): SMTP has one reply per message after DATA (RFC 5321 §4.2.5), so the
message is accepted and queued for the users who did not get it; the queue
retries a temporary failure and sends the sender a DSN (RFC 3464) for a
permanent one. When no user got it: ``552 5.2.2`` when every one is over
quota (RFC 3463 §3.3), ``451 4.3.0`` when the store failed (the sender
retries), ``550 5.1.1`` when the users vanished meanwhile.

# Limitation: Authentication-Results fields already in the message that
# claim this server's authserv-id are kept, not removed as RFC 8601 §5
# asks, because the stored bytes are exactly those received; ours is above
# them.
"""

from __future__ import annotations

import logging

from aiosmtpd.smtp import Envelope, Session

from nubo.accounts.models import User
from nubo.mail import authcheck
from nubo.mail.mailstore import MailstoreError, QuotaExceeded, UnknownUser
from nubo.mail.smtp.handler import (
    Handler,
    accept_recipient,
    accept_sender,
    check_recipient_count,
    domain_of,
    transaction,
)
from nubo.mail.smtp.protocol import SmtpProtocol, Transaction
from nubo.mail.smtp.replies import Refusal, hook, reply
from nubo.mail.trace import received, return_path, with_protocol

log = logging.getLogger(__name__)


class MxHandler(Handler):
    """Hooks of the MX listener (see the module docstring)."""

    listener = "smtp"

    @hook
    async def handle_MAIL(
        self,
        server: SmtpProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        return accept_sender(envelope, address, options)

    @hook
    async def handle_RCPT(
        self,
        server: SmtpProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        tx = transaction(envelope)
        check_recipient_count(server, tx)

        # A postmaster always resolves (RFC 5321 §4.5.1), the bare one too.
        accounts = self.services.accounts
        users = await accounts.resolve(address)
        if not users:
            if await accounts.find_domain(domain_of(address)) is None:
                raise Refusal(550, "5.7.1", "Relaying denied")
            raise Refusal(550, "5.1.1", "No such user here")
        if not any([await self._has_room(user, tx.declared_size) for user in users]):
            raise Refusal(452, "4.2.2", "Mailbox full, try again later")

        tx.users.update((user.id, user) for user in users)
        return accept_recipient(tx, address, options)

    async def _has_room(self, user: User, size: int | None) -> bool:
        """Whether the user's quota leaves room for ``size`` (or 1) bytes."""
        try:
            used, quota = await self.services.mailstore.usage(user.id)
        except MailstoreError:
            return True  # the delivery will say what is wrong
        return quota == 0 or used + (size or 1) <= quota

    @hook
    async def handle_DATA(
        self, server: SmtpProtocol, session: Session, envelope: Envelope
    ) -> str:
        tx = transaction(envelope)
        raw = tx.original_content or b""
        traced = await self._trace(server, session, tx, raw) + raw
        message = return_path(tx.mail_from or "") + traced

        results = await self.services.mailstore.deliver(list(tx.users), message)
        failed = {
            user_id: result
            for user_id, result in results.items()
            if isinstance(result, MailstoreError)
        }
        if len(failed) == len(results):
            self._log(server, tx, raw, "refused")
            raise _all_failed(list(failed.values()))
        if failed:
            # The queue adds its own Return-Path when it delivers them.
            await self._queue_failed(tx, failed, traced)

        server.messages += 1
        self._log(server, tx, raw, "delivered" if not failed else "partly-queued")
        return reply(250, "2.0.0", f"OK id={tx.token}")

    async def _trace(
        self, server: SmtpProtocol, session: Session, tx: Transaction, raw: bytes
    ) -> bytes:
        """Received and Authentication-Results, in that order (Return-Path
        goes on top at final delivery)."""
        helo = session.host_name or ""
        sender = "" if tx.mail_from == "<>" else (tx.mail_from or "")
        protocol = with_protocol(
            esmtp=session.extended_smtp, tls=server.tls, auth=False, utf8=tx.smtp_utf8
        )
        fields = received(
            helo=helo,
            client_ip=server.client_ip,
            hostname=self.config.hostname,
            protocol=protocol,
            token=tx.token,
        )
        if self.config.smtp_verify:
            fields += await self._verify(server, helo, sender, raw)
        return fields

    async def _verify(
        self, server: SmtpProtocol, helo: str, sender: str, raw: bytes
    ) -> bytes:
        """SPF, DKIM and DMARC (RFC 7208, RFC 6376, RFC 7489) as a header."""
        results = await authcheck.verify(
            raw,
            client_ip=server.client_ip or "",
            helo=helo,
            mail_from=sender,
            resolver=self.services.resolver,
            authserv_id=self.config.hostname,
        )
        return results.header().encode("utf-8", "surrogateescape")

    async def _queue_failed(
        self,
        tx: Transaction,
        failed: dict[int, MailstoreError],
        message: bytes,
    ) -> None:
        """Hand the users the store did not take to the queue, which retries
        them or bounces to the sender."""
        sender = "" if tx.mail_from == "<>" else (tx.mail_from or "")
        addresses = [tx.users[user_id].address for user_id in failed]
        queue_id = await self.services.outbound.enqueue(sender, addresses, message)
        log.info(
            "smtp message partly queued id=%s queue_id=%d users=%d",
            tx.token,
            queue_id,
            len(addresses),
        )

    def _log(
        self, server: SmtpProtocol, tx: Transaction, raw: bytes, result: str
    ) -> None:
        log.info(
            "smtp message listener=%s id=%s network=%s size=%d recipients=%d "
            "users=%d result=%s",
            self.listener,
            tx.token,
            server.network,
            len(raw),
            len(tx.rcpt_tos),
            len(tx.users),
            result,
        )


def _all_failed(errors: list[MailstoreError]) -> Refusal:
    """The one reply for a message no user could take."""
    if errors and all(isinstance(error, QuotaExceeded) for error in errors):
        return Refusal(552, "5.2.2", "Mailbox full")
    if errors and all(isinstance(error, UnknownUser) for error in errors):
        return Refusal(550, "5.1.1", "No such user here")
    return Refusal(451, "4.3.0", "Cannot store the message now, try again later")
