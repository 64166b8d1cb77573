"""SMTP replies: the one exception handlers raise, and the enhanced codes.

A handler that refuses something raises ``Refusal`` with its reply code
(RFC 5321 §4.2), its enhanced status code (RFC 3463) and its text; the hook
wrapper (``replies.hook``) turns it into the line aiosmtpd writes. Replies
aiosmtpd itself writes carry no enhanced status code; ``with_status`` adds
the one their reply code implies, because a server that advertises
ENHANCEDSTATUSCODES must prefix every reply but the greeting and the answer
to EHLO or HELO (RFC 2034 §3).

::

    Exception
    └── Refusal        an SMTP reply that ends a command or a transaction
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import ParamSpec

_P = ParamSpec("_P")

# A reply line: code, separator, then text that may already hold a status.
_REPLY = re.compile(r"^([2-5])(\d\d)([ -])(.*)$", re.DOTALL)
_HAS_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(?: |$)")

# The status a bare reply code implies (RFC 3463 §3; RFC 5321 §4.2.3).
_DEFAULT_STATUS = {
    "500": "5.5.2",  # syntax error, command unrecognized or line too long
    "501": "5.5.4",  # syntax error in parameters
    "502": "5.5.1",  # command not implemented
    "503": "5.5.1",  # bad sequence of commands
    "504": "5.5.4",  # parameter not implemented
    "530": "5.7.0",  # authentication or STARTTLS required
    "535": "5.7.8",  # credentials invalid (RFC 4954 §6)
    "552": "5.3.4",  # message too big
    "553": "5.1.3",  # mailbox name not allowed
    "555": "5.5.4",  # MAIL or RCPT parameters not recognized
}


class Refusal(Exception):
    """An SMTP reply that refuses a command; ``str()`` is the reply line."""

    def __init__(self, code: int, status: str, text: str) -> None:
        super().__init__(f"{code} {status} {text}")
        self.code = code
        self.status = status
        self.text = text

    @property
    def line(self) -> str:
        return str(self)


def reply(code: int, status: str, text: str) -> str:
    """One reply line, as hooks return it."""
    return f"{code} {status} {text}"


def with_status(line: str) -> str:
    """``line`` with the enhanced status code its reply code implies, when it
    has none (RFC 2034 §3). 3yz replies (354, 334) carry none."""
    found = _REPLY.match(line)
    if found is None or found.group(1) == "3":
        return line
    klass, rest, separator, text = found.groups()
    if _HAS_STATUS.match(text):
        return line
    status = _DEFAULT_STATUS.get(klass + rest, f"{klass}.0.0")
    return f"{klass}{rest}{separator}{status} {text}".rstrip()


def is_error(line: str) -> bool:
    """Whether ``line`` refuses something (4yz or 5yz)."""
    return line[:1] in ("4", "5")


def is_client_error(line: str) -> bool:
    """Whether ``line`` refuses something the client did wrong, and so counts
    towards closing its session. 421 closes already; 452 is the server's own
    limit (recipients, storage), which a well-behaved client meets too: RFC
    5321 §4.5.3.1.10 has it answer 452 per extra recipient and go on."""
    return is_error(line) and not line.startswith(("421", "452"))


def hook(
    method: Callable[_P, Awaitable[str]],
) -> Callable[_P, Awaitable[str]]:
    """A handler hook that may raise ``Refusal``: the refusal is its reply."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> str:
        try:
            return await method(*args, **kwargs)
        except Refusal as refusal:
            return refusal.line

    return wrapper
