"""Signing in: STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 3501 §6.2,
RFC 4616, RFC 4959 SASL-IR).

Passwords go only over TLS, or from a loopback address (RFC 3501 §11.1;
Dovecot treats local connections so too, which lets local tools and test
suites run without certificates). Before that, LOGIN and AUTHENTICATE get
``NO [PRIVACYREQUIRED]`` (RFC 5530) and CAPABILITY says LOGINDISABLED.
Checks go through ``Accounts.authenticate``: passwords and app passwords,
with its lockout; a locked account gets ``NO [UNAVAILABLE]``, so the
client does not retry a password that may be right.
"""

from __future__ import annotations

import logging

from nubo.accounts import AuthStatus
from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.parser import SaslResponse
from nubo.mail.imap.session import (
    ANSWERED,
    NOT_AUTHENTICATED,
    Result,
    Route,
    Session,
    State,
    Sync,
)

log = logging.getLogger(__name__)

PRIVACY = Result("NO", "Sign in over TLS first (STARTTLS)", "PRIVACYREQUIRED")
FAILED = Result("NO", "Authentication failed", "AUTHENTICATIONFAILED")
LOCKED = Result("NO", "Too many failed sign-ins; try again later", "UNAVAILABLE")


async def starttls(session: Session, _command: c.StartTLS) -> Result:
    """RFC 3501 §6.2.1: the OK goes in the clear, then the handshake."""
    if not session.can_starttls:
        return Result("BAD", "TLS is already active or not offered")
    tag = _command.tag
    session.write(response.tagged(tag, "OK", "Begin TLS negotiation now"))
    await session.start_tls()
    return ANSWERED


async def login(session: Session, command: c.Login) -> Result:
    """RFC 3501 §6.2.3."""
    if not session.secure:
        return PRIVACY
    return await _sign_in(session, command.userid, command.password)


async def authenticate(session: Session, command: c.Authenticate) -> Result:
    """RFC 3501 §6.2.2 with PLAIN (RFC 4616) and SASL-IR (RFC 4959)."""
    if command.mechanism.upper() != "PLAIN":
        return Result("NO", "Unsupported mechanism; use PLAIN", "CANNOT")
    if not session.secure:
        return PRIVACY
    answer = command.initial_response
    if answer is None:
        session.parser.expect_sasl()
        session.write(b"+ \r\n")
        await session.flush()
        event = await session.next_event()
        if not isinstance(event, SaslResponse):
            return Result("BAD", "Expected a SASL response line")
        if event.data is None:
            return Result("BAD", "Authentication cancelled")
        answer = event.data
    parts = answer.split(b"\x00")
    if len(parts) != 3:
        return Result("BAD", "Malformed PLAIN response")
    try:
        authzid, authcid, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        return Result("BAD", "PLAIN response is not UTF-8")
    if authzid and authzid.lower() != authcid.lower():
        return Result("NO", "Signing in as another user is not allowed", "AUTHZFAILED")
    return await _sign_in(session, authcid, password)


async def _sign_in(session: Session, userid: str, password: str) -> Result:
    result = await session.services.accounts.authenticate(
        userid, password, session.peer
    )
    if result.status is AuthStatus.LOCKED:
        log.info("imap login locked peer=%s", session.peer)
        return LOCKED
    if not result.ok or result.user is None:
        log.info("imap login failed peer=%s", session.peer)
        return FAILED
    session.user = result.user
    session.state = State.AUTHENTICATED
    await session.mailstore.ensure_mailboxes(result.user.id)
    log.info("imap login user_id=%d peer=%s", result.user.id, session.peer)
    return Result("OK", "Logged in", f"CAPABILITY {session.capability_line()}")


ROUTES: dict[type[Command], Route] = {
    c.StartTLS: Route(starttls, NOT_AUTHENTICATED, Sync.NONE),
    c.Login: Route(login, NOT_AUTHENTICATED, Sync.NONE),
    c.Authenticate: Route(authenticate, NOT_AUTHENTICATED, Sync.NONE),
}
