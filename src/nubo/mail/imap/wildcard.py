"""LIST and LSUB patterns: the wildcards ``*`` and ``%`` (RFC 3501 §6.3.8).

``*`` matches any run of characters, the hierarchy delimiter included; ``%``
matches any run without the delimiter, so it stays within one level. A
pattern is matched against the decoded name (never the modified UTF-7
spelling), in Unicode NFC as the mailstore keeps names.

INBOX is case-insensitive (RFC 3501 §5.1): its five letters, at the start
of ``INBOX`` and of ``INBOX/...``, match a pattern's letters in any case,
so "inbox/%" and "In%" find INBOX and its children, as Dovecot does.

Matching simulates the pattern as an automaton, with the set of live
positions in the bits of one integer: the cost is one step per character
of the name whatever the pattern, where a backtracking matcher (or ``re``)
can take exponential time on a hostile pattern such as "*a*a*a*a*b".
"""

from __future__ import annotations

import unicodedata

from nubo.mail.mailstore import DELIMITER, INBOX
from nubo.mail.mailstore.names import MAX_LENGTH

_ANY = "*"
_LEVEL = "%"


class Pattern:
    """One list-mailbox pattern, the reference already prefixed."""

    def __init__(self, pattern: str, delimiter: str = DELIMITER) -> None:
        self.text = unicodedata.normalize("NFC", pattern)
        self.delimiter = delimiter
        tokens = _tokens(self.text)
        self.size = len(tokens)
        literals = sum(1 for token in tokens if token not in (_ANY, _LEVEL))
        # No stored name is longer than MAX_LENGTH, so a pattern with more
        # literal characters matches nothing: no need to run it.
        self.hopeless = literals > MAX_LENGTH
        self._any = self._level = 0
        self._exact: dict[str, int] = {}
        self._folded: dict[str, int] = {}
        for position, token in enumerate(tokens):
            bit = 1 << position
            if token == _ANY:
                self._any |= bit
            elif token == _LEVEL:
                self._level |= bit
            else:
                self._exact[token] = self._exact.get(token, 0) | bit
                upper = token.upper()
                self._folded[upper] = self._folded.get(upper, 0) | bit
        self._wild = self._any | self._level

    def matches(self, name: str) -> bool:
        """Whether the (normalized) mailbox name matches."""
        if self.hopeless:
            return False
        in_inbox = name == INBOX or name.startswith(INBOX + self.delimiter)
        live = self._close(1)
        for index, char in enumerate(name):
            if in_inbox and index < len(INBOX):
                step = self._folded.get(char.upper(), 0)
            else:
                step = self._exact.get(char, 0)
            stay = self._any if char == self.delimiter else self._wild
            live = self._close(((live & step) << 1) | (live & stay))
            if not live:
                return False
        return bool(live >> self.size & 1)

    def _close(self, live: int) -> int:
        """Add the positions after a wildcard that may match nothing. One
        step is enough: ``_tokens`` never puts two wildcards in a row."""
        return live | (live & self._wild) << 1

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


def _tokens(pattern: str) -> list[str]:
    """The pattern's characters, a run of wildcards made one: "*" if the run
    holds a "*" (it matches all the run could), else "%"."""
    tokens: list[str] = []
    for char in pattern:
        if char in (_ANY, _LEVEL) and tokens and tokens[-1] in (_ANY, _LEVEL):
            if char == _ANY:
                tokens[-1] = _ANY
            continue
        tokens.append(char)
    return tokens
