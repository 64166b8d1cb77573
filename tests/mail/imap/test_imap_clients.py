"""Real IMAP clients over real sockets against one ``nubo serve`` subprocess.

Issue 4 is done when the clients people use work against nubo: Python's
imaplib (every command a mail client sends), mbsync (Debian ``isync`` 1.4)
mirroring a mailbox both ways with a Maildir, offlineimap3 syncing both ways,
and curl fetching a message and one section. Each client has its own user of
example.org, so the tests share one server (module scope) and not a mailbox.
Mail arrives over SMTP on the MX port, as from the Internet, or by APPEND.

The clients are Debian packages (``isync``, ``offlineimap3``, ``curl``):
without one its test is skipped locally with a message and fails in CI
(``.ci/run`` installs them). A client that fails has its IMAP exchange
(``mbsync -Dn``, ``offlineimap -d imap``, ``curl -v``) in the assertion
message, so the command nubo answered wrongly can be read there.

What the sync clients change, and nothing else, is allowed for in the
byte-for-byte checks: both store Maildir files with LF line ends, and mbsync
adds an ``X-TUID`` header to each message it copies (its crash journal).
"""

from __future__ import annotations

import imaplib
import re
import shutil
import smtplib
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import scale_unavailable
from tests.serve import NuboProcess, cheap_env, nubo_ok

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
DOMAIN = "example.org"
ANN = f"ann@{DOMAIN}"  # imaplib
BOB = f"bob@{DOMAIN}"  # mbsync
CAROL = f"carol@{DOMAIN}"  # offlineimap
DAN = f"dan@{DOMAIN}"  # curl
SENDER = "dana@remote.test"
TIMEOUT = 120  # seconds for one client run; they take about one
TUID = re.compile(rb"^X-TUID: [A-Za-z0-9+/]{12}\r?\n", re.MULTILINE)

MULTIPART = (
    b"From: Dana <dana@remote.test>\r\n"
    b"To: ann@example.org\r\n"
    b"Subject: two parts\r\n"
    b"Message-ID: <parts@remote.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Ann\r\n"
    b"--b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>Hello Ann</p>\r\n"
    b"--b1--\r\n"
)
# RFC 3501 §7.4.2, as Dovecot 2.3 answers for the same message: the CRLF
# before a boundary belongs to the boundary (RFC 2046 §5.1.1), so each part
# is one line without its line end: 9 and 16 octets, 0 lines.
MULTIPART_STRUCTURE = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 9 0 NIL NIL NIL NIL)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 16 0'
    b' NIL NIL NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL)'
)


def message(subject: str, to: str, body: str = "Hello") -> bytes:
    return (
        f"From: Dana <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


# -- the server ----------------------------------------------------------------


@dataclass
class Server:
    process: NuboProcess

    @property
    def imap_port(self) -> int:
        return self.process.addresses["imap"][1]

    def deliver(self, rcpt: str, data: bytes) -> None:
        """Over SMTP to the MX port, as mail from the Internet arrives."""
        host, port = self.process.addresses["smtp"]
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail(SENDER, [rcpt], data)


def nubo_cli(env: dict[str, str], *argv: str) -> None:
    nubo_ok(env, *argv, stdin=PASSWORD + "\n", timeout=TIMEOUT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("imap-clients") / "data"
    env = cheap_env(data, NUBO_HOSTNAME=f"mx.{DOMAIN}", NUBO_SMTP_VERIFY="false")
    nubo_cli(env, "domain", "add", DOMAIN)
    for user in (ANN, BOB, CAROL, DAN):
        nubo_cli(env, "user", "add", user)
    process = NuboProcess(env)
    process.start()
    try:
        yield Server(process)
    finally:
        process.stop()


@contextmanager
def imap(server: Server, user: str) -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
    try:
        ok(client.login(user, PASSWORD))
        yield client
    finally:
        if client.state != "LOGOUT":
            client.logout()


@dataclass
class Stored:
    uid: int
    flags: set[str]
    data: bytes


def ok(answer: tuple[str, list[Any]]) -> list[Any]:
    """The data of an imaplib answer that must be OK."""
    typ, data = answer
    assert typ == "OK", data
    return data


def fetched(response: list[Any]) -> list[tuple[bytes, bytes]]:
    """imaplib's FETCH answer as (items around the literal, the literal)."""
    found: list[tuple[bytes, bytes]] = []
    for item in response:
        if isinstance(item, tuple):
            found.append((item[0], item[1]))
        elif isinstance(item, bytes) and found:
            # The items after the literal, e.g. b" FLAGS (\\Seen))".
            found[-1] = (found[-1][0] + item, found[-1][1])
    return found


def mailbox(server: Server, user: str, name: str = "INBOX") -> dict[str, Stored]:
    """Every message of a mailbox by Subject, read with BODY.PEEK[]."""
    with imap(server, user) as client:
        count = ok(client.select(name, readonly=True))
        if count == [b"0"]:
            return {}
        response = ok(client.fetch("1:*", "(UID FLAGS BODY.PEEK[])"))
    found = {}
    for items, data in fetched(response):
        uid = re.search(rb"UID (\d+)", items)
        flags = re.search(rb"FLAGS \(([^)]*)\)", items)
        assert uid is not None and flags is not None, items
        found[subject(data)] = Stored(
            int(uid.group(1)), set(flags.group(1).decode().split()), data
        )
    return found


def subject(data: bytes) -> str:
    found = re.search(rb"^Subject: (.*?)\r?$", data, re.MULTILINE)
    assert found is not None, data[:200]
    return found.group(1).decode()


# -- local Maildirs --------------------------------------------------------------


@dataclass
class Local:
    path: Path
    flags: str  # the Maildir info after ":2,", e.g. "FS"
    data: bytes

    def set_flags(self, flags: str) -> None:
        """Change flags as a Maildir reader does: by renaming the file."""
        name = self.path.name.rsplit(":2,", 1)[0] + ":2," + flags
        self.path.rename(self.path.parent.parent / "cur" / name)


def maildir(folder: Path) -> dict[str, Local]:
    found = {}
    for sub in ("new", "cur"):
        for path in (folder / sub).iterdir():
            info = path.name.rsplit(":2,", 1)
            data = path.read_bytes()
            found[subject(data)] = Local(path, info[1] if len(info) > 1 else "", data)
    return found


def drop_local(folder: Path, data: bytes, flags: str = "") -> None:
    """A message a local mail reader wrote into the Maildir (LF line ends)."""
    name = f"{time.time_ns()}.local:2,{flags}"
    (folder / "cur" / name).write_bytes(as_lf(data))


def as_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def without_tuid(data: bytes) -> bytes:
    """The message as it was before mbsync wrote its journal header into it."""
    blank = b"\r\n\r\n" if b"\r\n" in data else b"\n\n"
    end = data.index(blank) + len(blank) // 2
    head, count = TUID.subn(b"", data[:end])
    assert count == 1, data[:end]
    return head + data[end:]


# -- running the clients -----------------------------------------------------------


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        scale_unavailable(binary, f"apt-get install {package}")
        raise AssertionError  # unreachable: the line above skips or fails
    return path


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A client run that must succeed; its whole exchange when it does not."""
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    said = (done.stdout + done.stderr)[-20_000:]
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{said}"
    return done


# -- Python imaplib --------------------------------------------------------------


def test_imaplib_reads_files_and_moves_mail(server: Server) -> None:
    server.deliver(ANN, MULTIPART)
    appended = message("appended", ANN, "Saved by a client")
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)

    # RFC 3501 §6.2.3 and the capabilities after login (RFC 3501 §7.1).
    ok(client.login(ANN, PASSWORD))
    capability = ok(client.capability())
    assert {"IMAP4REV1", "UIDPLUS", "MOVE", "SPECIAL-USE"} <= set(
        capability[0].decode().upper().split()
    )

    listed = ok(client.list())
    names = {line.rsplit(b' "/" ', 1)[1]: line for line in listed if line}
    assert set(names) == {b"INBOX", b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash"}
    assert b"\\Sent" in names[b"Sent"] and b"\\Trash" in names[b"Trash"]

    assert client.select("INBOX") == ("OK", [b"1"])
    answer = ok(
        client.append(
            "INBOX", r"(\Flagged)", imaplib.Time2Internaldate(1_700_000_000), appended
        )
    )
    assert re.fullmatch(rb"\[APPENDUID \d+ 2\] .*", answer[0]), answer

    # The delivered message: trace fields above what the sender wrote.
    response = ok(client.fetch("1", "(RFC822)"))
    (items, data), *_ = fetched(response)
    assert data.startswith(f"Return-Path: <{SENDER}>\r\nReceived: ".encode())
    assert data.endswith(MULTIPART)

    response = ok(client.fetch("2", "(BODY.PEEK[HEADER] INTERNALDATE)"))
    (items, data), *_ = fetched(response)
    assert data == appended[: appended.index(b"\r\n\r\n") + 4]
    stamp = imaplib.Internaldate2tuple(items)
    assert stamp is not None and time.mktime(stamp) == 1_700_000_000

    response = ok(client.fetch("1", "(BODYSTRUCTURE)"))
    found = re.fullmatch(rb"1 \(BODYSTRUCTURE (.*)\)", response[0])
    assert found is not None, response
    assert found.group(1).lower() == MULTIPART_STRUCTURE.lower()

    # RFC 3501 §6.4.4: RFC822 set \Seen on 1; PEEK left 2 unseen.
    assert client.search(None, "UNSEEN") == ("OK", [b"2"])
    assert client.search(None, "FLAGGED") == ("OK", [b"2"])
    assert client.search(None, "SUBJECT", '"two parts"') == ("OK", [b"1"])
    assert client.uid("SEARCH", "ALL") == ("OK", [b"1 2"])

    # RFC 3501 §6.4.6.
    response = ok(client.store("2", "+FLAGS", r"(\Seen \Answered)"))
    flags = re.search(rb"FLAGS \(([^)]*)\)", response[0])
    assert flags is not None
    assert set(flags.group(1).split()) == {b"\\Seen", b"\\Answered", b"\\Flagged"}

    # RFC 3501 §6.4.7 with UIDPLUS's COPYUID (RFC 4315 §3).
    ok(client.copy("1", "Archive"))
    _, copyuid = client.response("COPYUID")
    assert re.fullmatch(rb"\d+ 1 1", copyuid[0]), copyuid

    # RFC 6851 §3.3: UID MOVE answers with COPYUID and expunges at the source.
    ok(client.uid("MOVE", "2", "Trash"))
    _, copyuid = client.response("COPYUID")
    assert re.fullmatch(rb"\d+ 2 1", copyuid[0]), copyuid
    assert client.select("INBOX") == ("OK", [b"1"])

    # RFC 3501 §6.4.3.
    client.store("1", "+FLAGS", r"(\Deleted)")
    assert client.expunge() == ("OK", [b"1"])
    assert client.search(None, "ALL") == ("OK", [b""])

    assert client.logout()[0] == "BYE"

    archive, trash = mailbox(server, ANN, "Archive"), mailbox(server, ANN, "Trash")
    assert archive["two parts"].data.endswith(MULTIPART)
    assert archive["two parts"].flags == {"\\Seen"}
    assert trash["appended"].data == appended
    assert trash["appended"].flags == {"\\Seen", "\\Answered", "\\Flagged"}


# -- mbsync (isync 1.4) ------------------------------------------------------------

# isync 1.4 spells TLS "SSLType" and needs a blank line between sections.
MBSYNC_RC = """\
IMAPAccount nubo
Host 127.0.0.1
Port {port}
User {user}
Pass "{password}"
SSLType None

IMAPStore nubo-far
Account nubo

MaildirStore local
Path {root}/
Inbox {root}/INBOX
SubFolders Verbatim

Channel mirror
Far :nubo-far:
Near :local:
Patterns INBOX Projects
Create Both
Expunge Both
SyncState *
"""


def test_mbsync_mirrors_a_mailbox_both_ways(server: Server, tmp_path: Path) -> None:
    mbsync = need("mbsync", "isync")
    root = tmp_path / "mail"
    root.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        MBSYNC_RC.format(port=server.imap_port, user=BOB, password=PASSWORD, root=root)
    )

    def sync() -> None:
        run([mbsync, "-c", str(rc), "-D", "-V", "-a"], tmp_path)

    first, second = message("first", BOB), message("second", BOB)
    server.deliver(BOB, first)
    server.deliver(BOB, second)
    with imap(server, BOB) as client:
        ok(client.append("INBOX", r"(\Flagged)", None, message("third", BOB)))

    # Far to near: the exact bytes nubo serves, with LF line ends.
    sync()
    far, near = mailbox(server, BOB), maildir(root / "INBOX")
    assert set(near) == {"first", "second", "third"}
    for name, stored in far.items():
        assert without_tuid(near[name].data) == as_lf(stored.data)
    assert far["first"].data.endswith(first)
    assert near["first"].flags == "" and near["third"].flags == "F"

    # Near to far: what a local reader wrote, with CRLF line ends on the far
    # side; a folder made locally is created on the far side (Create Both).
    local = message("written locally", BOB, "From the Maildir")
    drop_local(root / "INBOX", local, "S")
    for sub in ("cur", "new", "tmp"):
        (root / "Projects" / sub).mkdir(parents=True)
    drop_local(root / "Projects", message("plans", BOB))
    sync()
    far = mailbox(server, BOB)
    assert without_tuid(far["written locally"].data) == local
    assert far["written locally"].flags == {"\\Seen"}
    projects = mailbox(server, BOB, "Projects")
    assert without_tuid(projects["plans"].data) == message("plans", BOB)

    # Flags both ways: \Seen set on the far side, \Flagged on the near side.
    with imap(server, BOB) as client:
        client.select("INBOX")
        ok(client.uid("STORE", str(far["first"].uid), "+FLAGS", r"(\Seen)"))
    maildir(root / "INBOX")["second"].set_flags("F")
    sync()
    near, far = maildir(root / "INBOX"), mailbox(server, BOB)
    assert near["first"].flags == "S"
    assert far["second"].flags == {"\\Flagged"}

    # Deletion both ways (Expunge Both): expunged on the far side, trashed
    # (T, \Deleted) on the near side.
    with imap(server, BOB) as client:
        client.select("INBOX")
        client.uid("STORE", str(far["first"].uid), "+FLAGS", r"(\Deleted)")
        assert client.expunge()[0] == "OK"
    near["third"].set_flags("FT")
    sync()
    assert set(maildir(root / "INBOX")) == {"second", "written locally"}
    assert set(mailbox(server, BOB)) == {"second", "written locally"}

    # A last run finds nothing left to do.
    sync()
    assert set(maildir(root / "INBOX")) == {"second", "written locally"}
    assert len(mailbox(server, BOB)) == 2


# -- offlineimap3 ------------------------------------------------------------------

OFFLINEIMAP_RC = """\
[general]
accounts = nubo
metadata = {folder}/metadata

[Account nubo]
localrepository = local
remoterepository = far

[Repository local]
type = Maildir
localfolders = {folder}/mail

[Repository far]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = {user}
remotepass = {password}
ssl = no
starttls = no
folderfilter = lambda name: name == "INBOX"
"""


def test_offlineimap_syncs_both_ways(server: Server, tmp_path: Path) -> None:
    offlineimap = need("offlineimap", "offlineimap3")
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        OFFLINEIMAP_RC.format(
            folder=tmp_path, port=server.imap_port, user=CAROL, password=PASSWORD
        )
    )
    inbox = tmp_path / "mail" / "INBOX"

    def sync() -> None:
        run([offlineimap, "-c", str(rc), "-o", "-u", "basic", "-d", "imap"], tmp_path)

    first = message("first", CAROL)
    server.deliver(CAROL, first)
    server.deliver(CAROL, message("second", CAROL))

    # Far to near, byte for byte but for the line ends.
    sync()
    far, near = mailbox(server, CAROL), maildir(inbox)
    assert set(near) == {"first", "second"}
    for name, stored in far.items():
        assert near[name].data == as_lf(stored.data)
    assert far["first"].data.endswith(first)

    # Near to far: a new message and a flag.
    local = message("written locally", CAROL, "From the Maildir")
    drop_local(inbox, local, "S")
    near["first"].set_flags("S")
    sync()
    far = mailbox(server, CAROL)
    assert far["written locally"].data == local
    assert far["written locally"].flags == {"\\Seen"}
    assert far["first"].flags == {"\\Seen"}

    # Far to near: a flag, then a deletion; near to far: a deletion.
    with imap(server, CAROL) as client:
        client.select("INBOX")
        client.uid("STORE", str(far["second"].uid), "+FLAGS", r"(\Flagged)")
        client.uid("STORE", str(far["written locally"].uid), "+FLAGS", r"(\Deleted)")
        assert client.expunge()[0] == "OK"
    sync()
    near = maildir(inbox)
    assert set(near) == {"first", "second"}
    assert near["second"].flags == "F"

    near["first"].path.unlink()
    sync()
    assert set(mailbox(server, CAROL)) == {"second"}
    assert set(maildir(inbox)) == {"second"}


# -- curl ----------------------------------------------------------------------------


def test_curl_searches_and_fetches(server: Server, tmp_path: Path) -> None:
    curl = need("curl", "curl")
    server.deliver(DAN, message("for curl", DAN, "Fetched by curl"))
    server.deliver(DAN, message("another", DAN))
    stored = mailbox(server, DAN)
    url = f"imap://127.0.0.1:{server.imap_port}/INBOX"

    def fetch(*argv: str) -> bytes:
        done = subprocess.run(
            [
                curl,
                "-sS",
                "-v",
                "--max-time",
                "60",
                "--user",
                f"{DAN}:{PASSWORD}",
                *argv,
            ],
            cwd=tmp_path,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-20_000:]
        return done.stdout

    assert fetch(url, "-X", "UID SEARCH ALL") == b"* SEARCH 1 2\r\n"
    uid = stored["for curl"].uid
    assert fetch(f"{url};UID={uid}") == stored["for curl"].data
    section = fetch(f"{url};UID={uid};SECTION=HEADER.FIELDS%20(SUBJECT)")
    assert section == b"Subject: for curl\r\n\r\n"
