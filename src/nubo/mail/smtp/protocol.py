"""aiosmtpd's SMTP protocol with nubo's bounds, replies and bookkeeping.

aiosmtpd (1.4.6 or later) does the framing: commands, the state machine,
STARTTLS (discarding plaintext pipelined after it, RFC 3207 §4.2), AUTH
exchanges (RFC 4954). ``SmtpProtocol`` adds what a server on the internet
needs on top:

- Enhanced status codes on every reply but the greeting and the EHLO/HELO
  answer (RFC 2034 §3), PIPELINING (RFC 2920) and ENHANCEDSTATUSCODES
  advertised in EHLO; aiosmtpd reads pipelined commands already.
- Its own DATA loop (``nubo.mail.smtp.data``): only CRLF.CRLF ends the data,
  smuggling attempts, long lines, huge headers and oversized data are
  refused with one reply after the whole data was read, in bounded memory.
- Timeouts that say so: a silent client gets ``421 4.4.2`` and is
  disconnected after ``smtp_command_timeout`` of silence (RFC 5321
  §4.5.3.2.7); a session longer than ``smtp_session_timeout`` likewise.
  Any octet from the client counts, inside DATA too (RFC 5321 §4.5.3.2.5):
  each arrival records its time, and the timer, when it fires, waits again
  for what is left of the timeout rather than being re-armed per read.
- A client that earns ``MAX_ERRORS`` error replies gets ``421 4.7.0``; the
  server's own limits (421, 452) do not count (``replies.is_client_error``).
- Command lines are limited to 512 octets (RFC 5321 §4.5.3.1.4), plus the
  SIZE and SMTPUTF8 parameters for MAIL (RFC 1870, RFC 6531); aiosmtpd
  grows that limit at every EHLO of every session, which is undone here.
  Where AUTH is offered, AUTH lines and the answers to its challenges may
  have ``AUTH_LIMIT`` octets (RFC 4954 §4).
- A shutdown that refuses what is new: idle sessions get ``421 4.3.2``, a
  message being stored is finished and answered first.
- One log line per session, with the client's network, never its address.

# Limitation: aiosmtpd closes a session after 5 unknown commands with
# "502 5.5.1" before MAX_ERRORS is reached; both end the session.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
import warnings
from dataclasses import dataclass
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, Envelope, _Missing

from nubo.accounts.models import User
from nubo.accounts.network import client_network
from nubo.config import Config
from nubo.mail.smtp.data import DataCollector
from nubo.mail.smtp.replies import is_client_error, with_status

log = logging.getLogger(__name__)

COMMAND_LIMIT = 512  # RFC 5321 §4.5.3.1.4, with CRLF
MAIL_LIMIT = COMMAND_LIMIT + 26 + 10  # SIZE (RFC 1870 §3), SMTPUTF8 (RFC 6531)
MAX_HEADER = 1024 * 1024  # octets of one message's header block
AUTH_LIMIT = 12288  # RFC 4954 §4: AUTH lines of at least 12288 octets, no CRLF
MAX_ERRORS = 20  # error replies before a session is closed (Postfix's hard limit)


@dataclass(frozen=True)
class Limits:
    """The bounds of one session, from the settings."""

    max_size: int
    max_recipients: int
    command_timeout: float
    session_timeout: float
    max_header: int = MAX_HEADER
    max_errors: int = MAX_ERRORS

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            max_size=config.max_message_size,
            max_recipients=config.smtp_max_recipients,
            command_timeout=config.smtp_command_timeout,
            session_timeout=config.smtp_session_timeout,
        )


class Transaction(Envelope):
    """aiosmtpd's envelope, with what nubo's handlers learn along the way."""

    def __init__(self) -> None:
        super().__init__()
        self.token = ""  # id of the transaction in Received and logs
        self.users: dict[int, User] = {}  # recipients' users, by id
        self.declared_size: int | None = None  # MAIL FROM's SIZE= (RFC 1870)


class SmtpProtocol(SMTP):
    """One SMTP session on one connection (see the module docstring)."""

    # aiosmtpd sizes its line reader with this; RFC 5321 §4.5.3.1.6 plus the
    # transparency dot.
    line_length_limit = 1001

    def __init__(
        self,
        handler: Any,
        *,
        listener: str,
        hostname: str,
        limits: Limits,
        tls_context: ssl.SSLContext | None,
        implicit_tls: bool,
        auth_required: bool,
        sessions: set[SmtpProtocol],
    ) -> None:
        # Per session, and set first so that aiosmtpd's clear() empties this
        # one rather than the dictionary its class shares with every session.
        self.command_size_limits = collections.defaultdict(lambda: COMMAND_LIMIT)
        if auth_required:
            # aiosmtpd sizes its stream reader with this: the AUTH line and
            # the answers to challenges must fit. Data lines keep their own
            # bound (``data.MAX_LINE``), other commands theirs below.
            self.line_length_limit = AUTH_LIMIT
        with warnings.catch_warnings():
            # aiosmtpd warns of AUTH required without STARTTLS required,
            # which implicit TLS is not.
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(
                handler,
                data_size_limit=limits.max_size,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname=hostname,
                ident="ESMTP",
                tls_context=None if implicit_tls else tls_context,
                require_starttls=False,
                timeout=limits.command_timeout,
                auth_required=auth_required,
                # The MX takes no AUTH at all (RFC 6409 §4.3 keeps it to
                # submission); aiosmtpd's own mechanisms are PLAIN, LOGIN.
                auth_exclude_mechanism=() if auth_required else ("PLAIN", "LOGIN"),
                # Over implicit TLS (RFC 8314 §3.3) the whole session is
                # encrypted, which aiosmtpd's STARTTLS-only check cannot see.
                auth_require_tls=not implicit_tls,
                loop=asyncio.get_running_loop(),
            )
        self.listener = listener
        self.limits = limits
        self.implicit_tls = implicit_tls
        self.sessions = sessions
        self.errors = 0
        self.messages = 0
        self.started = time.monotonic()
        self.network = "unknown"
        self.delivering = False
        self._greeted = False
        self._plain_replies = False  # while answering EHLO or HELO
        self._close_after_reply = False
        self._session_timer: asyncio.TimerHandle | None = None
        self.ended: asyncio.Future[None] = self.loop.create_future()
        self._last_arrival = self.loop.time()  # of data from the client
        if auth_required:
            self.command_size_limits["AUTH"] = AUTH_LIMIT

    # -- connection -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._session_timer is not None:
            return  # the TLS layer of a STARTTLS: the same session goes on
        self.sessions.add(self)
        peer = transport.get_extra_info("peername")
        self.network = client_network(peer[0]) if peer else "unknown"
        self._session_timer = self.loop.call_later(
            self.limits.session_timeout,
            self.say_and_close,
            "421 4.4.2 Session time limit reached, closing",
        )

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self.ended.done():
            return  # aiosmtpd calls this twice when a STARTTLS handshake fails
        self.ended.set_result(None)
        self.sessions.discard(self)
        if self._session_timer is not None:
            self._session_timer.cancel()
        log.info(
            "smtp session end listener=%s network=%s seconds=%.1f messages=%d "
            "errors=%d tls=%s",
            self.listener,
            self.network,
            time.monotonic() - self.started,
            self.messages,
            self.errors,
            "yes" if self.tls else "no",
        )

    @property
    def tls(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    @property
    def client_ip(self) -> str | None:
        # aiosmtpd reads every attribute while it starts (inspect.getmembers),
        # before there is a session: this must not raise.
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if peer else None

    def data_received(self, data: bytes) -> None:
        # A timestamp per read is all the timer needs (see ``_timeout_cb``).
        self._last_arrival = self.loop.time()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        """The command timer fired: close if the client stayed silent that
        long, else wait for the rest of the timeout since its last data."""
        silent = self.loop.time() - self._last_arrival
        left = self._timeout_duration - silent
        if left > 0:
            self._timeout_handle = self.loop.call_later(left, self._timeout_cb)
            return
        self.say_and_close("421 4.4.2 Timeout waiting for the client, closing")

    def say_and_close(self, line: str) -> None:
        """Write ``line`` and close, from outside the command loop."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        log.info(
            "smtp closing listener=%s network=%s reply=%s",
            self.listener,
            self.network,
            line[:9],
        )
        self._writer.write(line.encode("ascii") + b"\r\n")
        transport.close()

    def request_close(self) -> None:
        """Shutdown: close now if idle, else after the message being stored."""
        if self.delivering:
            self._close_after_reply = True
            return
        self.say_and_close("421 4.3.2 Service shutting down, try again later")

    def _create_envelope(self) -> Transaction:
        return Transaction()

    # -- replies --------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        line = status if isinstance(status, str) else status.decode("utf-8")
        if not self._greeted:
            self._greeted = True  # the greeting carries no status code
        elif not self._plain_replies:
            line = with_status(line)
        await super().push(line)

        if is_client_error(line):
            self.errors += 1
            if self.errors >= self.limits.max_errors:
                self.say_and_close("421 4.7.0 Too many errors, closing")

    async def smtp_EHLO(self, hostname: str) -> None:
        # Each line of the EHLO answer goes out as it is (RFC 2034 §3).
        self._plain_replies = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._plain_replies = False
        self.command_size_limits["MAIL"] = MAIL_LIMIT

    async def smtp_HELO(self, hostname: str) -> None:
        self._plain_replies = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._plain_replies = False

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.tls:
            await self.push("503 5.5.1 TLS already active")  # RFC 3207 §4
            return
        await super().smtp_STARTTLS(arg)

    async def challenge_auth(
        self,
        challenge: str | bytes,
        encode_to_b64: bool = True,
        log_client_response: bool = False,
    ) -> _Missing | bytes:
        """aiosmtpd's, with the answer's length bounded (RFC 4954 §4)."""
        try:
            return await super().challenge_auth(challenge, encode_to_b64)
        except ValueError:
            # StreamReader.readline gave up on a line longer than its limit
            # and dropped what it had; the rest of the line reads as a
            # command, which the client's AUTH state makes harmless.
            await self.push("500 5.5.6 Authentication Exchange line is too long")
            return MISSING

    # -- DATA (RFC 5321 §4.1.1.4) ---------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("554 5.5.1 No valid recipients")  # RFC 2920 §3.1
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return

        await self.push("354 End data with <CR><LF>.<CR><LF>")
        collector = DataCollector(self.limits.max_size, self.limits.max_header)
        if not await self._read_data(collector):
            return
        if collector.refusal is not None:
            self.envelope = self._create_envelope()
            await self.push(collector.refusal.line)
            return

        content = collector.content()
        self.envelope.content = content
        self.envelope.original_content = content
        self.delivering = True
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            self.delivering = False
        self.envelope = self._create_envelope()
        await self.push("250 2.0.0 OK" if status is MISSING else status)
        if self._close_after_reply:
            self.say_and_close("421 4.3.2 Service shutting down")

    async def _read_data(self, collector: DataCollector) -> bool:
        """Feed lines until the end of data; False if the client went away."""
        while True:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                line = await self._reader.read(overrun.consumed)
                collector.overlong(line)
            except asyncio.IncompleteReadError:
                return False
            else:
                if collector.feed(line):
                    return True
