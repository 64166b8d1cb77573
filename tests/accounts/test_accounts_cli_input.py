"""What the account commands do with odd input: prompts, sizes, administrators.

The prompt cases run ``nubo`` on a pseudo-terminal, as a person would: end of
input (Ctrl-D) and Ctrl-C at the first prompt must each end the command with
one line, never a traceback.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from nubo.accounts import Accounts, Conflict
from nubo.accounts.quota import format_size, parse_size
from nubo.cli.common import describe_collect
from nubo.store.blobs.store import CollectReport
from tests.accounts.test_accounts_cli import environment, nubo, one_line


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("0.0G", 0),
        ("0.0000000001G", 1),  # a fraction of a byte rounds up, never to unlimited
        ("1.5K", 1536),
        ("5P", 5 * 1024**5),
        ("5 GiB", 5 * 1024**3),
    ],
)
def test_sizes_round_up_to_whole_bytes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0.5", "1.5", "\uff15G", "1e5", "--5G"])
def test_sizes_without_whole_ascii_bytes_are_refused(text: str) -> None:
    with pytest.raises(Exception, match=r"^invalid size "):
        parse_size(text)


def test_a_size_near_the_limit_prints_without_a_decimal_zero() -> None:
    assert format_size(2**63 - 1) == "8192P"
    assert format_size(3 * 1024**3 // 2) == "1.5G"


def test_a_collection_is_one_human_line() -> None:
    assert describe_collect(CollectReport()) == "collected 0 blobs, freed 0 bytes"
    report = CollectReport(expired=2, orphans=1, freed_bytes=3 * 1024 * 1024 // 2)
    assert describe_collect(report) == "collected 3 blobs, freed 1.5 MiB"


async def test_the_last_administrator_stays(accounts: Accounts) -> None:
    await accounts.add_domain("example.org")
    await accounts.add_user("ann@example.org", "ann's password", is_admin=True)

    for change in (
        accounts.set_disabled("ann@example.org", True),
        accounts.remove_user("ann@example.org"),
    ):
        with pytest.raises(Conflict) as caught:
            await change
        assert str(caught.value) == "ann@example.org is the last administrator"

    await accounts.add_user("bob@example.org", "bob's password", is_admin=True)
    assert (await accounts.set_disabled("ann@example.org", True)).disabled
    with pytest.raises(Conflict, match=r"bob@example\.org is the last administrator"):
        await accounts.remove_user("bob@example.org")


# -- as commands -------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A store with example.org and its administrator ann; default logging."""
    env = environment(tmp_path)
    one_line(nubo(env, "domain", "add", "example.org"))
    one_line(nubo(env, "user", "add", "ann@example.org", "--admin", stdin="a" * 9))
    return env


@pytest.mark.slow
def test_commands_print_their_line_and_no_log(env: dict[str, str]) -> None:
    result = nubo(env, "db", "gc")

    assert one_line(result) == "collected 0 blobs, freed 0 bytes"
    assert result.stderr == ""


@pytest.mark.slow
def test_the_last_administrator_cannot_be_disabled(env: dict[str, str]) -> None:
    result = nubo(env, "user", "disable", "ann@example.org")

    assert result.returncode == 1
    assert result.stderr == "nubo: ann@example.org is the last administrator\n"


@pytest.mark.slow
def test_a_password_that_is_not_utf8_is_refused(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nubo", "user", "passwd", "ann@example.org"],
        input=b"caf\xe9 au lait\n",
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == b"nubo: the password is not UTF-8 text\n"


def on_terminal(env: dict[str, str], *argv: str, keys: bytes) -> tuple[int, str]:
    """Run nubo on a pseudo-terminal, type ``keys`` at the first prompt.

    Returns the exit status and everything the terminal showed.
    """
    controller, terminal = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the session's controlling tty

    process = subprocess.Popen(
        [sys.executable, "-m", "nubo", *argv],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,
        preexec_fn=take_terminal,  # no threads run before it
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 120
    try:
        while b"password for" not in shown and time.monotonic() < deadline:
            shown += _read(controller)
        time.sleep(0.2)  # the prompt is written just before echo is turned off
        os.write(controller, keys)
        while process.poll() is None and time.monotonic() < deadline:
            shown += _read(controller)
        shown += _read(controller)
        return process.wait(timeout=10), shown.decode("utf-8", "replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


def _read(fd: int) -> bytes:
    if not select.select([fd], [], [], 0.1)[0]:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:  # the other side closed: EIO on Linux
        return b""


@pytest.mark.slow
def test_end_of_input_at_the_prompt_is_one_line(env: dict[str, str]) -> None:
    status, shown = on_terminal(env, "user", "add", "bob@example.org", keys=b"\x04")

    assert status == 1
    assert "Traceback" not in shown
    assert shown.rstrip().endswith("nubo: no password given")


@pytest.mark.slow
def test_ctrl_c_at_the_first_prompt_is_one_line(env: dict[str, str]) -> None:
    status, shown = on_terminal(env, "user", "add", "bob@example.org", keys=b"\x03")

    assert status == 130
    assert "Traceback" not in shown
    assert shown.rstrip().endswith("nubo: interrupted")
