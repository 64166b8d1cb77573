"""``nubo serve``: every listener in one asyncio loop, started and stopped
cleanly.

Start: check the settings, bind every listener, open the store (migrating
it) and load the TLS certificate, so that a taken port, an unreachable store
or a bad certificate stops the start; only then create the first
administrator on an empty store, and serve. The administrator comes last so
that a start that fails never prints a one-time password whose account the
next start won't show again. Each listener's actual address is printed on its
own line, ``listening NAME HOST:PORT``, named as its port setting is; a
port set to 0 lets the system choose.

Stop, on SIGTERM or SIGINT: stop accepting, let work in flight finish within
``shutdown_grace`` seconds, then close the store. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import ssl
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp

from nubo.accounts.addresses import display_domain
from nubo.accounts.bootstrap import bootstrap, first_admin
from nubo.accounts.errors import InvalidPassword
from nubo.accounts.service import Accounts
from nubo.config import Config, ConfigError
from nubo.mail.dns import Resolver
from nubo.mail.imap.listener import imap_listeners, session_limits
from nubo.mail.imap.session import ImapServices
from nubo.mail.mailstore import Mailstore
from nubo.mail.queue.outbound import Outbound
from nubo.mail.smtp import Services, smtp_listeners
from nubo.runtime import Runtime, open_runtime
from nubo.store.database import describe_error
from nubo.tls import certificate_files, server_context
from nubo.web.app import build_app
from nubo.web.endpoints import ClientEndpoints
from nubo.web.listener import DEFAULT_LIMITS, MAX_HEAD_BYTES, HttpLimits

log = logging.getLogger(__name__)


class ServeError(Exception):
    """The server cannot start (a port is taken, the store is unreachable)."""


class Listener(Protocol):
    """One listening socket and the protocol behind it."""

    name: str

    @property
    def address(self) -> tuple[str, int]: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...


def bind_socket(name: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a ServeError naming the listener."""
    family = (
        socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    )
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen {name} on {host}:{port}: {exc.strerror}"
        ) from None
    sock.setblocking(False)
    return sock


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: nubo's loop owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class HttpListener:
    """HTTP or HTTPS through uvicorn on a socket bound by nubo."""

    name: str
    app: ASGIApp
    sock: socket.socket
    grace: float
    tls_files: tuple[str, str] | None = None
    limits: HttpLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        certfile, keyfile = self.tls_files or (None, None)
        config = uvicorn.Config(
            self.app,
            # h11, not httptools: it bounds an unfinished request head.
            http=self.limits.protocol(),
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=True,
            proxy_headers=False,
            timeout_graceful_shutdown=int(self.grace) or 1,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = _EmbeddedUvicorn(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self.sock]), name=f"listener-{self.name}"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise ServeError(f"listener {self.name} stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self, grace: float) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace + 1)
        except TimeoutError:
            self._server.force_exit = True
            await self._task


def _format(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Each listener and the setting that holds its port.
LISTENER_PORTS = (
    ("http", "http_port"),
    ("https", "https_port"),
    ("smtp", "smtp_port"),
    ("submission", "submission_port"),
    ("submissions", "submissions_port"),
    ("imap", "imap_port"),
    ("imaps", "imaps_port"),
)


def check_ports(config: Config) -> None:
    """Two listeners set to one port (other than 0) is a setting error."""
    seen: dict[int, str] = {}
    for _name, setting in LISTENER_PORTS:
        port = int(config.values[setting])
        if port and port in seen:
            raise ConfigError(
                f"settings {seen[port]} and {setting}: both are {port}; "
                "each listener needs its own port"
            )
        seen.setdefault(port, setting)


def bind_sockets(config: Config) -> dict[str, socket.socket]:
    """Every listener's socket, bound; all closed again if one cannot be."""
    sockets: dict[str, socket.socket] = {}
    try:
        for name, setting in LISTENER_PORTS:
            sockets[name] = bind_socket(name, config.bind, config.values[setting])
    except ServeError:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


class Server:
    """The running nubo: its store and its listeners."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.runtime: Runtime | None = None
        self.listeners: list[Listener] = []
        self.outbound: Outbound | None = None
        self._sockets: dict[str, socket.socket] = {}
        self._stop = asyncio.Event()

    async def start(self) -> None:
        started = time.monotonic()
        # Everything that can fail comes before the first administrator.
        check_ports(self.config)
        first_admin(self.config)
        self._sockets = bind_sockets(self.config)
        self.runtime = await open_runtime(self.config)
        tls_context = server_context(self.config)

        services = self._services(self.runtime)
        self.listeners = self._make_listeners(self.runtime, services, tls_context)
        self._sockets = {}  # the listeners own them now
        await self._bootstrap(services.accounts)
        for listener in self.listeners:
            await listener.start()
            _say(f"listening {listener.name} {_format(listener.address)}")
        self.outbound = services.outbound
        await self.outbound.start()
        log.info("ready seconds=%.3f", time.monotonic() - started)

    def _services(self, runtime: Runtime) -> Services:
        config = self.config
        accounts = Accounts(runtime.db, config)
        mailstore = Mailstore(runtime.db, runtime.blobs, runtime.events)
        resolver = Resolver.from_config(config)
        outbound = Outbound(
            config,
            runtime.db,
            runtime.blobs,
            runtime.events,
            mailstore,
            accounts,
            resolver,
        )
        return Services(config, runtime.db, accounts, mailstore, resolver, outbound)

    def _make_listeners(
        self, runtime: Runtime, services: Services, tls_context: ssl.SSLContext
    ) -> list[Listener]:
        config = self.config
        cert, key = certificate_files(config)
        endpoints = ClientEndpoints.from_sockets(config, self._sockets)
        app = build_app(runtime, endpoints, services.accounts)
        grace = config.shutdown_grace
        sockets = self._sockets

        tls_files = (str(cert), str(key))
        limits = HttpLimits.from_config(config)
        listeners: list[Listener] = [
            HttpListener("http", app, sockets["http"], grace, None, limits),
            HttpListener("https", app, sockets["https"], grace, tls_files, limits),
        ]
        listeners += smtp_listeners(config, services, sockets, tls_context)
        imap = ImapServices(
            config,
            services.accounts,
            services.mailstore,
            runtime.events,
            tls_context,
            session_limits(config),
        )
        listeners += imap_listeners(config, imap, sockets, tls_context)
        return listeners

    async def _bootstrap(self, accounts: Accounts) -> None:
        created = await bootstrap(accounts, self.config)
        if created is None:
            return
        address, password = created
        local, _, domain = address.rpartition("@")
        address = f"{local}@{display_domain(domain)}"  # as the operator wrote it
        if password is None:
            _say(f"administrator {address} created with the configured password")
        else:
            # Shown once, on standard output only: it is never logged.
            _say(f"administrator {address} created; password (shown once): {password}")

    def request_stop(self) -> None:
        if self._stop.is_set():
            log.warning("second stop signal: stopping now")
            for listener in self.listeners:
                if isinstance(listener, HttpListener):
                    listener._server.force_exit = True
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        grace = self.config.shutdown_grace
        log.info("stopping grace=%.1fs", grace)
        await asyncio.gather(*(listener.stop(grace) for listener in self.listeners))
        for sock in self._sockets.values():
            sock.close()  # bound, but the start failed before a listener took it
        # After the listeners: a submission finishing within the grace may
        # still queue a message; the workers then finish within theirs.
        if self.outbound is not None:
            await self.outbound.stop(grace)
        if self.runtime is not None:
            await self.runtime.close()
        log.info("stopped")


def _say(line: str) -> None:
    print(line, flush=True)


async def serve(config: Config) -> int:
    """Run until SIGTERM or SIGINT; the exit status of ``nubo serve``."""
    server = Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)

    try:
        await server.start()
    except (ServeError, ConfigError) as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        await server.stop()
        return 1
    except InvalidPassword as exc:
        print(f"nubo: setting admin_password: {exc}", file=sys.stderr)
        await server.stop()
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"nubo: cannot open the store: {describe_error(exc)}", file=sys.stderr)
        await server.stop()
        return 1

    await server.wait()
    await server.stop()
    return 0
