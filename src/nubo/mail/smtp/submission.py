"""Submission: members' mail clients sending through nubo (RFC 6409).

- AUTH PLAIN (RFC 4616) and LOGIN against ``Accounts.authenticate``: the
  password or an app password, the lockout applying per account and per
  client network. ``535 5.7.8`` for bad credentials, ``454 4.7.0`` while
  locked out (RFC 4954 §6). AUTH is offered only over TLS.
- MAIL FROM must be an address the user may send as (own address, an alias
  reaching them, either with a ``+tag``); so must every mailbox of the From
  and Sender fields. Otherwise ``553 5.7.1``. The null sender is refused.
- RCPT TO takes any address (that is what submission is for), but an
  unknown one of a hosted domain is refused at once with ``550 5.1.1``
  rather than bounced later. ``postmaster`` of a hosted domain always
  resolves (RFC 5321 §4.5.1); bare ``<postmaster>`` becomes the addresses
  of the administrators it reaches.
- ``submission_rate_limit`` messages per user per hour, counted in SQL so
  that every process shares it: past it, ``450 4.7.1`` and the client tries
  later.
- DATA: ``Received`` (without the client's address, see ``trace``), Date
  and Message-ID when missing (RFC 6409 §8), a DKIM signature of the From
  domain (RFC 6376), then the message is queued for every recipient (local
  ones go straight into their mailboxes) and a copy goes into the user's
  Sent mailbox. ``250`` once queued and copied.
- The Sent copy is never dropped in silence: when the user's quota has no
  room for it, the whole submission is refused before anything is queued,
  ``552 5.2.2`` (RFC 3463 §3.3), and the member makes room and sends again.

# Limitation: the room is checked before queueing and taken after, so a
# delivery into the user's own mailboxes in between can still fill them;
# then the message goes out (it is queued, refusing now would make the
# client send it twice) without its Sent copy, and only the log says so.
"""

from __future__ import annotations

import base64
import binascii
import logging

from aiosmtpd.smtp import MISSING, AuthResult, Envelope, Session

from nubo.accounts.auth import AuthStatus
from nubo.accounts.models import User
from nubo.mail import dkim
from nubo.mail.mailstore import MailstoreError
from nubo.mail.queue.errors import InvalidRecipient, QueueError
from nubo.mail.queue.store import split_recipient
from nubo.mail.smtp.handler import (
    Handler,
    Services,
    accept_recipient,
    accept_sender,
    check_recipient_count,
    transaction,
)
from nubo.mail.smtp.headers import HeaderFacts, missing_fields, read_header
from nubo.mail.smtp.protocol import SmtpProtocol, Transaction
from nubo.mail.smtp.replies import Refusal, hook, reply
from nubo.mail.trace import received, with_protocol
from nubo.store.ratelimit import RateLimits

log = logging.getLogger(__name__)

RATE_WINDOW = 3600.0  # submission_rate_limit counts per hour

INVALID = reply(535, "5.7.8", "Authentication credentials invalid")
LOCKED = reply(454, "4.7.0", "Temporary authentication failure, try again later")
NOT_YOURS = "Sender address not owned by the authenticated user"


class SubmissionHandler(Handler):
    """Hooks and AUTH mechanisms of ``submission`` and ``submissions``."""

    def __init__(self, services: Services, listener: str = "submission") -> None:
        super().__init__(services)
        self.listener = listener
        self.rates = RateLimits(services.db)

    # -- AUTH (RFC 4954) ------------------------------------------------------

    async def auth_PLAIN(self, server: SmtpProtocol, args: list[str]) -> AuthResult:
        """RFC 4616: authzid NUL authcid NUL passwd, in base64."""
        response = await _response(server, args, "")
        if response is None:
            return AuthResult(success=False, handled=True)
        parts = response.split(b"\0")
        if len(parts) != 3:
            await server.push("501 5.5.2 Cannot split the PLAIN response")
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:
            # No one may act for another user here.
            return AuthResult(success=False, handled=False, message=INVALID)
        return await self._authenticate(server, login, password)

    async def auth_LOGIN(self, server: SmtpProtocol, args: list[str]) -> AuthResult:
        """The LOGIN mechanism: user name, then password, each in base64."""
        login = await _response(server, args, "Username:")
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        assert isinstance(password, bytes)
        return await self._authenticate(server, login, password)

    async def _authenticate(
        self, server: SmtpProtocol, login: bytes, password: bytes
    ) -> AuthResult:
        try:
            address, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False, message=INVALID)
        result = await self.services.accounts.authenticate(
            address, secret, server.client_ip or ""
        )
        if result.ok:
            return AuthResult(success=True, auth_data=result.user)
        message = LOCKED if result.status is AuthStatus.LOCKED else INVALID
        return AuthResult(success=False, handled=False, message=message)

    # -- the transaction ------------------------------------------------------

    @hook
    async def handle_MAIL(
        self,
        server: SmtpProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        user = _user(session)
        if address == "<>" or not await self._may_send_as(user, address):
            raise Refusal(553, "5.7.1", NOT_YOURS)
        limit = self.config.submission_rate_limit
        if limit and await self.rates.count(_subject(user), RATE_WINDOW) >= limit:
            raise _rate_limited()
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
        check_recipient_count(server, envelope)
        accounts = self.services.accounts
        if "@" not in address:
            return await self._bare_postmaster(envelope, address, options)
        try:
            _normalized, domain = split_recipient(address)
        except InvalidRecipient:
            raise Refusal(501, "5.1.3", "Bad recipient address syntax") from None
        if (
            not await accounts.resolve(address)
            and await accounts.find_domain(domain) is not None
        ):
            raise Refusal(550, "5.1.1", "No such user here")
        return accept_recipient(envelope, address, options)

    async def _bare_postmaster(
        self, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """``RCPT TO:<postmaster>`` (RFC 5321 §4.5.1), the one address without
        a domain that resolves. The queue keeps addresses with a domain, so
        the recipients are the addresses of the users it reaches."""
        reached = await self.services.accounts.resolve(address)
        if not reached:
            raise Refusal(501, "5.1.3", "Bad recipient address syntax")
        envelope.rcpt_tos.extend(user.address for user in reached[:-1])
        return accept_recipient(envelope, reached[-1].address, options)

    @hook
    async def handle_DATA(
        self, server: SmtpProtocol, session: Session, envelope: Envelope
    ) -> str:
        user = _user(session)
        tx = transaction(envelope)
        raw = tx.original_content or b""
        facts = read_header(raw)
        author = await self._check_authors(user, facts)

        added = missing_fields(facts, self.config.hostname)
        message = self._trace(server, session, tx) + added + raw
        signed = await self._sign(message, author) + message

        await self._check_sent_room(user, len(signed))
        limit = self.config.submission_rate_limit
        if limit and not await self.rates.hit(_subject(user), limit, RATE_WINDOW):
            raise _rate_limited()
        queue_id = await self._enqueue(tx, signed, user)
        await self._copy_to_sent(user, signed)

        server.messages += 1
        log.info(
            "smtp message listener=%s id=%s queue_id=%d user_id=%d size=%d "
            "recipients=%d result=queued",
            self.listener,
            tx.token,
            queue_id,
            user.id,
            len(signed),
            len(tx.rcpt_tos),
        )
        return reply(250, "2.0.0", f"OK queued as {queue_id}")

    async def _enqueue(self, tx: Transaction, message: bytes, user: User) -> int:
        """The queue id, or the reply for what the queue refused.

        RCPT checked every address with the queue's own ``split_recipient``
        and MAIL FROM took only the user's addresses, so no refusal is
        expected here; should one come (a rule of the queue changing), the
        client gets a reply, not a dropped connection.
        """
        try:
            return await self.services.outbound.enqueue(
                tx.mail_from or "", tx.rcpt_tos, message, user_id=user.id
            )
        except InvalidRecipient:
            raise Refusal(550, "5.1.3", "Bad recipient address syntax") from None
        except QueueError as exc:
            log.warning(
                "smtp message not queued listener=%s id=%s reason=%s",
                self.listener,
                tx.token,
                exc,
            )
            raise Refusal(
                451, "4.3.0", "Cannot queue the message now, try again later"
            ) from None

    async def _may_send_as(self, user: User, address: str) -> bool:
        return await self.services.accounts.may_send_as(user.id, address)

    async def _check_authors(self, user: User, facts: HeaderFacts) -> str:
        """The first From mailbox, once every From and Sender one is the
        user's (RFC 6409 §8.1 lets the server refuse what it cannot vouch for)."""
        if not facts.has_from:
            raise Refusal(
                550, "5.6.0", "Message has no From field (RFC 5322 section 3.6)"
            )
        if not facts.authors:
            raise Refusal(553, "5.7.1", "From field holds no address")
        for author in facts.authors:
            if not await self._may_send_as(user, author):
                raise Refusal(553, "5.7.1", "From address not owned by the user")
        return facts.authors[0]

    def _trace(self, server: SmtpProtocol, session: Session, tx: Transaction) -> bytes:
        protocol = with_protocol(
            esmtp=session.extended_smtp, tls=server.tls, auth=True, utf8=tx.smtp_utf8
        )
        return received(
            helo=self.listener,  # not the client's EHLO name, see ``trace``
            client_ip=None,
            hostname=self.config.hostname,
            protocol=protocol,
            token=tx.token,
        )

    async def _sign(self, message: bytes, author: str) -> bytes:
        """The DKIM-Signature of the author's domain (RFC 6376 §3.5)."""
        domain = await self.services.accounts.find_domain(author.rpartition("@")[2])
        if domain is None:
            return b""  # cannot happen: the user may send as the author
        key = await dkim.ensure_key(
            self.services.db, domain.id, self.config.dkim_selector
        )
        try:
            return await dkim.sign_async(message, key, domain.name)
        except dkim.SigningError:
            raise Refusal(550, "5.6.0", "Message header does not parse") from None

    async def _check_sent_room(self, user: User, size: int) -> None:
        """Refuse the submission when the Sent copy would not fit the quota:
        a message that goes out without its copy is lost to its author."""
        try:
            used, quota = await self.services.mailstore.usage(user.id)
        except MailstoreError:
            return  # storing the copy will say what is wrong
        if quota and used + size > quota:
            raise Refusal(
                552, "5.2.2", "Your mailbox is full; the copy for Sent cannot be saved"
            )

    async def _copy_to_sent(self, user: User, message: bytes) -> None:
        try:
            await self.services.mailstore.append_special(user.id, "Sent", message)
        except MailstoreError as exc:
            # Limitation: the message is queued already (see the module
            # docstring): the member has no Sent copy, the log says why.
            log.warning("smtp sent copy not stored user_id=%d reason=%s", user.id, exc)


async def _response(server: SmtpProtocol, args: list[str], prompt: str) -> bytes | None:
    """The client's first response: given with AUTH, or asked for."""
    if len(args) == 1:
        answer = await server.challenge_auth(prompt)
        return None if answer is MISSING else answer
    if args[1] == "=":
        return b""  # an empty initial response (RFC 4954 §4)
    try:
        return base64.b64decode(args[1], validate=True)
    except binascii.Error:
        await server.push("501 5.5.2 Cannot decode base64")
        return None


def _user(session: Session) -> User:
    user = session.auth_data
    assert isinstance(user, User)  # aiosmtpd asks for AUTH before MAIL
    return user


def _subject(user: User) -> str:
    return f"submit:{user.id}"


def _rate_limited() -> Refusal:
    return Refusal(450, "4.7.1", "Sending rate limit reached, try again later")
