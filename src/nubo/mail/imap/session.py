"""One IMAP connection: state, reading, dispatch, answers (RFC 3501 §3, §5).

``Session.run`` greets, then reads bytes into the ``Parser`` and answers
its events one at a time: commands run in the order they arrived, and the
next bytes are read only when a command is done, so a client that pipelines
cannot make the server hold more than the parser's bounds (TCP holds the
rest). Handlers live in ``nubo.mail.imap.handlers``, one module per command
family; each returns the tagged ``Result`` and writes untagged lines with
``Session.write``. Before the tagged answer the session tells the client
what changed in its selected mailbox (RFC 3501 §7.4.1, §5.2), except that
FETCH, STORE and SEARCH never announce an expunge (§7.4.1).

Timeouts (RFC 3501 §5.4): 30 minutes of silence outside IDLE ends an
authenticated session with ``* BYE``; before login the bound is shorter, as
a connection that does not sign in only holds a slot. A client that keeps
sending malformed commands is disconnected after ``max_bad`` in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from nubo.accounts import Accounts
from nubo.accounts.models import User
from nubo.config import Config
from nubo.mail import mailstore as ms
from nubo.mail.imap import capabilities, response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.parser import (
    AppendData,
    AppendStart,
    Done,
    Event,
    NeedContinuation,
    Parser,
    Reject,
    SaslResponse,
)
from nubo.mail.imap.selected import SelectedMailbox
from nubo.mail.mailstore import Mailstore
from nubo.store.blobs import BlobStoreError
from nubo.store.database import describe_error
from nubo.store.events import EventBus

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
FLUSH_AT = 64 * 1024  # octets of answers buffered before they are written


class State(Enum):
    """RFC 3501 §3."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY = frozenset(State) - {State.LOGOUT}
NOT_AUTHENTICATED = frozenset({State.NOT_AUTHENTICATED})
AUTHENTICATED = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})


@dataclass(frozen=True)
class Result:
    """The tagged answer of a command (RFC 3501 §7.1)."""

    status: str = "OK"
    text: str = "completed"
    code: str | None = None


OK = Result()
ANSWERED = Result("", "")
"""Returned by a handler that wrote its tagged answer itself (STARTTLS)."""


class Sync(Enum):
    """What a command may tell of other sessions' changes before its answer."""

    FULL = "full"
    NO_EXPUNGE = "no expunge"  # FETCH, STORE, SEARCH (RFC 3501 §7.4.1)
    NONE = "none"


@dataclass(frozen=True)
class Route:
    """How the session runs one command type."""

    handler: Callable[[Session, Any], Awaitable[Result]]
    states: frozenset[State]
    sync: Sync = Sync.FULL
    uid_sync: Sync | None = None  # for the UID form, when it differs


@dataclass(frozen=True)
class SessionLimits:
    parser: Limits = field(default_factory=Limits)
    idle_timeout: float = 30 * 60.0
    """Silence that ends an authenticated session (RFC 3501 §5.4)."""
    login_timeout: float = 180.0
    """Silence that ends a session that has not signed in."""
    idle_keepalive: float = 120.0
    """During IDLE, an ``* OK`` this often keeps NAT tables warm."""
    max_bad: int = 20
    """Malformed commands in a row before the session is ended."""
    max_per_address: int = 50
    """Open connections one client address may hold, on both ports."""


@dataclass
class ImapServices:
    """What sessions share: the store, accounts and settings."""

    config: Config
    accounts: Accounts
    mailstore: Mailstore
    events: EventBus
    tls_context: ssl.SSLContext | None
    limits: SessionLimits
    loopback_is_secure: bool = True
    """Tests turn this off to see a client on another machine."""
    connections: Counter[str] = field(default_factory=Counter)
    """Open connections by client address, on every IMAP port."""


class ClientGone(Exception):
    """The client closed the connection or broke the TLS layer."""


class Session:
    """One client connection, from greeting to BYE."""

    def __init__(
        self,
        services: ImapServices,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        listener: str,
        implicit_tls: bool,
    ) -> None:
        self.services = services
        self.config = services.config
        self.mailstore = services.mailstore
        self.limits = services.limits
        self.reader = reader
        self.writer = writer
        self.listener = listener
        self.tls = implicit_tls
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer: str = str(peer[0])
        self.loopback = services.loopback_is_secure and _is_loopback(self.peer)
        self.state = State.NOT_AUTHENTICATED
        self.user: User | None = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[str] = set()
        self.parser = Parser(services.limits.parser)
        self._out = bytearray()
        self._bad_in_a_row = 0
        self.closing = False
        """Set by ``stop``: the server is shutting down."""
        self.waiting = True
        """Whether the session waits for the client (or IDLEs), so that a
        shutdown may interrupt it at once."""

    # -- what the session may do ---------------------------------------------

    @property
    def secure(self) -> bool:
        """Whether passwords may be sent: over TLS, or from this machine,
        as Dovecot treats local connections (RFC 3501 §11.1 asks for TLS)."""
        return self.tls or self.loopback

    @property
    def can_starttls(self) -> bool:
        return not self.tls and self.services.tls_context is not None

    def capability_line(self) -> str:
        return " ".join(capabilities.for_session(self))

    # -- output ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue an answer; ``flush`` sends it (big answers flush by size)."""
        self._out += data

    async def flush(self) -> None:
        if self._out:
            self.writer.write(bytes(self._out))
            self._out.clear()
        await self.writer.drain()

    async def write_big(self, data: bytes) -> None:
        """Queue ``data`` and flush when enough is waiting: FETCH of many
        messages streams instead of growing one buffer."""
        self._out += data
        if len(self._out) >= FLUSH_AT:
            await self.flush()

    # -- input ----------------------------------------------------------------

    def timeout(self) -> float:
        if self.state is State.NOT_AUTHENTICATED:
            return self.limits.login_timeout
        return self.limits.idle_timeout

    async def read_more(self, seconds: float) -> None:
        """Feed the parser the next bytes; TimeoutError, or ClientGone."""
        try:
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), seconds)
        except (ConnectionError, ssl.SSLError) as exc:
            raise ClientGone(str(exc)) from None
        if not data:
            raise ClientGone("closed by the client")
        self.parser.feed(data)

    async def next_event(self, seconds: float | None = None) -> Event:
        """The parser's next event, reading as needed; TimeoutError after
        ``seconds`` of silence (the session's timeout when None)."""
        while (event := self.parser.next_event()) is None:
            await self.read_more(self.timeout() if seconds is None else seconds)
        return event

    # -- the session ------------------------------------------------------------

    async def run(self) -> None:
        log.info("imap connect listener=%s peer=%s", self.listener, self.peer)
        try:
            self.write(
                response.untagged_status(
                    "OK", "nubo IMAP ready", f"CAPABILITY {self.capability_line()}"
                )
            )
            await self.flush()
            await self._loop()
        except ClientGone as exc:
            log.info("imap disconnect peer=%s reason=%s", self.peer, exc)
        except TimeoutError:
            log.info("imap autologout peer=%s", self.peer)
            await self._bye("Autologout: idle for too long")
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("imap disconnect peer=%s reason=%s", self.peer, exc)
        except asyncio.CancelledError:
            await self._bye("Server shutting down")
            raise
        finally:
            self.deselect()
            await self._close()

    async def _loop(self) -> None:
        while self.state is not State.LOGOUT and not self.closing:
            self.waiting = True
            event = await self.next_event()
            self.waiting = False
            await self.on_event(event)
            await self.flush()
        if self.closing and self.state is not State.LOGOUT:
            await self._bye("Server shutting down")

    async def on_event(self, event: Event) -> None:
        if isinstance(event, Command):
            await self.on_command(event)
        elif isinstance(event, Reject):
            await self.on_reject(event)
        elif isinstance(event, AppendStart):
            await self.on_append(event)
        elif isinstance(event, NeedContinuation):
            self.write(response.continuation("Ready for literal data"))
        elif isinstance(event, AppendData | Done | SaslResponse):
            # Only a handler that asked for these reads them; the parser
            # never produces them otherwise.
            log.warning("imap unexpected event=%s", type(event).__name__)

    async def on_reject(self, event: Reject) -> None:
        if event.tag is None:
            self.write(response.untagged_status(event.status, event.text, event.code))
        else:
            self.write(response.tagged(event.tag, event.status, event.text, event.code))
        if event.fatal:
            await self._bye("Too much data announced")
            self.state = State.LOGOUT
            return
        await self._count_bad(event.status == "BAD")

    async def _count_bad(self, bad: bool) -> None:
        self._bad_in_a_row = self._bad_in_a_row + 1 if bad else 0
        if self._bad_in_a_row >= self.limits.max_bad:
            await self._bye("Too many invalid commands")
            self.state = State.LOGOUT

    async def on_append(self, start: AppendStart) -> None:
        from nubo.mail.imap.handlers.append import append

        # append() refuses a client not signed in itself: a LITERAL+ message
        # must be read and dropped first, never taken for commands.
        result = await self._guarded(append(self, start))
        await self._finish(start.tag, result, Sync.FULL)

    async def on_command(self, command: Command) -> None:
        from nubo.mail.imap.handlers import ROUTES

        route = ROUTES.get(type(command))
        if route is None:
            result = Result("BAD", f"{command.label} is not supported")
            await self._finish(command.tag, result, Sync.NONE)
            return
        if self.state not in route.states:
            result = _wrong_state(self.state, route.states)
            await self._finish(command.tag, result, Sync.NONE)
            return
        result = await self._guarded(route.handler(self, command))
        sync = route.sync
        if getattr(command, "uid", False) and route.uid_sync is not None:
            sync = route.uid_sync
        await self._finish(command.tag, result, sync)

    async def _guarded(self, running: Awaitable[Result]) -> Result:
        """Run a handler; store errors become the protocol's NO."""
        try:
            return await running
        except ParseError as exc:
            return Result(exc.status, exc.text, exc.code)
        except ms.MailstoreError as exc:
            return _mailstore_answer(exc)
        except (SQLAlchemyError, BlobStoreError, OSError) as exc:
            if isinstance(exc, ConnectionError):
                raise
            log.warning("imap store failure error=%s", describe_error(exc))
            return Result("NO", "The store is not available now", "UNAVAILABLE")
        except (ClientGone, TimeoutError, asyncio.CancelledError):
            raise
        except Exception:
            # A bug must cost the client one command, not the connection.
            log.exception("imap command failed peer=%s", self.peer)
            return Result("NO", "Internal error; the operator can see why", "SERVERBUG")

    async def _finish(self, tag: str, result: Result, sync: Sync) -> None:
        if result is ANSWERED:
            return
        if sync is not Sync.NONE and self.selected is not None:
            await self.announce(expunge=sync is Sync.FULL)
        self.write(response.tagged(tag, result.status, result.text, result.code))
        await self._count_bad(result.status == "BAD")

    async def announce(self, *, expunge: bool, force: bool = False) -> None:
        """Tell the client what changed in the selected mailbox."""
        selected = self.selected
        if selected is None:
            return
        try:
            lines = await selected.sync(expunge=expunge, force=force)
        except ms.NoSuchMailbox:
            # RFC 3501 gives no way to stay in a mailbox that is gone.
            await self._bye("The selected mailbox was deleted")
            self.state = State.LOGOUT
            raise ClientGone("selected mailbox deleted") from None
        for line in lines:
            await self.write_big(line)

    # -- selection ---------------------------------------------------------------

    def deselect(self) -> None:
        if self.selected is not None:
            self.selected.close()
            self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    # -- TLS -----------------------------------------------------------------------

    async def start_tls(self) -> None:
        """Switch to TLS after ``OK Begin TLS`` (RFC 3501 §6.2.1). Bytes the
        client pipelined after STARTTLS were sent in the clear and are thrown
        away, so they cannot be taken for commands under TLS."""
        context = self.services.tls_context
        assert context is not None
        await self.flush()
        self.parser = Parser(self.limits.parser)
        try:
            await asyncio.wait_for(
                self.writer.start_tls(context), self.limits.login_timeout
            )
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            raise ClientGone(f"TLS handshake failed: {exc}") from None
        self.tls = True

    # -- the end -------------------------------------------------------------------

    async def _bye(self, text: str) -> None:
        self.write(response.untagged_status("BYE", text))
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.flush(), 5.0)

    async def _close(self) -> None:
        self._out.clear()
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5.0)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _wrong_state(state: State, allowed: frozenset[State]) -> Result:
    if state is State.NOT_AUTHENTICATED:
        return Result("BAD", "Sign in first (LOGIN or AUTHENTICATE)")
    if State.NOT_AUTHENTICATED in allowed:
        return Result("BAD", "Not allowed now: already signed in")
    return Result("BAD", "No mailbox selected (SELECT or EXAMINE first)")


def _mailstore_answer(exc: ms.MailstoreError) -> Result:
    """RFC 5530 response codes for the mailstore's refusals."""
    text = str(exc) or "refused"
    if isinstance(exc, ms.NoSuchMailbox):
        return Result("NO", text, "NONEXISTENT")
    if isinstance(exc, ms.MailboxExists):
        return Result("NO", text, "ALREADYEXISTS")
    if isinstance(exc, ms.QuotaExceeded):
        return Result("NO", text, "OVERQUOTA")
    if isinstance(exc, ms.MailboxHasChildren | ms.MailboxProtected):
        return Result("NO", text, "CANNOT")
    if isinstance(exc, ms.InvalidMailboxName | ms.InvalidSpecialUse):
        return Result("NO", text, "CANNOT")
    if isinstance(exc, ms.InvalidFlag):
        return Result("BAD", text)
    if isinstance(exc, ms.TemporaryFailure):
        return Result("NO", text, "UNAVAILABLE")
    return Result("NO", text)
