"""The account commands, run for real as ``python -m nubo`` subprocesses.

Every error path must end with exit status 1 and exactly one line on
standard error, ``nubo: <what was wrong>``, and print nothing on standard
output. The error cases run concurrently against one prepared store (each
command is a new Python process, about a second each); the whole life of an
account runs once on each backend.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from nubo.accounts import Accounts
from nubo.config import load
from nubo.store.database import Database
from tests.serve import run_nubo

pytestmark = pytest.mark.slow

CHEAP_ENV = {"NUBO_PASSWORD_TIME_COST": "1", "NUBO_PASSWORD_MEMORY_KIB": "8"}


def environment(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
    env.update(CHEAP_ENV, NUBO_DATA=str(data), **extra)
    return env


def nubo(
    env: dict[str, str], *argv: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_nubo(env, *argv, stdin=stdin, timeout=120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a successful command printed."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


# -- every error path ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    message: str  # the whole line after "nubo: ", or its start if it ends "…"
    stdin: str = "a password\n"


ALICE = "alice@example.org"
ROOT = "root's password\n"
GHOST = "ghost@example.org"

CASES = {
    "domain add invalid": Case(
        ("domain", "add", "exa_mple.org"), "invalid domain 'exa_mple.org': …"
    ),
    "domain add ip": Case(
        ("domain", "add", "192.0.2.1"),
        "invalid domain '192.0.2.1': an IP address is not a domain name",
    ),
    "domain add duplicate": Case(
        ("domain", "add", "EXAMPLE.org"), "domain example.org already exists"
    ),
    "domain remove missing": Case(
        ("domain", "remove", "nowhere.example"), "no such domain: nowhere.example"
    ),
    "domain remove not empty": Case(
        ("domain", "remove", "example.org"),
        "domain example.org still has 1 user and 1 alias; remove them first",
    ),
    "user add invalid address": Case(
        ("user", "add", "not-an-address"),
        "invalid address 'not-an-address': no @-sign",
    ),
    "user add bad local part": Case(
        ("user", "add", "a..b@example.org"),
        "invalid address 'a..b@example.org': an email address cannot have two "
        "periods in a row",
    ),
    "user add missing domain": Case(
        ("user", "add", "a@nowhere.example"), "no such domain: nowhere.example"
    ),
    "user add duplicate": Case(
        ("user", "add", "Alice@Example.org"), "user alice@example.org already exists"
    ),
    "user add over an alias": Case(
        ("user", "add", "team@example.org"), "alias team@example.org already exists"
    ),
    "user add tag": Case(
        ("user", "add", "x+y@example.org"),
        "invalid address 'x+y@example.org': '+' is reserved for plus-addressing "
        "(user+tag@domain)",
    ),
    "user add empty password": Case(
        ("user", "add", "new@example.org"), "the password is empty", stdin=""
    ),
    "user add bad quota": Case(
        ("user", "add", "new@example.org", "--quota", "5X"),
        "invalid size '5X': use bytes or a number with K, M, G, T or P, such as "
        "500M or 5G",
    ),
    "user add negative quota": Case(
        ("user", "add", "new@example.org", "--quota", "-1"),
        "a quota cannot be negative",
    ),
    "user add negative quota with a unit": Case(
        ("user", "add", "new@example.org", "--quota", "-5G"),
        "a quota cannot be negative",
    ),
    "user add short password": Case(
        ("user", "add", "new@example.org"),
        "the password is shorter than 8 characters",
        stdin="x\n",
    ),
    "user add blank password": Case(
        ("user", "add", "new@example.org"), "the password is only spaces", stdin=" " * 9
    ),
    "user add two-line password": Case(
        ("user", "add", "new@example.org"),
        "the password must be one line",
        stdin="first line\nsecond line\n",
    ),
    "user add control characters": Case(
        ("user", "add", "new@example.org"),
        "the password contains control characters",
        stdin="pass\tword\n",
    ),
    "user add bad name": Case(
        ("user", "add", "new@example.org", "--name", "a\tb"),
        "the name contains control characters",
    ),
    "user list missing domain": Case(
        ("user", "list", "--domain", "nowhere.example"),
        "no such domain: nowhere.example",
    ),
    "user passwd unknown": Case(("user", "passwd", GHOST), f"no such user: {GHOST}"),
    "user passwd empty": Case(
        ("user", "passwd", ALICE), "the password is empty", stdin="\n"
    ),
    "user quota negative": Case(
        ("user", "quota", ALICE, "-5G"), "a quota cannot be negative"
    ),
    "user quota half a byte": Case(
        ("user", "quota", ALICE, "0.5"),
        "invalid size '0.5': bytes are whole; use a unit for a fraction, such as 1.5G",
    ),
    "user quota fullwidth digits": Case(
        ("user", "quota", ALICE, "\uff15G"), "invalid size '\uff15G': use bytes …"
    ),
    "domain add leading dash": Case(
        ("domain", "add", "-bad-.org"), "invalid domain '-bad-.org': …"
    ),
    "user quota bad size": Case(
        ("user", "quota", ALICE, "lots"), "invalid size 'lots': …"
    ),
    "user quota unknown": Case(
        ("user", "quota", GHOST, "1G"), f"no such user: {GHOST}"
    ),
    "user disable unknown": Case(("user", "disable", GHOST), f"no such user: {GHOST}"),
    "user enable invalid": Case(
        ("user", "enable", "@"), "invalid address '@': no local part"
    ),
    "user remove unknown": Case(("user", "remove", GHOST), f"no such user: {GHOST}"),
    "alias add unknown target": Case(
        ("alias", "add", "x@example.org", GHOST), f"no such user: {GHOST}"
    ),
    "alias add over a user": Case(
        ("alias", "add", ALICE, ALICE),
        "alice@example.org is a user's address; an alias cannot have it",
    ),
    "alias add duplicate": Case(
        ("alias", "add", "TEAM@example.org", ALICE),
        "alias team@example.org already exists",
    ),
    "alias add missing domain": Case(
        ("alias", "add", "x@nowhere.example", ALICE),
        "no such domain: nowhere.example",
    ),
    "alias add invalid": Case(
        ("alias", "add", "x y@example.org", ALICE),
        "invalid address 'x y@example.org': …",
    ),
    "alias remove unknown": Case(
        ("alias", "remove", "nobody@example.org"), "no such alias: nobody@example.org"
    ),
    "app-password add unknown user": Case(
        ("app-password", "add", GHOST, "phone"), f"no such user: {GHOST}"
    ),
    "app-password add duplicate": Case(
        ("app-password", "add", ALICE, "phone"),
        "an app password named 'phone' already exists",
    ),
    "app-password add empty name": Case(
        ("app-password", "add", ALICE, " "), "the app password name is empty"
    ),
    "app-password add long name": Case(
        ("app-password", "add", ALICE, "x" * 101),
        "the app password name is longer than 100 characters",
    ),
    "app-password list unknown user": Case(
        ("app-password", "list", GHOST), f"no such user: {GHOST}"
    ),
    "app-password revoke unknown": Case(
        ("app-password", "revoke", ALICE, "tablet"), "no app password named 'tablet'"
    ),
}


Runs = dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Runs]:
    """Each case run once, concurrently, against one prepared store.

    Logs are set to warning so that standard error holds only the error line.
    """
    env = environment(tmp_path_factory.mktemp("cli-errors"), NUBO_LOG_LEVEL="warning")
    one_line(nubo(env, "domain", "add", "example.org"))
    one_line(nubo(env, "user", "add", ALICE, stdin="alice's password\n"))
    one_line(nubo(env, "alias", "add", "team@example.org", ALICE))
    one_line(nubo(env, "app-password", "add", ALICE, "phone"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {
            name: pool.submit(nubo, env, *case.argv, stdin=case.stdin)
            for name, case in CASES.items()
        }
        return env, {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_error_paths_print_one_line(
    error_runs: tuple[dict[str, str], Runs], name: str
) -> None:
    result, case = error_runs[1][name], CASES[name]

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if case.message.endswith("…"):
        assert lines[0].startswith("nubo: " + case.message[:-1])
    else:
        assert lines[0] == "nubo: " + case.message


def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        NUBO_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        NUBO_LOG_LEVEL="warning",
    )

    result = nubo(env, "domain", "list")

    assert result.returncode == 1
    assert result.stderr.startswith("nubo: cannot open the store: ")
    assert len(result.stderr.splitlines()) == 1


def test_the_errors_left_the_store_unchanged(
    error_runs: tuple[dict[str, str], Runs],
) -> None:
    env = error_runs[0]

    users = nubo(env, "user", "list").stdout.splitlines()
    aliases = nubo(env, "alias", "list").stdout.splitlines()

    assert [line.split()[0] for line in users] == [ALICE]
    assert aliases == ["team@example.org -> alice@example.org"]


# -- the life of an account, on both backends --------------------------------


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Default logging; the store on SQLite or PostgreSQL."""
    yield environment(tmp_path, NUBO_DATABASE_URL=database_url)


async def authenticates(database_url: str, address: str, secret: str) -> bool:
    config = load(environ=CHEAP_ENV)
    db = Database(database_url)
    try:
        result = await Accounts(db, config).authenticate(address, secret, "::1")
    finally:
        await db.close()
    return result.ok


async def test_an_account_from_creation_to_removal(
    env: dict[str, str], database_url: str
) -> None:
    # Another administrator, so that José may be disabled and removed.
    one_line(nubo(env, "domain", "add", "admin.example"))
    one_line(nubo(env, "user", "add", "root@admin.example", "--admin", stdin=ROOT))
    assert one_line(nubo(env, "domain", "add", "Bücher.Example")) == (
        "domain xn--bcher-kva.example (bücher.example) added"
    )
    assert one_line(
        nubo(
            env,
            *("user", "add", "José@Bücher.example", "--name", "José"),
            *("--quota", "1.5G", "--admin"),
            stdin="first password\n",
        )
    ) == ("user josé@xn--bcher-kva.example added (quota 1.5G, administrator)")
    jose = "josé@xn--bcher-kva.example"
    assert await authenticates(database_url, jose, "first password")

    listed = one_line(nubo(env, "user", "list", "--domain", "bücher.example"))
    assert listed.startswith(f"{jose}  quota 1.5G  admin  last login 20")
    assert listed.endswith("  'José'")

    secret = one_line(nubo(env, "app-password", "add", jose, "phone"))
    assert secret.startswith(f"app password 'phone' for {jose}: ")
    secret = secret.split(": ", 1)[1].split(" ", 1)[0]
    assert await authenticates(database_url, jose, secret)
    assert one_line(nubo(env, "app-password", "list", jose)).startswith("'phone'  ")
    assert one_line(nubo(env, "app-password", "revoke", jose, "phone")) == (
        f"app password 'phone' of {jose} revoked"
    )
    assert not await authenticates(database_url, jose, secret)

    changed = nubo(env, "user", "passwd", jose, stdin="second password\n")
    assert one_line(changed) == f"password of {jose} changed"
    assert "second password" not in changed.stderr
    assert await authenticates(database_url, jose, "second password")

    assert one_line(nubo(env, "user", "quota", jose, "0")) == (
        f"quota of {jose} set to unlimited"
    )
    assert one_line(nubo(env, "user", "disable", jose)) == f"user {jose} disabled"
    assert not await authenticates(database_url, jose, "second password")
    assert one_line(nubo(env, "user", "enable", jose)) == f"user {jose} enabled"

    assert one_line(nubo(env, "alias", "add", "@bücher.example", jose)) == (
        f"alias @xn--bcher-kva.example (catch-all) -> {jose} added"
    )
    assert nubo(env, "domain", "list").stdout.splitlines()[1] == (
        "xn--bcher-kva.example (bücher.example)  1 user  1 alias"
    )
    assert one_line(nubo(env, "user", "remove", jose)) == (
        f"user {jose} removed with the aliases left empty: @xn--bcher-kva.example"
    )
    assert one_line(nubo(env, "domain", "remove", "bücher.example")) == (
        "domain xn--bcher-kva.example removed"
    )
    assert one_line(nubo(env, "domain", "list")) == "admin.example  1 user  0 aliases"
