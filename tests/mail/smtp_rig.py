"""The SMTP listeners in the test's own event loop, and clients to drive them.

``smtp_rig(mail, **settings)`` starts the three SMTP listeners (smtp,
submission, submissions) on free loopback ports over a mailstore rig (the
``mail`` fixture: each storage pair) with the real services: accounts,
mailstore, resolver and the outbound queue (its workers only when asked).
Users: ann and bob at example.org, carol at example.com (hosted too).

``Raw`` speaks SMTP byte for byte over asyncio streams, for framing and
limits; ``smtplib`` runs in a thread (``in_thread``) because the server
shares the test's loop.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from nubo.accounts import Accounts
from nubo.accounts.clock import Clock
from nubo.mail.dns import Resolver
from nubo.mail.queue import Outbound
from nubo.mail.smtp import Services, SmtpListener, smtp_listeners
from nubo.server import bind_socket
from nubo.tls import server_context
from tests.mail.mailstore_rig import MailRig

PASSWORD = "correct horse battery"
HOST = "mx.example.org"

T = TypeVar("T")


@dataclass
class SmtpRig:
    mail: MailRig
    services: Services
    listeners: dict[str, SmtpListener]
    users: dict[str, int]

    def port(self, name: str = "smtp") -> int:
        return self.listeners[name].address[1]

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts


@asynccontextmanager
async def smtp_rig(
    mail: MailRig,
    *,
    workers: bool = False,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[SmtpRig]:
    values: dict[str, Any] = {
        "hostname": HOST,
        "smtp_verify": False,
        "queue_poll_interval": 0.2,
    }
    values.update(settings)
    config = mail.config.replace(**values)
    accounts = Accounts(mail.db, config, clock=clock)
    resolver = Resolver.from_config(config)
    outbound = Outbound(
        config, mail.db, mail.blobs, mail.bus, mail.store, accounts, resolver
    )
    services = Services(config, mail.db, accounts, mail.store, resolver, outbound)

    users = {}
    for domain in ("example.org", "example.com"):
        await accounts.add_domain(domain)
    for address in ("ann@example.org", "bob@example.org", "carol@example.com"):
        users[address] = (await accounts.add_user(address, PASSWORD)).id

    names = ("smtp", "submission", "submissions")
    sockets = {name: bind_socket(name, "127.0.0.1", 0) for name in names}
    listeners = smtp_listeners(config, services, sockets, server_context(config))
    for listener in listeners:
        await listener.start()
    if workers:
        await outbound.start()
    try:
        yield SmtpRig(mail, services, {x.name: x for x in listeners}, users)
    finally:
        for listener in listeners:
            await listener.stop(1.0)
        if workers:
            await outbound.stop(1.0)


def client_tls() -> ssl.SSLContext:
    """A client context that takes the rig's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


def submit(
    port: int,
    sender: str,
    recipients: list[str],
    message: bytes,
    *,
    user: str | None = None,
    password: str = PASSWORD,
    implicit_tls: bool = False,
) -> dict[str, tuple[int, bytes]]:
    """Send with smtplib through submission (STARTTLS) or submissions."""
    login = user or sender
    if implicit_tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            "127.0.0.1", port, context=client_tls(), timeout=30
        )
    else:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    with client:
        if not implicit_tls:
            client.starttls(context=client_tls())
        client.login(login, password)
        return client.sendmail(sender, recipients, message)


class Raw:
    """An SMTP client that writes exactly the bytes it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, tls: bool = False) -> Raw:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_tls() if tls else None
        )
        raw = cls(reader, writer)
        greeting = await raw.reply()
        assert greeting.startswith("220 "), greeting
        return raw

    async def reply(self, wait: float = 10.0) -> str:
        """One reply, its lines joined by newlines; "" if the server closed."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), wait)
            if not line:
                return "\n".join(lines)
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if text[3:4] != "-":
                return "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str | bytes) -> str:
        data = line if isinstance(line, bytes) else line.encode()
        await self.send(data + b"\r\n")
        return await self.reply()

    async def ehlo(self, name: str = "client.example.net") -> str:
        return await self.command(f"EHLO {name}")

    async def starttls(self) -> None:
        assert (await self.command("STARTTLS")).startswith("220 ")
        await self.writer.start_tls(client_tls())

    async def rest(self, wait: float = 10.0) -> bytes:
        """Everything the server still sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), wait)

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
