"""MIME parsing at delivery: microseconds per message for parse_message and
for everything delivery computes (parse, to_json, search_headers, sent_date).

Messages, each built here with fixed contents:

- ``typical``: about 10 KB, multipart/alternative text and HTML with a
  small inline image, a Received chain and encoded-words, as a newsletter
  or a reply with a signature logo looks;
- ``attachment``: about 5 MB, a short text and a base64 PDF-like
  attachment in 76-column lines;
- ``many-parts``: 10 MB in 10,000 parts (MAX_PARTS bounds the count);
- ``header-lines``: 100,000 header lines.

Prints the best of ``--repeat`` rounds, in microseconds per message.

    python benchmarks/mime_parse.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from nubo.mail.message import parse_message, search_headers, sent_date

HEADER = (
    b"Return-Path: <news@coop.example.org>\r\n"
    b"Received: from mx.example.net (mx.example.net [192.0.2.10])\r\n"
    b"\tby mail.example.org with ESMTPS id 4F2A1\r\n"
    b"\tfor <lee@example.org>; Tue, 04 Mar 2025 10:05:03 +0000\r\n"
    b"Received: from out.coop.example.org by mx.example.net; Tue, 04 Mar 2025\r\n"
    b" 10:05:02 +0000\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; d=coop.example.org; s=nubo; h=from:to:\r\n"
    b"\tsubject:date; bh=" + b"A" * 44 + b"; b=" + b"B" * 340 + b"\r\n"
    b"From: =?utf-8?q?Coop=C3=A9rative?= <news@coop.example.org>\r\n"
    b"To: Lee Sample <lee@example.org>, ana@example.com\r\n"
    b"Subject: =?utf-8?q?Assembl=C3=A9e_g=C3=A9n=C3=A9rale?= on 12 April\r\n"
    b"Date: Tue, 04 Mar 2025 10:05:00 +0000\r\n"
    b"Message-ID: <nl-2025-03@coop.example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
)


def typical() -> bytes:
    rng = random.Random(1)
    words = [b"assembly", b"accounts", b"board", b"plan", b"coop", b"meeting"]
    text = b"\r\n".join(
        b" ".join(rng.choice(words) for _ in range(12)) for _ in range(40)
    )
    html = b"<html><body>" + text.replace(b"\r\n", b"<br>\r\n") + b"</body></html>"
    image = base64.encodebytes(rng.randbytes(1500)).replace(b"\n", b"\r\n")
    return (
        HEADER + b'Content-Type: multipart/related; boundary="rel"\r\n\r\n'
        b"--rel\r\n"
        b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + text + b"\r\n"
        b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + html + b"\r\n"
        b"--alt--\r\n"
        b"--rel\r\nContent-Type: image/png; name=logo.png\r\n"
        b"Content-ID: <logo@coop.example.org>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + image + b"--rel--\r\n"
    )


def attachment() -> bytes:
    data = base64.encodebytes(random.Random(2).randbytes(3_700_000))
    return (
        HEADER + b'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
        b"--mix\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        b"The report is attached.\r\n"
        b"--mix\r\nContent-Type: application/pdf; name=report.pdf\r\n"
        b'Content-Disposition: attachment; filename="report.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + data.replace(b"\n", b"\r\n")
        + b"--mix--\r\n"
    )


def many_parts() -> bytes:
    part = b"--b\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000 + b"\r\n"
    return (
        HEADER
        + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + part * 10_000
        + b"--b--\r\n"
    )


def header_lines() -> bytes:
    lines = b"".join(b"X-Header-%d: value %d\r\n" % (n, n) for n in range(100_000))
    return HEADER + lines + b"\r\nbody\r\n"


def deliver(raw: bytes) -> None:
    info = parse_message(raw)
    info.to_json()
    search_headers(raw, info)
    sent_date(info)


def best(function: Callable[[bytes], object], raw: bytes, repeat: int) -> float:
    """Best time of ``repeat`` rounds, in microseconds per call."""
    rounds = max(1, int(0.2 / max(_once(function, raw), 1e-6)))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(rounds):
            function(raw)
        times.append((time.perf_counter() - start) / rounds)
    return min(times) * 1e6


def _once(function: Callable[[bytes], object], raw: bytes) -> float:
    start = time.perf_counter()
    function(raw)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'message':<14}{'size':>12}{'parse µs':>14}{'delivery µs':>14}")
    for name, build in (
        ("typical", typical),
        ("attachment", attachment),
        ("many-parts", many_parts),
        ("header-lines", header_lines),
    ):
        raw = build()
        parse = best(parse_message, raw, args.repeat)
        whole = best(deliver, raw, args.repeat)
        print(f"{name:<14}{len(raw):>12,}{parse:>14,.0f}{whole:>14,.0f}")


if __name__ == "__main__":
    main()
