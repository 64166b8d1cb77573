"""Starts ``nubo serve`` as a real subprocess on free ports, for socket tests.

``NuboProcess.start`` waits until every listener has printed its address
(``listening NAME HOST:PORT``) and keeps the administrator's one-time password
if one was printed. Later protocol suites reuse it through the ``nubo_server``
fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LISTENERS = (
    "http",
    "https",
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
)
PORT_SETTINGS = (
    "NUBO_HTTP_PORT",
    "NUBO_HTTPS_PORT",
    "NUBO_SMTP_PORT",
    "NUBO_SUBMISSION_PORT",
    "NUBO_SUBMISSIONS_PORT",
    "NUBO_IMAP_PORT",
    "NUBO_IMAPS_PORT",
)
_LISTENING = re.compile(r"^listening (\w+) (\S+):(\d+)$")
_ADMIN = re.compile(r"^administrator (\S+) created; password \(shown once\): (\S+)$")


def run_nubo(
    env: dict[str, str], *argv: str, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A ``nubo`` command in its own process, ``stdin`` on its standard input
    (empty by default, so a command asking for a password never waits)."""
    return subprocess.run(
        [sys.executable, "-m", "nubo", *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def nubo_ok(
    env: dict[str, str], *argv: str, stdin: str = "", timeout: float = 120
) -> None:
    """``run_nubo`` that must succeed; its error text says why not."""
    done = run_nubo(env, *argv, stdin=stdin, timeout=timeout)
    assert done.returncode == 0, done.stderr


def cheap_env(data: Path, **extra: str) -> dict[str, str]:
    """Environment for a test nubo: its own data folder, free ports, cheap
    password hashing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
    env.update({name: "0" for name in PORT_SETTINGS})
    env.update(
        NUBO_DATA=str(data),
        NUBO_PASSWORD_TIME_COST="1",
        NUBO_PASSWORD_MEMORY_KIB="8",
        NUBO_SHUTDOWN_GRACE="2",
    )
    env.update(extra)
    return env


@dataclass
class NuboProcess:
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    addresses: dict[str, tuple[str, int]] = field(default_factory=dict)
    admin: tuple[str, str] | None = None
    output: list[str] = field(default_factory=list)
    _stderr: str | None = None

    def start(self, timeout: float = 20.0) -> float:
        """Start and wait until every listener is up; returns seconds taken."""
        began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nubo", "serve"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        # Read the pipe's bytes directly: a buffered readline() may take in
        # several lines at once, after which select() sees nothing left.
        fd = self.process.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        pending = b""
        while set(LISTENERS) - set(self.addresses):
            remaining = timeout - (time.monotonic() - began)
            if remaining <= 0 or not selector.select(remaining):
                self.kill()
                raise TimeoutError(f"nubo serve not ready: {self.output}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(
                    f"nubo serve exited {self.process.wait()}: {self.stderr()}"
                )
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._read(line.decode())
        selector.close()
        return time.monotonic() - began

    def _read(self, line: str) -> None:
        self.output.append(line)
        if match := _LISTENING.match(line):
            host = match.group(2).strip("[]")
            self.addresses[match.group(1)] = (host, int(match.group(3)))
        elif match := _ADMIN.match(line):
            self.admin = (match.group(1), match.group(2))

    def url(self, name: str = "http") -> str:
        host, port = self.addresses[name]
        scheme = "https" if name == "https" else "http"
        return f"{scheme}://{host}:{port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stderr(self) -> str:
        """What the process wrote to standard error, once it has exited."""
        assert self.process is not None and self.process.stderr is not None
        if self.process.poll() is None:
            return ""
        if self._stderr is None:
            self._stderr = self.process.stderr.read()
        return self._stderr
