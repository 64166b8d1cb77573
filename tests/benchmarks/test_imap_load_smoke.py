"""benchmarks/imap_load.py's client, checks and Dovecot setup, run small.

The whole measurement (populate, one client, mixed load) against a Dovecot
the benchmark starts, on 50 messages for one second, so that a change which
breaks the benchmark shows before anyone waits for a long run. No figure is
asserted, only that every answer was right. Without Dovecot the test skips
locally and fails in CI (.ci/run installs dovecot-imapd).
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

import pytest

from benchmarks import imap_load
from tests.conftest import scale_unavailable


def test_messages_are_the_same_for_the_same_seed() -> None:
    first = [imap_load.message(7, n) for n in range(300)]

    assert first == [imap_load.message(7, n) for n in range(300)]
    assert first != [imap_load.message(8, n) for n in range(300)]
    assert all(1500 <= len(body) <= 30_000 for body, _ in first)
    assert all(body.count(b"\n") == body.count(b"\r\n") for body, _ in first)
    assert sum(b"multipart/" in body for body, _ in first) > 50
    assert 60 < sum(seen for _, seen in first) < 120


def test_a_wrong_body_is_reported_with_its_command() -> None:
    mailbox = imap_load.Mailbox("INBOX", 1, [(5, zlib.crc32(b"hello"))], seen=0)
    wrong = imap_load.Response(b"* 1 FETCH (BODY[] {5}\r\n)\r\n", [b"jello"])

    with pytest.raises(imap_load.BenchError, match=r"FETCH 1 BODY.PEEK\[\]"):
        imap_load.check_body([wrong], mailbox, 1)


@pytest.mark.slow
def test_the_whole_run_against_dovecot(tmp_path: Path) -> None:
    missing = imap_load.dovecot_missing()
    if missing:
        scale_unavailable("Dovecot", missing)
    small = {"messages": 50, "seconds": 1, "repeat": 2, "clients": 3, "batch": 20}
    args = imap_load.parse_args(
        [word for key, value in small.items() for word in (f"--{key}", str(value))]
    )
    # The cheapest Argon2id: this test measures nothing.
    hashed = imap_load.password_hash(imap_load.PASSWORD, 1, 8)

    with imap_load.running_dovecot(
        tmp_path / "dovecot",
        args.dovecot,
        imap_load.USER,
        imap_load.PASSWORD,
        hashed,
    ) as target:
        result = asyncio.run(imap_load.measure(target, args))

    assert result.failures == []
    assert "mailbox: 50 messages, 0 MiB" in result.notes
    assert result.figures["mixed_ops"] > 0
    assert result.figures["rss_mib"] > 0
    for key in ("select_ms", "fetch_flags_ms", "envelope_ms", "search_ms"):
        assert result.figures[key] > 0
