"""``nubo serve`` as a real subprocess: start, /healthz, TLS, clean stop."""

from __future__ import annotations

import signal
import socket
import ssl
from pathlib import Path

import httpx
import pytest

from tests.serve import NuboProcess, cheap_env


def test_healthz_over_http_and_https(nubo_server: NuboProcess, tmp_path: Path) -> None:
    answer = httpx.get(nubo_server.url("http") + "/healthz", timeout=10)

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok", "blobs": "ok"}
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert "server" not in answer.headers

    cert = Path(nubo_server.env["NUBO_DATA"]) / "tls" / "cert.pem"
    context = ssl.create_default_context(cafile=str(cert))
    secure = httpx.get(
        nubo_server.url("https") + "/healthz", verify=context, timeout=10
    )
    assert secure.status_code == 200
    assert secure.json()["status"] == "ok"


def test_first_start_creates_admin_once(tmp_path: Path) -> None:
    env = cheap_env(tmp_path / "data")
    first = NuboProcess(env)
    first.start()
    assert first.stop() == 0
    assert first.admin is not None
    address, password = first.admin
    assert address == "admin@localhost"
    assert len(password) >= 16

    second = NuboProcess(env)
    second.start()
    assert second.stop() == 0
    assert second.admin is None

    # The one-time password went to standard output only, never to a log.
    logs = (tmp_path / "data" / "logs" / "nubo.log").read_text()
    assert password not in logs
    assert password not in first.stderr()


def test_configured_admin(tmp_path: Path) -> None:
    env = cheap_env(
        tmp_path / "data",
        NUBO_DEFAULT_DOMAIN="coop.example",
        NUBO_ADMIN_PASSWORD="a long enough password",
    )
    server = NuboProcess(env)
    server.start()
    assert server.stop() == 0
    assert "administrator admin@coop.example created with the configured password" in (
        server.output
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(tmp_path: Path, sig: int) -> None:
    server = NuboProcess(cheap_env(tmp_path / "data"))
    server.start()
    assert server.stop(sig) == 0

    host, port = server.addresses["http"]
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=2):
        pass


def test_taken_port_stops_start_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = NuboProcess(cheap_env(tmp_path / "data", NUBO_HTTP_PORT=str(port)))
        with pytest.raises(RuntimeError):
            server.start()

    assert server.process is not None and server.process.returncode == 1
    assert f"nubo: cannot listen http on 127.0.0.1:{port}: " in server.stderr()
    assert "Traceback" not in server.stderr()


def test_unreachable_database_stops_start_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = cheap_env(
        tmp_path / "data",
        NUBO_DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/none",
    )
    server = NuboProcess(env)
    with pytest.raises(RuntimeError):
        server.start()

    stderr = server.stderr()
    assert stderr.startswith("nubo: cannot open the store: ")
    assert "Traceback" not in stderr


def test_missing_certificate_file_is_a_setting_error(tmp_path: Path) -> None:
    env = cheap_env(
        tmp_path / "data",
        NUBO_TLS_CERT=str(tmp_path / "none.pem"),
        NUBO_TLS_KEY=str(tmp_path / "none.key"),
    )
    server = NuboProcess(env)
    with pytest.raises(RuntimeError):
        server.start()

    assert f"nubo: setting tls_cert: {tmp_path / 'none.pem'} is not" in server.stderr()
