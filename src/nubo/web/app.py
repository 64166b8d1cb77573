"""The ASGI application served on the HTTP and HTTPS listeners.

``/healthz``: 200 when the metadata store and the blob store answer, 503
otherwise, as JSON naming which part failed. Mail client autoconfiguration:
Thunderbird's (``autoconfig``), Outlook's (``autodiscover``) and Apple's
profile (``mobileconfig``). Every answer carries headers that keep browsers
from loading anything from elsewhere.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nubo.accounts.service import Accounts
from nubo.runtime import Runtime
from nubo.web import autoconfig, autodiscover, mobileconfig
from nubo.web.endpoints import ClientEndpoints

SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'self'; frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}


class SecurityHeaders:
    """Adds the privacy and framing headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_app(
    runtime: Runtime,
    endpoints: ClientEndpoints | None = None,
    accounts: Accounts | None = None,
) -> Starlette:
    """The application; ``endpoints`` default to the port settings and
    ``accounts`` to a service of its own (``nubo serve`` passes both)."""
    endpoints = endpoints or ClientEndpoints.from_config(runtime.config)
    accounts = accounts or Accounts(runtime.db, runtime.config)

    async def healthz(_request: Request) -> Response:
        database = await runtime.db.healthy()
        blobs = await runtime.blobs.healthy()
        ok = database and blobs
        body = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if database else "failing",
            "blobs": "ok" if blobs else "failing",
        }
        headers = {"cache-control": "no-store"}
        return JSONResponse(body, status_code=200 if ok else 503, headers=headers)

    routes = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    for module in (autoconfig, autodiscover, mobileconfig):
        routes += module.routes(endpoints, accounts)
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
    )
