"""A remote MX on loopback whose answers a test scripts, for the queue tests.

aiosmtpd on 127.0.0.1 and a free port, in its own thread (its Controller),
reached by the code under test through the ``mx_override`` setting. It
records what it accepted and counts connections; a test scripts::

    mx.rcpt["bob@remote.test"] = ["550 5.1.1 no such user"]   # per RCPT, in turn
    mx.data = ["451 4.3.0 try later"]                         # per DATA, in turn
    mx.data = [HANGUP]                                        # close, no reply
    mx.hold_after = 30       # the 31st DATA waits, unanswered, until release()
    mx.delay = 0.01          # each DATA takes this long

Scripted replies are used up in order; once a list is empty, the answer is
250. Only messages answered 250 count as ``delivered``. With ``tls=True``
it offers STARTTLS with a self-signed certificate; ``size_limit`` makes it
advertise SIZE; ``auth`` makes it require AUTH (after TLS) with one
user name and password.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from nubo.config import load
from nubo.tls import certificate_files

HANGUP = "hangup"


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    mail_options: tuple[str, ...]

    @property
    def message_id(self) -> str:
        return str(BytesHeaderParser().parsebytes(self.data)["Message-ID"] or "")


@dataclass
class ScriptedMX:
    tls_files: tuple[Path, Path] | None = None
    tls_broken: bool = False  # offers STARTTLS, but no handshake can succeed
    size_limit: int = 0
    smtputf8: bool = True
    auth: tuple[str, str] | None = None
    rcpt: dict[str, list[str]] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    hold_after: int | None = None
    delay: float = 0.0  # seconds each DATA takes
    delivered: list[Delivery] = field(default_factory=list)
    connections: int = 0
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    logins: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    @property
    def port(self) -> int:
        assert self._controller is not None
        return int(self._controller.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(d.message_id for d in self.delivered)

    def release(self) -> None:
        self.released.set()

    # -- aiosmtpd handler hooks ---------------------------------------------

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            script = self.rcpt.get(address)
            reply = script.pop(0) if script else "250 2.1.5 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self._lock:
            reply = self.data.pop(0) if self.data else "250 2.0.0 queued"
            hold = (
                self.hold_after is not None and len(self.delivered) >= self.hold_after
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        if hold:
            self.held.set()
            await asyncio.to_thread(self.released.wait)
            server.transport.close()
            return "451 4.3.0 held, never answered"
        if reply == HANGUP:
            server.transport.close()
            return "421 4.4.2 gone"
        if reply.startswith("250"):
            content = envelope.original_content or envelope.content
            assert isinstance(content, bytes)
            delivery = Delivery(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=content,
                tls=session.ssl is not None,
                mail_options=tuple(envelope.mail_options),
            )
            with self._lock:
                self.delivered.append(delivery)
        return reply

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert self.auth is not None
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        if ok:
            self.logins += 1
        return AuthResult(success=ok)

    # -- running ------------------------------------------------------------

    def start(self) -> None:
        kwargs: dict[str, Any] = {
            "decode_data": False,
            "enable_SMTPUTF8": self.smtputf8,
            "data_size_limit": self.size_limit or 10 * 1024 * 1024,
        }
        if self.tls_files is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls_files)
            if self.tls_broken:
                # Only TLS 1.0, which clients of TLS 1.2 and up refuse.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    context.minimum_version = ssl.TLSVersion.TLSv1
                    context.maximum_version = ssl.TLSVersion.TLSv1
            kwargs.update(tls_context=context, require_starttls=False)
        if self.auth is not None:
            kwargs.update(authenticator=self.authenticate, auth_require_tls=True)
        mx = self

        class Counting(Controller):
            def factory(self) -> SMTP:
                server = _CountingSMTP(self.handler, **self.SMTP_kwargs)
                server.mx = mx
                return server

        self._controller = Counting(
            self, hostname="127.0.0.1", port=_free_port(), **kwargs
        )
        self._controller.start()
        self.connections = 0  # the controller's own start-up probe

    def stop(self) -> None:
        self.released.set()
        if self._controller is not None:
            self._controller.stop()


class _CountingSMTP(SMTP):
    mx: ScriptedMX

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        with self.mx._lock:
            self.mx.connections += 1
        super().connection_made(transport)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for "mx.remote.test"."""
    config = load(environ={}).replace(data=str(folder), hostname="mx.remote.test")
    return certificate_files(config)


@contextmanager
def scripted_mx(**options: Any) -> Iterator[ScriptedMX]:
    mx = ScriptedMX(**options)
    mx.start()
    try:
        yield mx
    finally:
        mx.stop()


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    """Poll ``predicate`` (from a thread that may block) until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)
