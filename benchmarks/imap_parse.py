"""Cost of parsing typical IMAP client commands, in microseconds per command.

Two paths: ``parse_command`` on the bytes of one command, and the whole
``Parser`` (feed the line, pull the event), which a session pays per
command. The commands are what Thunderbird, K-9 and mbsync send most.

    python benchmarks/imap_parse.py [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from nubo.mail.imap.grammar import parse_command
from nubo.mail.imap.parser import Parser

COMMANDS = [
    b"a1 NOOP",
    b"a2 UID FETCH 1:* (FLAGS UID)",
    b"a3 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS"
    b" (From To Cc Bcc Subject Date Message-ID Priority X-Priority References"
    b" Newsgroups In-Reply-To Content-Type Reply-To)])",
    b"a4 UID STORE 4827 +FLAGS (\\Seen)",
    b"a5 UID SEARCH UNSEEN",
    b'a6 UID SEARCH CHARSET UTF-8 OR OR FROM "lee" SUBJECT "lee" TO "lee"',
    b"a7 SELECT INBOX (CONDSTORE)",
    b'a8 LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN SPECIAL-USE)',
    b"a9 LOGIN {15+}\r\nlee@example.org {8+}\r\nS3cr3t!x",
]


def per_call(call: Callable[[], object], seconds: float) -> float:
    """Best of five rounds, so other load on the machine weighs least."""
    rounds = []
    for _ in range(5):
        runs, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds / 5:
            for _ in range(100):
                call()
            runs += 100
        rounds.append(elapsed / runs * 1e6)
    return min(rounds)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=0.5)
    seconds = options.parse_args().seconds
    parser = Parser()

    def through_parser(wire: bytes) -> None:
        parser.feed(wire)
        assert parser.next_event() is not None

    print(f"{'command':<60} {'parse_command':>14} {'Parser':>8}  (µs)")
    for command in COMMANDS:
        direct = per_call(lambda c=command: parse_command(c), seconds)
        framed = per_call(lambda c=command + b"\r\n": through_parser(c), seconds)
        shown = command.decode().replace("\r\n", "⏎")
        shown = shown if len(shown) <= 58 else shown[:55] + "..."
        print(f"{shown:<60} {direct:>14.1f} {framed:>8.1f}")


if __name__ == "__main__":
    main()
