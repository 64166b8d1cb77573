"""IMAP load: a 10,000-message mailbox read by one client, then by ten at once.

Each server gets the same run, in this order:

1. **populate**: N messages (2-20 KB, a quarter of them multipart, the same
   bytes for the same ``--seed``; about 30 % flagged ``\\Seen``) are APPENDed
   to the mailbox, pipelined in batches with LITERAL+ (RFC 7888) when the
   server offers it, one command per message (RFC 3501 §6.3.11).
2. **one client**: SELECT INBOX, FETCH 1:* (FLAGS UID), FETCH of the last 50
   messages' ENVELOPE, UID SEARCH UNSEEN, each ``--repeat`` times; the median
   is kept. Every answer is checked (message count, flags, unseen count).
3. **mixed load**: ``--clients`` connections log in and SELECT, then loop for
   ``--seconds``: NOOP (a SELECT instead every tenth loop), FETCH a random
   window of 50 (FLAGS UID ENVELOPE), UID SEARCH UNSEEN, FETCH BODY.PEEK[] of
   one random message (checked byte for byte), STORE +FLAGS (\\Seen) on one.
   Gives commands per second, the p50/p95 latency of a command, and the
   server's CPU time over the load (per second and per command). The clients
   sign in all at once, as after a network outage; ``--logins-one-by-one``
   signs them in in turn, for a server whose lockout counts attempts in
   flight.

The peak memory of the server's process tree is sampled from /proc all along
(RSS, and PSS, which shares the pages of Dovecot's forked processes out
between them instead of counting them once per process).

The servers, in one invocation by default:

- **dovecot** (Debian ``dovecot-imapd``): started here with a throwaway
  configuration in a temporary folder, on a free loopback port; Maildir in
  that folder; the benchmark user in a passwd-file.
- **nubo**: ``nubo serve`` on the embedded default (SQLite and a blob folder
  in a temporary folder, free ports); the user made with the nubo CLI.

Both check the same password scheme at the same cost: Argon2id at nubo's
default cost; Dovecot's passwd-file holds a hash made by nubo's own hasher
(Dovecot verifies it through libsodium). Only the ten logins of the mixed
load pay it; their median is reported too.

Or one server of your own: ``--host --port --user --password`` (and ``--pid``
for its memory). The mailbox must be empty (``--mailbox`` names another).

Ratios: every ratio is how many times better nubo does, so above 1 means nubo
is ahead: dovecot_time / nubo_time for times, nubo / dovecot for rates,
dovecot / nubo for memory. Other load on the machine moves every figure; the
client shares the machine's CPUs with the server. Compare within one run.

    python benchmarks/imap_load.py [--messages 10000] [--seconds 10]
        [--clients 10] [--repeat 5] [--target both|dovecot|nubo] [--json PATH]
    python benchmarks/imap_load.py --host H --port P --user U --password W
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import grp
import itertools
import json
import os
import pwd
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nubo.accounts.passwords import Passwords
from nubo.config import load
from tests.serve import NuboProcess, cheap_env

USER = "bench@example.org"
PASSWORD = "imap load benchmark"
DOVECOT = "/usr/sbin/dovecot"
SEEN_SHARE = 0.3
WINDOW = 50  # messages per FETCH of ENVELOPEs


class BenchError(Exception):
    """A server's wrong or missing answer; the message says which command."""


class ImapError(BenchError):
    """A tagged NO or BAD (or an unexpected continuation) to a command."""

    def __init__(self, command: str, answer: bytes) -> None:
        shown = answer.decode("utf-8", "replace").strip()[:300]
        super().__init__(f"{command} -> {shown}")


# -- the messages --------------------------------------------------------------

_VOCABULARY = (
    "the meeting agenda budget report project cooperative member invoice "
    "schedule review draft proposal quarter minutes garden kitchen rota "
    "volunteers newsletter assembly vote annual accounts we will please "
    "find attached thanks regards about next week Monday Friday morning "
    "evening update question answer plan before after and or with for "
    "from to of in on at a an is are was be it this that our your"
)
WORDS = _VOCABULARY.split()
PEOPLE = (
    ("Ana", "Silva"),
    ("Jonas", "Berg"),
    ("Mei", "Tanaka"),
    ("Omar", "Haddad"),
    ("Lucía", "Fernández"),
    ("Kofi", "Mensah"),
    ("Élise", "Moreau"),
    ("Priya", "Nair"),
)
EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def message(seed: int, n: int) -> tuple[bytes, bool]:
    """Message ``n`` of the mailbox (CRLF lines) and whether it is \\Seen.

    The same ``seed`` and ``n`` always give the same bytes, so a client can
    check what a FETCH BODY[] answers without keeping the mailbox around.
    """
    rng = random.Random(f"imap-load:{seed}:{n}")
    size = int(2048 * 10 ** rng.random())  # 2-20 KB, smaller ones likelier
    seen = rng.random() < SEEN_SHARE
    kind = rng.random()
    head = _headers(rng, seed, n)

    if kind < 0.6:
        body = 'Content-Type: text/plain; charset="utf-8"\r\n\r\n' + _text(rng, size)
    elif kind < 0.85:
        boundary = f"=_alt_{n}_{rng.getrandbits(32):08x}"
        text = _text(rng, size // 3)
        html = "".join(f"<p>{line}</p>\r\n" for line in text.splitlines())
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f"<html><body>\r\n{html}</body></html>\r\n--{boundary}--\r\n"
        )
    else:
        boundary = f"=_mix_{n}_{rng.getrandbits(32):08x}"
        blob = base64.encodebytes(rng.randbytes(size * 2 // 3)).decode()
        body = (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{_text(rng, size // 4)}--{boundary}\r\n"
            f'Content-Type: application/pdf; name="report-{n}.pdf"\r\n'
            f'Content-Disposition: attachment; filename="report-{n}.pdf"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n"
            f"{blob.replace(chr(10), chr(13) + chr(10))}--{boundary}--\r\n"
        )
    return (head + body).encode(), seen


def _headers(rng: random.Random, seed: int, n: int) -> str:
    first, last = rng.choice(PEOPLE)
    subject = " ".join(rng.choices(WORDS, k=rng.randint(3, 8))).capitalize()
    if rng.random() < 0.1:
        # RFC 2047 encoded-words, as mail in other languages arrives.
        encoded = base64.b64encode(f"Réunion {subject}".encode()).decode()
        subject = f"=?UTF-8?B?{encoded}?="
    lines = [
        f"From: {first} {last} <{first.lower()}.{last.lower()}@example.com>",
        f"To: Bench <{USER}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(EPOCH + timedelta(minutes=7 * n))}",
        f"Message-ID: <{n}.{seed}@example.com>",
    ]
    if rng.random() < 0.3:
        lines.append("Cc: Team <team@example.org>")
    if n and rng.random() < 0.3:
        lines[2] = f"Subject: Re: {subject}"
        lines.append(f"In-Reply-To: <{n - 1}.{seed}@example.com>")
    lines.append("MIME-Version: 1.0")
    return "\r\n".join(lines) + "\r\n"


def _text(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choices(WORDS, k=rng.randint(6, 11)))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


# -- the client ----------------------------------------------------------------

_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")
_EXISTS = re.compile(rb"^\* (\d+) EXISTS", re.MULTILINE)


@dataclass
class Response:
    """One server response: its lines joined, the literals taken out."""

    text: bytes
    literals: list[bytes] = field(default_factory=list)


class Client:
    """One IMAP connection: a command at a time, or APPENDs pipelined."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._tags = itertools.count(1)
        self.capabilities: set[str] = set()

    @classmethod
    async def connect(cls, host: str, port: int, patience: float) -> Client:
        # A UID SEARCH answer is one line: room for a million UIDs.
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=16 * 1024 * 1024), patience
        )
        client = cls(reader, writer, patience)
        async with asyncio.timeout(patience):
            greeting = await client.read()
        if not greeting.text.startswith(b"* OK"):
            raise ImapError("(greeting)", greeting.text)
        return client

    async def login(self, user: str, password: str) -> None:
        # RFC 3501 §6.2.3; the password is never part of an error message.
        line = f"LOGIN {quoted(user)} {quoted(password)}".encode()
        await self.command(line, shown=f"LOGIN {user} ***")
        for response in await self.command(b"CAPABILITY"):
            if response.text.startswith(b"* CAPABILITY "):
                words = response.text[13:].decode().split()
                self.capabilities = {word.upper() for word in words}

    async def close(self) -> None:
        try:
            async with asyncio.timeout(5):
                await self.command(b"LOGOUT")
        except (BenchError, OSError, TimeoutError):
            pass  # the measurement is over; a rude goodbye changes nothing
        self._writer.close()

    async def read(self) -> Response:
        """One response, with the literals it carries (RFC 3501 §4.3)."""
        lines: list[bytes] = []
        literals: list[bytes] = []
        while True:
            line = await self._reader.readuntil(b"\r\n")
            lines.append(line)
            literal = _LITERAL.search(line)
            if literal is None:
                return Response(b"".join(lines), literals)
            literals.append(await self._reader.readexactly(int(literal.group(1))))

    async def command(self, line: bytes, shown: str | None = None) -> list[Response]:
        """Send one command; its untagged responses, or ImapError."""
        tag = self._tag()
        self._writer.write(tag + b" " + line + b"\r\n")
        return await self._answer(tag, shown or line.decode())

    async def _answer(self, tag: bytes, shown: str) -> list[Response]:
        untagged: list[Response] = []
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    response = await self.read()
                    if not response.text.startswith(tag + b" "):
                        untagged.append(response)
                        continue
                    if response.text[len(tag) + 1 :].startswith(b"OK"):
                        return untagged
                    raise ImapError(shown, response.text)
        except TimeoutError:
            raise BenchError(f"{shown} -> no answer in {self._timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise BenchError(f"{shown} -> connection closed ({exc!r})") from None

    async def append(self, mailbox: str, batch: Sequence[tuple[bytes, bool]]) -> None:
        """APPEND each message (RFC 3501 §6.3.11); with LITERAL+ (RFC 7888)
        the whole batch is sent before the first answer is read."""
        name = quoted(mailbox).encode()
        if "LITERAL+" not in self.capabilities:
            for body, seen in batch:
                await self._append_synchronizing(name, body, seen)
            return

        tags = []
        for body, seen in batch:
            tag = self._tag()
            flags = b" (\\Seen)" if seen else b""
            self._writer.write(
                b"%s APPEND %s%s {%d+}\r\n" % (tag, name, flags, len(body))
                + body
                + b"\r\n"
            )
            tags.append(tag)
        await self._writer.drain()
        for tag in tags:
            await self._answer(tag, f"APPEND {mailbox} {{n+}} ({len(batch)} pipelined)")

    async def _append_synchronizing(self, name: bytes, body: bytes, seen: bool) -> None:
        tag = self._tag()
        flags = b" (\\Seen)" if seen else b""
        self._writer.write(b"%s APPEND %s%s {%d}\r\n" % (tag, name, flags, len(body)))
        async with asyncio.timeout(self._timeout):
            ready = await self.read()
        if not ready.text.startswith(b"+"):
            raise ImapError("APPEND (waiting for the literal's +)", ready.text)
        self._writer.write(body + b"\r\n")
        await self._answer(tag, "APPEND {n}")

    def _tag(self) -> bytes:
        return b"A%d" % next(self._tags)


def quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetches(responses: list[Response]) -> list[Response]:
    return [r for r in responses if re.match(rb"^\* \d+ FETCH ", r.text)]


def exists(responses: list[Response]) -> int | None:
    for response in responses:
        if match := _EXISTS.match(response.text):
            return int(match.group(1))
    return None


def search_hits(responses: list[Response]) -> list[int]:
    for response in responses:
        if response.text.startswith(b"* SEARCH"):
            return [int(word) for word in response.text[8:].split()]
    raise BenchError("UID SEARCH UNSEEN -> OK without an untagged SEARCH response")


# -- the measurements ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a server answers, and whose memory to watch."""

    name: str
    host: str
    port: int
    user: str
    password: str
    pid: int | None = None


@dataclass
class Result:
    server: str
    figures: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Mailbox:
    """What the benchmark put in the mailbox, to check the answers against."""

    name: str
    seed: int
    checksums: list[tuple[int, int]]  # (size, CRC-32) of message 1, 2, ...
    seen: int


async def measure(target: Target, args: argparse.Namespace) -> Result:
    """The whole run against one server; a failed step is reported, and the
    steps that do not depend on it still run."""
    result = Result(target.name)
    with PeakMemory(target.pid) as memory:
        try:
            mailbox = await populate(target, args, result)
        except BenchError as exc:
            result.failures.append(f"populate: {exc}")
            return result
        await one_client(target, args, mailbox, result)
        await mixed_load(target, args, mailbox, result)
    if memory.peak_rss_kib:
        result.figures["rss_mib"] = memory.peak_rss_kib / 1024
        result.figures["pss_mib"] = memory.peak_pss_kib / 1024
    return result


@asynccontextmanager
async def session(target: Target, args: argparse.Namespace) -> AsyncIterator[Client]:
    client = await Client.connect(target.host, target.port, args.timeout)
    try:
        await client.login(target.user, target.password)
        yield client
    finally:
        await client.close()


async def populate(target: Target, args: argparse.Namespace, result: Result) -> Mailbox:
    """APPEND ``--messages`` messages; the clock runs only while sending."""
    checksums: list[tuple[int, int]] = []
    seen = 0
    elapsed = 0.0
    async with session(target, args) as client:
        await empty_mailbox(client, args.mailbox)
        if "LITERAL+" not in client.capabilities:
            result.notes.append("no LITERAL+: APPEND one at a time, not pipelined")
        for start in range(0, args.messages, args.batch):
            batch = [
                message(args.seed, n)
                for n in range(start, min(start + args.batch, args.messages))
            ]
            checksums.extend((len(body), zlib.crc32(body)) for body, _ in batch)
            seen += sum(flag for _, flag in batch)
            began = time.perf_counter()
            await client.append(args.mailbox, batch)
            elapsed += time.perf_counter() - began

    result.figures["append_rate"] = args.messages / elapsed
    result.figures["append_s"] = elapsed
    size = sum(length for length, _ in checksums)
    result.notes.append(f"mailbox: {args.messages} messages, {size / 2**20:.0f} MiB")
    return Mailbox(args.mailbox, args.seed, checksums, seen)


async def empty_mailbox(client: Client, name: str) -> None:
    """Refuse to fill a mailbox that holds mail: the checks would fail, and
    it is someone's mail. A missing mailbox other than INBOX is created."""
    try:
        status = await client.command(f"STATUS {quoted(name)} (MESSAGES)".encode())
    except ImapError:
        if name.upper() == "INBOX":
            raise
        await client.command(f"CREATE {quoted(name)}".encode())
        return
    for response in status:
        if match := re.search(rb"MESSAGES (\d+)", response.text):
            if int(match.group(1)):
                raise BenchError(
                    f"{name} holds {int(match.group(1))} messages; the benchmark "
                    "needs an empty mailbox (--mailbox)"
                )
            return
    raise BenchError(f"STATUS {name} (MESSAGES) -> no STATUS response")


async def one_client(
    target: Target, args: argparse.Namespace, mailbox: Mailbox, result: Result
) -> None:
    """The four single-client commands, each ``--repeat`` times, medians kept."""
    count = len(mailbox.checksums)
    last = f"{max(1, count - WINDOW + 1)}:{count}"
    steps = (
        ("select_ms", f"SELECT {quoted(mailbox.name)}", check_select),
        ("fetch_flags_ms", "FETCH 1:* (FLAGS UID)", check_flags),
        ("envelope_ms", f"FETCH {last} (ENVELOPE)", check_envelopes),
        ("search_ms", "UID SEARCH UNSEEN", check_unseen),
    )
    try:
        async with session(target, args) as client:
            for key, line, check in steps:
                try:
                    times = []
                    for _ in range(args.repeat):
                        began = time.perf_counter()
                        responses = await client.command(line.encode())
                        times.append(time.perf_counter() - began)
                        check(responses, mailbox)
                    result.figures[key] = statistics.median(times) * 1000
                except BenchError as exc:
                    result.failures.append(f"one client: {exc}")
    except BenchError as exc:
        result.failures.append(f"one client: {exc}")


def check_select(responses: list[Response], mailbox: Mailbox) -> None:
    found = exists(responses)
    if found != len(mailbox.checksums):
        raise BenchError(f"SELECT -> {found} EXISTS, {len(mailbox.checksums)} sent")


def check_flags(responses: list[Response], mailbox: Mailbox) -> None:
    answers = fetches(responses)
    seen = sum(b"\\Seen" in r.text for r in answers)
    if len(answers) != len(mailbox.checksums) or seen != mailbox.seen:
        raise BenchError(
            f"FETCH 1:* (FLAGS UID) -> {len(answers)} messages, {seen} \\Seen; "
            f"{len(mailbox.checksums)} sent, {mailbox.seen} \\Seen"
        )


def check_envelopes(responses: list[Response], mailbox: Mailbox) -> None:
    answers = [r for r in fetches(responses) if b"ENVELOPE (" in r.text]
    expected = min(WINDOW, len(mailbox.checksums))
    if len(answers) != expected:
        raise BenchError(f"FETCH (ENVELOPE) -> {len(answers)} envelopes of {expected}")


def check_unseen(responses: list[Response], mailbox: Mailbox) -> None:
    hits = search_hits(responses)
    expected = len(mailbox.checksums) - mailbox.seen
    if len(hits) != expected:
        raise BenchError(f"UID SEARCH UNSEEN -> {len(hits)} UIDs, {expected} unseen")


# -- the mixed load ------------------------------------------------------------

MIXED = ("NOOP", "SELECT", "FETCH 50", "UID SEARCH", "FETCH BODY[]", "STORE")


async def mixed_load(
    target: Target, args: argparse.Namespace, mailbox: Mailbox, result: Result
) -> None:
    """``--clients`` sessions looping for ``--seconds``; latency per command."""
    latencies: dict[str, list[float]] = {name: [] for name in MIXED}
    logins: list[float] = []

    async def connect() -> Client:
        began = time.perf_counter()
        client = await Client.connect(target.host, target.port, args.timeout)
        await client.login(target.user, target.password)
        logins.append(time.perf_counter() - began)
        await client.command(f"SELECT {quoted(mailbox.name)}".encode())
        return client

    how = "one by one" if args.logins_one_by_one else "all at once"
    result.notes.append(f"mixed load: {args.clients} clients signed in {how}")
    if args.logins_one_by_one:
        made = [await _settle(connect()) for _ in range(args.clients)]
    else:
        made = await asyncio.gather(
            *(connect() for _ in range(args.clients)), return_exceptions=True
        )
    clients = [client for client in made if isinstance(client, Client)]
    refusals = [str(error) for error in made if isinstance(error, BenchError)]
    if len(clients) < len(made):
        shown = refusals[0] if refusals else repr(made)
        result.failures.append(
            f"mixed load, logging in {how}: {len(refusals)} of {len(made)} "
            f"sessions refused, e.g. {shown}"
        )
        await asyncio.gather(*(client.close() for client in clients))
        return
    result.figures["login_ms"] = statistics.median(logins) * 1000

    cpu_before = cpu_seconds(target.pid)
    began = time.perf_counter()
    deadline = began + args.seconds
    outcomes = await asyncio.gather(
        *(
            mixed_client(client, random.Random(f"{args.seed}:{n}"), mailbox, deadline)
            for n, client in enumerate(clients)
        ),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - began
    used = cpu_seconds(target.pid) - cpu_before
    await asyncio.gather(*(client.close() for client in clients))

    for outcome in outcomes:
        if isinstance(outcome, BenchError):
            result.failures.append(f"mixed load: {outcome}")
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            for name, times in outcome.items():
                latencies[name].extend(times)
    every = sorted(t for times in latencies.values() for t in times)
    if every and target.pid is not None:
        result.figures["mixed_cpu"] = 100 * used / elapsed
        result.figures["mixed_cpu_ms"] = 1000 * used / len(every)
    if every:
        result.figures["mixed_ops"] = len(every) / elapsed
        result.figures["mixed_p50_ms"] = percentile(every, 0.50) * 1000
        result.figures["mixed_p95_ms"] = percentile(every, 0.95) * 1000
    for name, times in latencies.items():
        if times:
            result.figures[f"mixed {name} p50_ms"] = statistics.median(times) * 1000


async def _settle(pending: Awaitable[Client]) -> Client | BaseException:
    try:
        return await pending
    except BenchError as exc:
        return exc


async def mixed_client(
    client: Client, rng: random.Random, mailbox: Mailbox, deadline: float
) -> dict[str, list[float]]:
    """One client's loop; stops at the first wrong answer (BenchError)."""
    count = len(mailbox.checksums)
    times: dict[str, list[float]] = {name: [] for name in MIXED}
    for loop in itertools.count():
        window = rng.randint(1, max(1, count - WINDOW + 1))
        body = rng.randint(1, count)
        commands = (
            ("SELECT", f"SELECT {quoted(mailbox.name)}")
            if loop % 10 == 9
            else ("NOOP", "NOOP"),
            ("FETCH 50", f"FETCH {window}:{window + WINDOW - 1} (FLAGS UID ENVELOPE)"),
            ("UID SEARCH", "UID SEARCH UNSEEN"),
            ("FETCH BODY[]", f"FETCH {body} BODY.PEEK[]"),
            ("STORE", f"STORE {rng.randint(1, count)} +FLAGS (\\Seen)"),
        )
        for name, line in commands:
            if time.perf_counter() >= deadline:
                return times
            began = time.perf_counter()
            responses = await client.command(line.encode())
            times[name].append(time.perf_counter() - began)
            if name == "FETCH BODY[]":
                check_body(responses, mailbox, body)
    raise AssertionError("unreachable")


def check_body(responses: list[Response], mailbox: Mailbox, n: int) -> None:
    literals = [literal for r in fetches(responses) for literal in r.literals]
    got = [(len(data), zlib.crc32(data)) for data in literals]
    if got != [mailbox.checksums[n - 1]]:
        raise BenchError(
            f"FETCH {n} BODY.PEEK[] -> literals of {[size for size, _ in got]} "
            f"bytes, not the {mailbox.checksums[n - 1][0]} bytes appended"
        )


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# -- memory --------------------------------------------------------------------


class PeakMemory:
    """Peak RSS and PSS summed over a process and its descendants, sampled
    every 0.2 s from /proc (Linux); zero when there is no process to watch."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        if self.pid is not None and Path(f"/proc/{self.pid}").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            rss = pss = 0
            for pid in _tree(self.pid or 0):
                rss += _kib(f"/proc/{pid}/status", "VmRSS:")
                pss += _kib(f"/proc/{pid}/smaps_rollup", "Pss:")
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)


def cpu_seconds(pid: int | None) -> float:
    """CPU time of a process tree so far, its reaped children's included."""
    ticks = 0
    for member in _tree(pid) if pid is not None else []:
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue  # gone since the listing
        fields = stat.rsplit(")", 1)[1].split()
        ticks += sum(int(value) for value in fields[11:15])  # utime..cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # the thread or process is gone
        for child in children:
            found.extend(_tree(int(child)))
    return found


def _kib(path: str, key: str) -> int:
    try:
        with open(path) as file:
            for line in file:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass  # the process is gone between listing and reading
    return 0


# -- Dovecot -------------------------------------------------------------------

DOVECOT_CONF = """\
# Throwaway configuration of imap_load.py: one user, Maildir, loopback only.
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
instance_name = imap-load-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {uid}
mail_location = maildir:{folder}/mail/%n
passdb {{
  driver = passwd-file
  args = scheme={scheme} {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{login_chroot}}}
protocol imap {{
  # The default of 10 would refuse the mixed load's clients.
  mail_max_userip_connections = 1000
}}
"""


def dovecot_missing(binary: str = DOVECOT) -> str | None:
    if not Path(binary).exists():
        return f"{binary} is not installed (apt-get install dovecot-imapd)"
    return None


def dovecot_schemes(binary: str) -> set[str]:
    doveadm = Path(binary).with_name("doveadm")
    if not doveadm.exists():
        doveadm = Path("/usr/bin/doveadm")
    listing = subprocess.run(
        [str(doveadm), "pw", "-l"], capture_output=True, text=True, check=True
    )
    return set(listing.stdout.split())


def password_hash(password: str, time_cost: int, memory_kib: int) -> str:
    """The password as nubo hashes it (Argon2id), in Dovecot's notation."""
    encoded = asyncio.run(Passwords(time_cost, memory_kib).hash(password))
    return "{ARGON2ID}" + encoded


@contextmanager
def running_dovecot(
    folder: Path, binary: str, user: str, password: str, hashed: str
) -> Iterator[Target]:
    """A Dovecot of its own in ``folder``, stopped on leaving."""
    port = free_port()
    if os.geteuid() == 0:
        # Dovecot never gives mail access to root (UID 0): mail is read and
        # written as nobody, logins run as Debian's dovenull, internals as
        # dovecot.
        owner = pwd.getpwnam("nobody")
        internal, group, login, chroot = "dovecot", "dovecot", "dovenull", ""
    else:
        owner = pwd.getpwuid(os.geteuid())
        internal = login = owner.pw_name
        group = grp.getgrgid(owner.pw_gid).gr_name
        chroot = "  chroot =\n"  # only root may chroot the login processes
    for sub in ("run", "state", "mail", "home"):
        (folder / sub).mkdir(parents=True)
    for sub in ("mail", "home"):
        os.chown(folder / sub, owner.pw_uid, owner.pw_gid)
    # The mail and auth processes must reach into the temporary folder
    # (search permission only: nothing in it is listed to others).
    for parent in (folder, *folder.parents):
        if not parent.stat().st_mode & 0o001:
            parent.chmod(parent.stat().st_mode | 0o001)
    (folder / "passwd").write_text(f"{user}:{hashed}\n")
    (folder / "passwd").chmod(0o644)
    conf = folder / "dovecot.conf"
    conf.write_text(
        DOVECOT_CONF.format(
            folder=folder,
            port=port,
            internal_user=internal,
            internal_group=group,
            login_user=login,
            uid=owner.pw_uid,
            gid=owner.pw_gid,
            scheme=hashed[1 : hashed.index("}")],
            login_chroot=chroot,
        )
    )

    process = subprocess.Popen(
        [binary, "-F", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if not wait_listening(port, process, 30):
            log = folder / "dovecot.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            said = process.stderr.read() if process.poll() is not None else ""
            raise BenchError(f"dovecot did not start: {said}{tail}")
        yield Target("dovecot", "127.0.0.1", port, user, password, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dovecot_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return done.stdout.strip()


# -- nubo ----------------------------------------------------------------------


def nubo_env(folder: Path, imap_port: int) -> dict[str, str]:
    """Settings of the benchmark's nubo: the embedded default in ``folder``,
    free ports, and nubo's default password cost (not the tests' cheap one),
    so that its logins cost what Dovecot's do."""
    env = cheap_env(
        folder,
        NUBO_LOG_LEVEL="warning",
        NUBO_IMAP_PORT=str(imap_port),
        NUBO_IMAPS_PORT="0",
    )
    del env["NUBO_PASSWORD_TIME_COST"], env["NUBO_PASSWORD_MEMORY_KIB"]
    return env


def nubo_cli(env: dict[str, str], *args: str, secret: str | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nubo", *args],
        env=env,
        input=None if secret is None else secret + "\n",
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise BenchError(f"nubo {' '.join(args)}: {done.stderr.strip()}")


@contextmanager
def running_nubo(folder: Path, user: str, password: str) -> Iterator[Target]:
    """``nubo serve`` on the embedded default in ``folder``; the user made
    with the nubo CLI."""
    imap_port = free_port()
    env = nubo_env(folder, imap_port)
    nubo_cli(env, "domain", "add", user.split("@")[1])
    nubo_cli(env, "user", "add", user, secret=password)

    server = NuboProcess(env)
    server.start()
    try:
        assert server.process is not None
        host, port = server.addresses.get("imap", ("127.0.0.1", imap_port))
        if not wait_listening(port, server.process, 10):
            raise BenchError(
                f"nubo serve does not answer on its IMAP port {port} (no "
                f"'listening imap' line among {len(server.output)} printed)"
            )
        yield Target("nubo", host, port, user, password, server.process.pid)
    finally:
        server.stop()


# -- plumbing ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        return True
    return False


# -- the report ----------------------------------------------------------------

# (key, label, format, better): "lower" for times and memory, "higher" rates.
ROWS = (
    ("append_rate", "populate: APPEND msg/s", "{:.0f}", "higher"),
    ("append_s", "populate: seconds", "{:.1f}", "lower"),
    ("select_ms", "SELECT ms", "{:.2f}", "lower"),
    ("fetch_flags_ms", "FETCH 1:* (FLAGS UID) ms", "{:.1f}", "lower"),
    ("envelope_ms", "FETCH 50 ENVELOPE ms", "{:.2f}", "lower"),
    ("search_ms", "UID SEARCH UNSEEN ms", "{:.2f}", "lower"),
    ("login_ms", "mixed: LOGIN ms", "{:.0f}", "lower"),
    ("mixed_ops", "mixed: commands/s", "{:.0f}", "higher"),
    ("mixed_p50_ms", "mixed: p50 ms", "{:.2f}", "lower"),
    ("mixed_p95_ms", "mixed: p95 ms", "{:.2f}", "lower"),
    ("mixed_cpu", "mixed: server CPU %", "{:.0f}", "lower"),
    ("mixed_cpu_ms", "mixed: server CPU ms/command", "{:.2f}", "lower"),
    *(
        (f"mixed {name} p50_ms", f"mixed: {name} p50 ms", "{:.2f}", "lower")
        for name in MIXED
    ),
    ("rss_mib", "peak RSS MiB", "{:.0f}", "lower"),
    ("pss_mib", "peak PSS MiB", "{:.0f}", "lower"),
)


def ratio(key: str, nubo: Result, dovecot: Result) -> float | None:
    """How many times better nubo does than Dovecot: above 1, nubo leads."""
    ours, theirs = nubo.figures.get(key), dovecot.figures.get(key)
    if not ours or not theirs:
        return None
    better = next(row[3] for row in ROWS if row[0] == key)
    return ours / theirs if better == "higher" else theirs / ours


def report(results: list[Result]) -> dict[str, float]:
    by_name = {result.server: result for result in results}
    pair = (by_name["nubo"], by_name["dovecot"]) if len(by_name) == 2 else None
    names = [result.server for result in results]
    ratios: dict[str, float] = {}

    header = f"{'':<32}" + "".join(f"{name:>12}" for name in names)
    print(header + (f"{'nubo ratio':>12}" if pair else ""))
    for key, label, shape, _ in ROWS:
        cells = [result.figures.get(key) for result in results]
        if all(cell is None for cell in cells):
            continue
        line = f"{label:<32}" + "".join(
            f"{'-' if cell is None else shape.format(cell):>12}" for cell in cells
        )
        if pair and (value := ratio(key, *pair)) is not None:
            ratios[key] = value
            line += f"{value:>12.2f}"
        print(line)
    if pair:
        print("nubo ratio: how many times better nubo does (> 1: nubo ahead)")
    for result in results:
        for note in result.notes:
            print(f"{result.server}: {note}")
        for failure in result.failures:
            print(f"{result.server} FAILED: {failure}")
    return ratios


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="APPENDs in flight")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0, help="per command")
    parser.add_argument("--mailbox", default="INBOX")
    parser.add_argument(
        "--logins-one-by-one",
        action="store_true",
        help="mixed load: sign the clients in in turn, not all at once",
    )
    parser.add_argument("--target", choices=("both", "dovecot", "nubo"), default="both")
    parser.add_argument("--dovecot", default=DOVECOT, help="the dovecot binary")
    parser.add_argument("--host", help="measure this server only")
    parser.add_argument("--port", type=int, default=143)
    parser.add_argument("--user", default=USER)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--pid", type=int, help="the --host server's process")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def run_servers(args: argparse.Namespace) -> tuple[list[Result], list[str]]:
    """Each server in turn; and the lines saying how they were set up."""
    if args.host:
        target = Target(
            args.host, args.host, args.port, args.user, args.password, args.pid
        )
        return [asyncio.run(measure(target, args))], []

    config = load(environ={})
    cost = (config.password_time_cost, config.password_memory_kib)
    setup = [f"nubo: embedded default (SQLite, blob folder); Argon2id t={cost[0]}"]
    setup[0] += f" m={cost[1]} KiB, nubo's default cost"
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="nubo-imap-load-") as name:
        folder = Path(name)
        if args.target in ("both", "dovecot"):
            missing = dovecot_missing(args.dovecot)
            if missing:
                setup.append(f"dovecot skipped: {missing}")
            else:
                hashed, scheme_line = dovecot_password(args, cost)
                setup.append(f"{dovecot_version(args.dovecot)}: {scheme_line}")
                with running_dovecot(
                    folder / "dovecot", args.dovecot, USER, PASSWORD, hashed
                ) as target:
                    results.append(asyncio.run(measure(target, args)))
        if args.target in ("both", "nubo"):
            try:
                with running_nubo(folder / "nubo", USER, PASSWORD) as target:
                    results.append(asyncio.run(measure(target, args)))
            except BenchError as exc:
                results.append(Result("nubo", failures=[str(exc)]))
    return results, setup


def dovecot_password(
    args: argparse.Namespace, cost: tuple[int, int]
) -> tuple[str, str]:
    """Dovecot's passwd-file hash, and a line saying which scheme and why."""
    if "ARGON2ID" in dovecot_schemes(args.dovecot):
        hashed = password_hash(PASSWORD, *cost)
        return hashed, "ARGON2ID, the same hash nubo makes (libsodium verifies it)"
    done = subprocess.run(
        ["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD],
        capture_output=True,
        text=True,
        check=True,
    )
    line = "SHA512-CRYPT: this build has no ARGON2ID (doveadm pw -l); logins differ"
    return done.stdout.strip(), line


def main() -> None:
    args = parse_args()
    began = time.monotonic()
    results, setup = run_servers(args)

    print(
        f"{args.messages} messages, {args.clients} clients for {args.seconds:g} s "
        f"of mixed load, medians of {args.repeat}, seed {args.seed}"
    )
    for line in setup:
        print(line)
    ratios = report(results)
    print(f"whole run: {time.monotonic() - began:.0f} s")

    if args.json:
        document = {
            "settings": {k: str(v) for k, v in vars(args).items() if k != "password"},
            "setup": setup,
            "results": [vars(result) for result in results],
            "nubo_ratios": ratios,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
