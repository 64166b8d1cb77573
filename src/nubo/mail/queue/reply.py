"""What one delivery attempt to one recipient ended with: an SMTP reply.

Every outcome, remote or local, is told as a ``Reply``: the reply code
(RFC 5321 §4.2), the enhanced status code (RFC 3463) and one line of text,
so that retries, bounces and DSNs (RFC 3464) read one kind of value. An
attempt that got no reply at all (no connection, a lost connection) has code
0 and a 4.4.x status: it is retried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 3463 §2: class.subject.detail, at the start of the reply text
# (RFC 2034 §3).
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)")

# Longest reply text kept (in last_reply and the DSN's Diagnostic-Code).
MAX_TEXT = 300


@dataclass(frozen=True)
class Reply:
    """An SMTP reply, or what stands for one when none came."""

    code: int  # 250, 451, 550...; 0 when no server answered
    status: str  # enhanced status code, "5.1.1"
    text: str  # one printable ASCII line, without code and status
    remote_mta: str = ""  # host that answered, for the DSN's Remote-MTA

    @property
    def sent(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        """A failure that retrying cannot mend (5yz, RFC 5321 §4.2.1)."""
        return not self.sent and self.status.startswith("5")

    def __str__(self) -> str:
        if self.code:
            return f"{self.code} {self.status} {self.text}".rstrip()
        return f"{self.status} {self.text}".rstrip()


def from_smtp(code: int, message: str, remote_mta: str = "") -> Reply:
    """A server's reply; the status comes from its text when it gave one
    (RFC 2034), else from the code's class (RFC 3463 §3.1, X.0.0)."""
    text = clean(message)
    klass = str(code // 100) if 200 <= code < 600 else "4"
    status = f"{klass}.0.0"
    found = _ENHANCED.match(text)
    if found:
        # The reply code's class wins over a mismatched status (RFC 3463 §2).
        status = f"{klass}.{found.group(2)}.{found.group(3)}"
        text = text[found.end() :]
    return Reply(code, status, text, remote_mta)


def no_answer(status: str, text: str, remote_mta: str = "") -> Reply:
    """An attempt that got no SMTP reply (RFC 3463 §3.5, 4.4.x)."""
    return Reply(0, status, clean(text), remote_mta)


def clean(text: str) -> str:
    """One line of printable ASCII: multi-line replies joined, the rest
    replaced, so it fits a header field and a log line."""
    joined = " ".join(part.strip() for part in text.splitlines() if part.strip())
    printable = "".join(c if " " <= c <= "~" else "?" for c in joined)
    return printable[:MAX_TEXT]
