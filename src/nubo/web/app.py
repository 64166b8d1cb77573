"""The ASGI application served on the HTTP and HTTPS listeners.

This issue's surface is ``/healthz``: 200 when the metadata store and the blob
store answer, 503 otherwise, as JSON naming which part failed. Every answer
carries headers that keep browsers from loading anything from elsewhere.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nubo.runtime import Runtime

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


def build_app(runtime: Runtime) -> Starlette:
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

    return Starlette(
        routes=[Route("/healthz", healthz, methods=["GET", "HEAD"])],
        middleware=[Middleware(SecurityHeaders)],
    )
