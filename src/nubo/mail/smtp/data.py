"""The mail data of one DATA command, line by line, with every bound checked.

Bytes in, verdict out, no I/O: the protocol reads lines ending in CRLF from
the socket and hands each to ``DataCollector.feed`` until it answers that the
end-of-data line came. Rules:

- Only ``<CRLF>.<CRLF>`` ends the data (RFC 5321 §4.1.1.4): the reader splits
  at CRLF only, so a bare LF or CR never ends a line, let alone the data.
- A dot line next to a bare CR or LF (``<LF>.<CRLF>``, ``<LF>.<LF>``,
  ``<CR>.<CR><LF>``, ``<CRLF>.<LF>``) is what SMTP smuggling sends, hoping
  some server on the path takes it for the end of the data. Such a message is
  refused as a whole, so that it is neither stored nor relayed to a server
  that might split it (RFC 5321 §2.3.8: CR and LF only as CRLF).
- The leading dot of a line is removed (RFC 5321 §4.5.2).
- A line longer than 1000 octets with its CRLF (RFC 5321 §4.5.3.1.6), a
  header block longer than ``max_header`` or data longer than ``max_size``
  refuse the message. The rest of the data is still read, and dropped as it
  comes, so that the refusal is the one reply to the DATA command and memory
  stays bounded (RFC 5321 §4.2.5).

The refusal kept is the first one met.
"""

from __future__ import annotations

import re

from nubo.mail.smtp.replies import Refusal

# RFC 5321 §4.5.3.1.6: 998 characters, CRLF; the stuffed dot comes on top.
MAX_LINE = 1000

# A dot with a bare CR or LF on either side (RFC 5321 §2.3.8).
_BARE_DOT = re.compile(rb"[\r\n]\.[\r\n]")

END = b".\r\n"


def smuggling() -> Refusal:
    return Refusal(
        554,
        "5.6.0",
        "Message refused: a bare CR or LF next to a dot line (SMTP smuggling)",
    )


def line_too_long() -> Refusal:
    return Refusal(500, "5.6.0", "Line too long (RFC 5321 section 4.5.3.1.6)")


def too_big(limit: int) -> Refusal:
    return Refusal(552, "5.3.4", f"Message size exceeds the maximum of {limit} bytes")


def header_too_big(limit: int) -> Refusal:
    return Refusal(552, "5.3.4", f"Message header exceeds the maximum of {limit} bytes")


class DataCollector:
    """The lines of one DATA transfer; ``content()`` once ``feed`` said end."""

    def __init__(self, max_size: int, max_header: int) -> None:
        self.max_size = max_size
        self.max_header = max_header
        self.refusal: Refusal | None = None
        self.size = 0  # octets received, stuffing dots included
        self._header_size = 0
        self._in_header = True
        self._lines: list[bytes] = []
        self._continuing = False  # the last piece was part of a long line

    def feed(self, line: bytes) -> bool:
        """Take one line ending in CRLF; True when it was the end-of-data line."""
        if self._continuing:
            # The tail of a line too long to read whole: ".<CRLF>" here ends
            # that line, not the data.
            self._continuing = False
            self.size += len(line)
            return False
        if line == END:
            return True
        self.size += len(line)
        if self.refusal is None:
            self._check(line)
        return False

    def overlong(self, fragment: bytes) -> None:
        """Take part of a line the reader could not hold: refused, dropped."""
        self._continuing = True
        self.size += len(fragment)
        self._refuse(line_too_long())

    def content(self) -> bytes:
        """The message as the client meant it; call only without a refusal."""
        assert self.refusal is None
        data = b"".join(self._lines)
        self._lines.clear()
        return data

    def _check(self, line: bytes) -> None:
        if self.size > self.max_size:
            self._refuse(too_big(self.max_size))
            return
        if line.startswith((b".\n", b".\r")) or _BARE_DOT.search(line):
            self._refuse(smuggling())
            return
        if line.startswith(b"."):
            line = line[1:]
        if len(line) > MAX_LINE:
            self._refuse(line_too_long())
            return

        if self._in_header:
            self._header_size += len(line)
            if line == b"\r\n":
                self._in_header = False
            elif self._header_size > self.max_header:
                self._refuse(header_too_big(self.max_header))
                return
        self._lines.append(line)

    def _refuse(self, refusal: Refusal) -> None:
        if self.refusal is None:
            self.refusal = refusal
        self._lines.clear()
