"""Inbound SMTP delivery: messages per second into local mailboxes.

N distinct messages of about 10 KB, each to one of ten local users, sent
over 8 connections at once (MAIL, RCPT and DATA pipelined, RFC 2920) by one
asyncio client, to each server in turn, in the same run:

- **nubo**: a real ``nubo serve`` subprocess on the embedded pair (SQLite and
  a blob folder in a temporary folder), through its MX port; its 250 comes
  once the message is committed in the user's Inbox. SPF/DKIM/DMARC checks
  are off (``--verify`` turns them on against a loopback DNS server), since
  the peers do none.
- **postfix** (Debian ``postfix``, when ``/usr/sbin/postfix`` is there and we
  are root): a throwaway instance in a temporary configuration folder
  (``postfix -c DIR``), delivering with ``virtual`` to Maildir. Its 250 comes
  once the message is safe in its queue; delivery follows, so both the rate
  of 250s and the rate until the last Maildir file exists are given.
- **aiosmtpd**: a bare aiosmtpd handler in a subprocess writing each message
  to a Maildir file (written, fsynced, renamed) before its 250: the floor of
  the Python stack nubo is built on.

Prints one line per server and the ratios to nubo. Other load on the
machine moves every figure; compare within one run.

    python benchmarks/smtp_deliver.py [--messages 2000] [--connections 8]
        [--size 10240] [--verify] [--skip postfix,aiosmtpd]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nubo.accounts import Accounts
from nubo.config import load
from nubo.runtime import open_runtime
from nubo.store.schema import messages
from tests.mail.dnsserver import serve_dns
from tests.serve import NuboProcess, cheap_env

USERS = [f"user{n}@example.org" for n in range(10)]
SENDER = "bench@example.net"


@dataclass(frozen=True)
class Result:
    server: str
    messages: int
    accepted_seconds: float  # first MAIL to the last 250
    delivered_seconds: float  # first MAIL to the last message in a mailbox

    @property
    def accepted_rate(self) -> float:
        return self.messages / self.accepted_seconds

    @property
    def delivered_rate(self) -> float:
        return self.messages / self.delivered_seconds


def message(n: int, size: int) -> bytes:
    head = (
        f"From: Bench <{SENDER}>\r\nTo: {USERS[n % len(USERS)]}\r\n"
        f"Subject: benchmark message {n}\r\n"
        f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{n}.{time.time_ns()}@example.net>\r\n\r\n"
    ).encode()
    line = f"{n:08d} the quick brown fox jumps over the lazy dog again and ".encode()
    body = (line + b"\r\n") * ((size - len(head)) // (len(line) + 2) + 1)
    return head + body


# -- the client ---------------------------------------------------------------


async def reply(reader: asyncio.StreamReader) -> str:
    while True:
        line = (await reader.readline()).decode()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != "-":
            return line


async def connection(port: int, jobs: asyncio.Queue[int], size: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    writer.write(b"EHLO bench.example.net\r\n")
    await reply(reader)
    while True:
        try:
            n = jobs.get_nowait()
        except asyncio.QueueEmpty:
            break
        rcpt = USERS[n % len(USERS)]
        writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for expected in ("250", "250", "354"):
            answer = await reply(reader)
            assert answer.startswith(expected), answer
        writer.write(message(n, size) + b".\r\n")
        answer = await reply(reader)
        assert answer.startswith("250"), answer
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def send_all(port: int, count: int, connections: int, size: int) -> float:
    """Seconds from the first MAIL to the last 250."""
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        jobs.put_nowait(n)
    began = time.perf_counter()
    await asyncio.gather(*(connection(port, jobs, size) for _ in range(connections)))
    return time.perf_counter() - began


def run(
    name: str,
    port: int,
    args: argparse.Namespace,
    delivered: Callable[[], int],
) -> Result:
    # A short warm-up, then the measured run.
    warm = min(50, args.messages)
    asyncio.run(send_all(port, warm, args.connections, args.size))
    wait_until(lambda: delivered() >= warm)

    began = time.perf_counter()
    accepted = asyncio.run(send_all(port, args.messages, args.connections, args.size))
    wait_until(lambda: delivered() >= warm + args.messages)
    done = time.perf_counter() - began
    return Result(name, args.messages, accepted, done)


def wait_until(condition: Callable[[], bool], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("messages were not all delivered")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- nubo ---------------------------------------------------------------------


async def prepare_nubo(env: dict[str, str]) -> None:
    config = load(environ=env)
    runtime = await open_runtime(config)
    try:
        accounts = Accounts(runtime.db, config)
        await accounts.add_domain("example.org")
        for address in USERS:
            await accounts.add_user(address, "benchmark password")
    finally:
        await runtime.close()


async def count_nubo(env: dict[str, str]) -> int:
    config = load(environ=env)
    runtime = await open_runtime(config, migrate=False)
    try:
        async with runtime.db.read() as conn:
            rows = await conn.execute(
                messages.select().with_only_columns(messages.c.id)
            )
            return len(rows.all())
    finally:
        await runtime.close()


def bench_nubo(folder: Path, args: argparse.Namespace) -> Result:
    records = {"example.net": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}}
    with serve_dns(records) as dns:
        env = cheap_env(
            folder / "nubo",
            NUBO_SMTP_VERIFY="true" if args.verify else "false",
            NUBO_DNS_SERVERS=dns,
            NUBO_LOG_LEVEL="warning",
        )
        asyncio.run(prepare_nubo(env))
        server = NuboProcess(env)
        server.start()
        try:
            port = server.addresses["smtp"][1]
            # Every 250 is a committed delivery: nothing to wait for after.
            result = run("nubo", port, args, lambda: 10**9)
        finally:
            server.stop()
        stored = asyncio.run(count_nubo(env))
    expected = min(50, args.messages) + args.messages
    assert stored == expected, (stored, expected)
    return result


# -- Postfix ------------------------------------------------------------------

POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def postfix_main(folder: Path, owner: str) -> str:
    return textwrap.dedent(
        f"""\
        compatibility_level = 3.6
        queue_directory = {folder}/queue
        data_directory = {folder}/data
        meta_directory = /etc/postfix
        command_directory = /usr/sbin
        daemon_directory = /usr/lib/postfix/sbin
        mail_owner = {owner}
        setgid_group = postdrop
        myhostname = bench.example.net
        mydestination =
        inet_interfaces = 127.0.0.1
        inet_protocols = ipv4
        mynetworks = 127.0.0.0/8
        alias_maps =
        alias_database =
        local_recipient_maps =
        virtual_mailbox_domains = example.org
        virtual_mailbox_base = {folder}/mail
        virtual_mailbox_maps = texthash:{folder}/conf/vmailbox
        virtual_uid_maps = static:{pwd.getpwnam(owner).pw_uid}
        virtual_gid_maps = static:{pwd.getpwnam(owner).pw_gid}
        smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
        maillog_file = {folder}/maillog
        maillog_file_prefixes = {folder}
        biff = no
        """
    )


def postfix_missing() -> str | None:
    if not Path("/usr/sbin/postfix").exists():
        return "/usr/sbin/postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a throwaway Postfix needs root to start"
    return None


@contextmanager
def running_postfix(folder: Path, port: int) -> Iterator[Path]:
    """A Postfix instance of its own; yields its Maildir base."""
    for sub in ("conf", "queue", "data", "mail"):
        (folder / sub).mkdir(parents=True)
    # Postfix's daemons run as the postfix user, which must reach the folder
    # (a temporary folder is private to its owner).
    for parent in (folder, *folder.parents):
        if parent.stat().st_mode & 0o005 != 0o005:
            parent.chmod(parent.stat().st_mode | 0o005)
    (folder / "conf" / "main.cf").write_text(postfix_main(folder, "postfix"))
    (folder / "conf" / "master.cf").write_text(POSTFIX_MASTER.format(port=port))
    (folder / "conf" / "vmailbox").write_text(
        "".join(f"{a} example.org/{a.split('@')[0]}/\n" for a in USERS)
    )
    for sub in ("mail", "data"):
        shutil.chown(folder / sub, "postfix", "postfix")
    conf = str(folder / "conf")
    subprocess.run(["/usr/sbin/postfix", "-c", conf, "set-permissions"], check=True)
    subprocess.run(["/usr/sbin/postfix", "-c", conf, "start"], check=True)
    try:
        wait_until(lambda: _listening(port), timeout=30)
        yield folder / "mail"
    finally:
        subprocess.run(["/usr/sbin/postfix", "-c", conf, "stop"], check=False)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def maildir_count(base: Path, pattern: str) -> Callable[[], int]:
    """Messages in the ``new/`` folders of the Maildirs ``pattern`` finds."""

    def count() -> int:
        return sum(len(os.listdir(folder)) for folder in base.glob(pattern))

    return count


def bench_postfix(folder: Path, args: argparse.Namespace) -> Result:
    port = free_port()
    with running_postfix(folder / "postfix", port) as mail:
        return run("postfix", port, args, maildir_count(mail, "*/*/new"))


# -- bare aiosmtpd ------------------------------------------------------------

AIOSMTPD_SERVER = """\
import asyncio, os, sys, time
from aiosmtpd.controller import Controller

BASE = sys.argv[1]
COUNTER = [0]


class MaildirHandler:
    async def handle_DATA(self, server, session, envelope):
        user = envelope.rcpt_tos[0].split("@")[0]
        folder = os.path.join(BASE, user)
        COUNTER[0] += 1
        name = f"{time.time_ns()}.{os.getpid()}_{COUNTER[0]}.bench"
        tmp = os.path.join(folder, "tmp", name)
        with open(tmp, "wb") as file:
            file.write(envelope.original_content)
            file.flush()
            os.fsync(file.fileno())
        os.rename(tmp, os.path.join(folder, "new", name))
        return "250 2.0.0 OK"


for user in sys.argv[3:]:
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(BASE, user, sub), exist_ok=True)
controller = Controller(
    MaildirHandler(), hostname="127.0.0.1", port=int(sys.argv[2]),
    decode_data=False, data_size_limit=50 * 1024 * 1024,
)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""


def bench_aiosmtpd(folder: Path, args: argparse.Namespace) -> Result:
    port = free_port()
    base = folder / "aiosmtpd"
    users = [address.split("@")[0] for address in USERS]
    process = subprocess.Popen(
        [sys.executable, "-c", AIOSMTPD_SERVER, str(base), str(port), *users],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        return run("aiosmtpd", port, args, maildir_count(base, "*/new"))
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)


# -- main ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--skip", default="", help="comma-separated: postfix,aiosmtpd")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        results.append(bench_nubo(folder, args))
        if "postfix" not in skip:
            missing = postfix_missing()
            if missing:
                print(f"postfix skipped: {missing}")
            else:
                results.append(bench_postfix(folder, args))
        if "aiosmtpd" not in skip:
            results.append(bench_aiosmtpd(folder, args))

    print(
        f"{args.messages} messages of {args.size} bytes, {args.connections} "
        f"connections, nubo verify={'on' if args.verify else 'off'}"
    )
    print(f"{'server':<10} {'250s/s':>8} {'in mailbox/s':>13}")
    for result in results:
        print(
            f"{result.server:<10} {result.accepted_rate:8.0f} "
            f"{result.delivered_rate:13.0f}"
        )
    nubo = results[0]
    for peer in results[1:]:
        print(
            f"nubo / {peer.server}: {nubo.delivered_rate / peer.delivered_rate:.2f} "
            f"(in mailbox), {nubo.accepted_rate / peer.accepted_rate:.2f} (250s)"
        )


if __name__ == "__main__":
    main()
