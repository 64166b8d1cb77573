"""Fixtures of the web tests: the app over a migrated store with one hosted
domain and one user, and HTTP clients that reach it without a socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from nubo.accounts import Accounts
from nubo.config import Config, load
from nubo.runtime import Runtime, open_runtime
from nubo.web.app import build_app
from nubo.web.endpoints import ClientEndpoints

# Ports no listener has by default, so a test cannot pass by reading settings.
ENDPOINTS = ClientEndpoints(
    hostname="mail.example.net",
    imap=1143,
    imaps=1993,
    submission=1587,
    submissions=1465,
)
ADDRESS = "alice@example.org"
PASSWORD = "correct horse battery"
# A client on the Internet (RFC 5737 documentation network).
REMOTE = "203.0.113.9"

MakeClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load(environ={}).replace(
        data=str(tmp_path / "data"),
        hostname=ENDPOINTS.hostname,
        password_time_cost=1,
        password_memory_kib=8,
    )


@pytest.fixture
async def runtime(config: Config) -> AsyncIterator[Runtime]:
    opened = await open_runtime(config)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def accounts(runtime: Runtime, config: Config) -> Accounts:
    """The domain example.org with its user alice."""
    service = Accounts(runtime.db, config)
    await service.add_domain("example.org")
    await service.add_user(ADDRESS, PASSWORD)
    return service


@pytest.fixture
def app(runtime: Runtime, accounts: Accounts) -> Starlette:
    return build_app(runtime, ENDPOINTS, accounts)


@pytest.fixture
async def make_client(app: Starlette) -> AsyncIterator[MakeClient]:
    """Clients of ``app`` for a base URL, from a peer address."""
    made: list[httpx.AsyncClient] = []

    def make(
        base_url: str = "https://example.org",
        peer: str = REMOTE,
        target: Starlette | None = None,
    ) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=target or app, client=(peer, 50000))
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
