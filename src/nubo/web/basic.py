"""HTTP Basic authentication (RFC 7617) through the accounts service.

Until the portal has its own sign-in, a page for the signed-in user (the
Apple profile) asks for the address and password with Basic, checked by
``Accounts.authenticate`` with its lockout, so a password or an app password
works and guessing is slowed as in every other protocol.

Basic sends the password merely encoded, so it is taken over HTTPS only;
over plain HTTP only from a loopback address, where nothing lies between the
client and nubo (the rule IMAP and submission follow). Elsewhere the answer
is 403 saying why, before any password is asked for or checked.

Answers: no or malformed credentials 401 with the challenge (RFC 7617 §2,
UTF-8 announced per §2.1); a wrong address or password 401 with the same
challenge; a locked account or network 429 (RFC 6585 §4), which tells the
person that retrying now is useless.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress

from starlette.exceptions import HTTPException
from starlette.requests import Request

from nubo.accounts.auth import AuthStatus
from nubo.accounts.models import User
from nubo.accounts.service import Accounts

REALM = "nubo"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}

PLAIN_HTTP_REFUSED = (
    "this page asks for your password, and HTTP Basic sends it readable by "
    "anyone on the way: open it with https:// (plain http:// is accepted only "
    "from the server's own machine)"
)


def credentials(request: Request) -> tuple[str, str] | None:
    """The user-id and password of an Authorization: Basic header, RFC 7617 §2;
    None when there is none or it does not decode."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None

    user_id, colon, password = decoded.partition(":")
    if not colon or not user_id:
        return None
    return user_id, password


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback address (IPv4-mapped ones too)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def signed_in_user(request: Request, accounts: Accounts) -> User:
    """The user the request's Basic credentials sign in, or the HTTP error."""
    client = request.client.host if request.client else ""
    if request.url.scheme != "https" and not is_loopback(client):
        raise HTTPException(403, PLAIN_HTTP_REFUSED)

    given = credentials(request)
    if given is None:
        raise HTTPException(401, "sign in with your address and password", CHALLENGE)

    result = await accounts.authenticate(given[0], given[1], client)
    if result.status is AuthStatus.LOCKED:
        raise HTTPException(429, "too many failed sign-ins: try again later")
    if result.user is None:
        raise HTTPException(401, "wrong address or password", CHALLENGE)
    return result.user
