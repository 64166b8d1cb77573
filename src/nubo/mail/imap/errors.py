"""The IMAP parser's one error type (RFC 3501 §7.1.3, RFC 3501 §7.1.5).

Everything in ``nubo.mail.imap`` that reads client input raises only this,
so a server can catch one type and go on with the next command::

    Exception
     └── ParseError   the command cannot run; answer ``tag BAD [code] text``
                      (``status`` NO for BADCHARSET and an APPEND too big),
                      untagged ``* BAD`` when the tag was not readable

The text is safe to send to the client: it names what was wrong, never
echoes the client's bytes.
"""

from __future__ import annotations

from typing import Literal

Status = Literal["BAD", "NO"]


class ParseError(Exception):
    """A command the server must refuse; carries its protocol answer."""

    def __init__(
        self,
        text: str,
        *,
        tag: str | None = None,
        code: str | None = None,
        status: Status = "BAD",
    ) -> None:
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.code = code
        self.status: Status = status
