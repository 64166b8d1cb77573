"""Start-up faults of ``nubo serve`` and the commands: one ``nubo: ...`` line
naming what is wrong, a non-zero exit, no traceback, nothing stored lost.

Each test holds one defect of the newcomer review of issue 2 (its number in
the test's docstring).
"""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from nubo import cli
from tests.serve import NuboProcess, cheap_env, run_nubo


def nubo(
    env: dict[str, str], *argv: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_nubo(env, *argv, stdin=stdin, timeout=60)


def failed_start(env: dict[str, str]) -> tuple[int, str]:
    """Start ``nubo serve`` that must fail: (exit status, standard error)."""
    server = NuboProcess(env)
    with pytest.raises(RuntimeError):
        server.start()
    assert server.process is not None
    assert server.admin is None, "no password may be shown by a failed start"
    return server.process.returncode, server.stderr()


def one_line(stderr: str, expected: str) -> None:
    """``expected`` is a whole line of stderr, and nothing is a traceback."""
    assert "Traceback" not in stderr
    assert expected in stderr.splitlines(), stderr


def first_start_shows_password(env: dict[str, str]) -> None:
    server = NuboProcess(env)
    server.start()
    assert server.stop() == 0
    assert server.admin is not None, server.output


@pytest.mark.parametrize("kind", ["missing parent", "regular file"])
def test_unusable_data_folder(tmp_path: Path, kind: str) -> None:
    """1: a data folder that cannot be made is named, for serve and commands."""
    afile = tmp_path / "afile"
    afile.write_text("")
    if kind == "regular file":
        data, expected = afile, f"nubo: setting data: {afile} is not a folder"
    else:
        data = afile / "data"
        expected = f"nubo: setting data: cannot create {data}: Not a directory"
    env = cheap_env(data)

    status, stderr = failed_start(env)
    assert status != 0
    one_line(stderr, expected)

    listing = nubo(env, "user", "list")
    assert listing.returncode != 0
    one_line(listing.stderr, expected)


def test_empty_data_setting(tmp_path: Path) -> None:
    """27: NUBO_DATA="" is refused, not read as the current folder."""
    env = cheap_env(tmp_path / "unused", NUBO_DATA="")
    result = subprocess.run(
        [sys.executable, "-m", "nubo", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    one_line(result.stderr, "nubo: setting data: '' must not be empty")
    assert list(tmp_path.iterdir()) == []


def test_unusable_blob_folder(tmp_path: Path) -> None:
    """2: a blob folder that cannot be made names blob_url."""
    afile = tmp_path / "afile"
    afile.write_text("")
    env = cheap_env(tmp_path / "data", NUBO_BLOB_URL=str(afile / "blobs"))
    expected = (
        f"nubo: setting blob_url: cannot create blob folder {afile / 'blobs'}: "
        "Not a directory"
    )

    status, stderr = failed_start(env)
    assert status == 1
    one_line(stderr, expected)

    listing = nubo(env, "user", "list")
    assert listing.returncode != 0
    one_line(listing.stderr, expected)


def test_database_url_with_bad_port(tmp_path: Path) -> None:
    """3: a port that is not a number names database_url, never the password."""
    url = "postgresql://nubo:SecretPw@127.0.0.1:notaport/nubo"
    env = cheap_env(tmp_path / "data", NUBO_DATABASE_URL=url)
    expected = "nubo: setting database_url: the port is not a number"

    status, stderr = failed_start(env)
    assert status == 1
    one_line(stderr, expected)
    for args in (("user", "list"), ("db", "upgrade")):
        result = nubo(env, *args)
        assert result.returncode != 0
        one_line(result.stderr, expected)
        assert "SecretPw" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NUBO_HOSTNAME", "bad host", "nubo: setting hostname: invalid domain"),
        ("NUBO_HOSTNAME", "", "nubo: setting hostname: the domain name is empty"),
        (
            "NUBO_DEFAULT_DOMAIN",
            "not a domain",
            "nubo: setting default_domain: invalid domain",
        ),
        ("NUBO_ADMIN_ADDRESS", "nope", "nubo: setting admin_address: invalid address"),
    ],
)
def test_bad_names(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    """4: a bad hostname, default_domain or admin_address names the setting."""
    env = cheap_env(tmp_path / "data", **{variable: value})
    status, stderr = failed_start(env)
    assert status == 1
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith(expected)]


def test_international_hostname(tmp_path: Path) -> None:
    """5: an IDN hostname goes into the certificate in its A-label form."""
    server = NuboProcess(cheap_env(tmp_path / "data", NUBO_HOSTNAME="bücher.example"))
    server.start()
    assert server.stop() == 0
    assert server.admin is not None
    assert server.admin[0] == "admin@bücher.example"

    pem = (tmp_path / "data" / "tls" / "cert.pem").read_bytes()
    names = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "xn--bcher-kva.example" in names.value.get_values_for_type(x509.DNSName)


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made as nubo makes its own."""
    from nubo.tls import _write_self_signed

    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _write_self_signed("localhost", cert, key)
    return cert, key


def test_bad_certificate_files_keep_the_first_password(tmp_path: Path) -> None:
    """6 and 12: garbage PEM and a key of another certificate name the
    setting, before any administrator exists; the next good start shows it."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cert, key = _certificate(tmp_path, "one")
    _other_cert, other_key = _certificate(tmp_path, "two")
    data = tmp_path / "data"

    env = cheap_env(data, NUBO_TLS_CERT=str(garbage), NUBO_TLS_KEY=str(key))
    status, stderr = failed_start(env)
    assert status == 1
    one_line(stderr, f"nubo: setting tls_cert: {garbage} is not a PEM certificate")

    env = cheap_env(data, NUBO_TLS_CERT=str(cert), NUBO_TLS_KEY=str(other_key))
    status, stderr = failed_start(env)
    assert status == 1
    one_line(
        stderr,
        f"nubo: setting tls_key: {other_key} is not the key of the certificate {cert}",
    )

    first_start_shows_password(cheap_env(data))


def test_missing_certificate_file_keeps_the_first_password(tmp_path: Path) -> None:
    """12: NUBO_TLS_CERT=/nonexistent.pem shows no password; the next does."""
    data = tmp_path / "data"
    env = cheap_env(
        data,
        NUBO_TLS_CERT=str(tmp_path / "none.pem"),
        NUBO_TLS_KEY=str(tmp_path / "none.key"),
    )
    status, stderr = failed_start(env)
    assert status == 1
    assert "Traceback" not in stderr
    first_start_shows_password(cheap_env(data))


@pytest.mark.parametrize("setting", ["NUBO_HTTP_PORT", "NUBO_SUBMISSIONS_PORT"])
def test_taken_port_keeps_the_first_password(tmp_path: Path, setting: str) -> None:
    """12: a taken port (an SMTP one too) at first start shows no password."""
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = failed_start(cheap_env(data, **{setting: str(port)}))
    assert status == 1
    name = setting.removeprefix("NUBO_").removesuffix("_PORT").lower()
    assert f"nubo: cannot listen {name} on 127.0.0.1:{port}: " in stderr
    assert "Traceback" not in stderr
    first_start_shows_password(cheap_env(data))


def test_gc_with_unreachable_bucket(tmp_path: Path) -> None:
    """9: ``nubo db gc`` against an S3 endpoint that does not answer."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = cheap_env(
        tmp_path / "data",
        NUBO_BLOB_URL="s3://bucket/prefix",
        NUBO_S3_ENDPOINT=f"http://127.0.0.1:{port}",
        NUBO_S3_ACCESS_KEY_ID="key",
        NUBO_S3_SECRET_ACCESS_KEY="secret",
    )
    result = nubo(env, "db", "gc")
    assert result.returncode == 1
    one_line(
        result.stderr,
        "nubo: cannot collect blobs: cannot list the bucket (is the blob store at "
        f"http://127.0.0.1:{port} reachable?)",
    )


def test_interrupt_while_starting_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """11: Ctrl-C before the loop runs (here, while the parser is built)."""

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["serve"]) == 130


def test_interrupt_right_after_launch_is_quiet(tmp_path: Path) -> None:
    """11: SIGINT at once after launch: no traceback, whatever it interrupted."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nubo", "serve"],
        env=cheap_env(tmp_path / "data"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.send_signal(signal.SIGINT)
    _out, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr
    # -SIGINT: the signal came before Python set up its own handler.
    assert process.returncode in (0, 130, -signal.SIGINT)


def test_debug_log_holds_no_sql_parameters(tmp_path: Path) -> None:
    """18: at log_level debug the password hash never reaches a log."""
    env = cheap_env(tmp_path / "data", NUBO_LOG_LEVEL="debug")
    server = NuboProcess(env)
    server.start()  # the first start makes the domain localhost
    assert server.stop() == 0

    result = nubo(env, "user", "add", "ann@localhost", stdin="a long password here\n")
    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr
    assert "$argon2" not in result.stderr
    assert "ann@localhost" not in result.stderr
    logs = (tmp_path / "data" / "logs" / "nubo.log").read_text()
    assert "$argon2" not in logs + server.stderr()


def test_database_file_is_private(tmp_path: Path) -> None:
    """19: data folder 0700, nubo.db 0600; a readable one is tightened."""
    data = tmp_path / "data"
    first_start_shows_password(cheap_env(data))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for file in data.glob("nubo.db*"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file

    (data / "nubo.db").chmod(0o644)
    result = nubo(cheap_env(data), "user", "list")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((data / "nubo.db").stat().st_mode) == 0o600
    assert "file readable by others made private" in result.stderr


def test_second_server_on_one_data_folder(tmp_path: Path) -> None:
    """20: a second ``nubo serve`` on the same SQLite data folder is refused."""
    data = tmp_path / "data"
    first = NuboProcess(cheap_env(data))
    first.start()
    try:
        status, stderr = failed_start(cheap_env(data))
    finally:
        assert first.stop() == 0
    assert status == 1
    one_line(stderr, f"nubo: another nubo serve is using the data folder {data}")

    again = NuboProcess(cheap_env(data))  # the lock went with the first
    again.start()
    assert again.stop() == 0


def test_unreachable_database_names_host_and_port(tmp_path: Path) -> None:
    """21: a refused connection says where, and never the password."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://nubo:SecretPw@127.0.0.1:{port}/none"
    env = cheap_env(tmp_path / "data", NUBO_DATABASE_URL=url)
    expected = (
        f"cannot connect to 127.0.0.1:{port}: connection refused "
        f"(is PostgreSQL running at 127.0.0.1:{port}?)"
    )

    status, stderr = failed_start(env)
    assert status == 1
    one_line(stderr, f"nubo: cannot open the store: {expected}")
    result = nubo(env, "db", "upgrade")
    one_line(result.stderr, f"nubo: cannot upgrade the store: {expected}")
    assert "SecretPw" not in stderr + result.stderr


def test_unresolvable_database_host(tmp_path: Path) -> None:
    """21: a host name that does not resolve is named."""
    url = "postgresql://nubo@nowhere.invalid/none"
    result = nubo(cheap_env(tmp_path / "data", NUBO_DATABASE_URL=url), "user", "list")
    assert result.returncode == 1
    one_line(
        result.stderr,
        "nubo: cannot open the store: cannot resolve host nowhere.invalid "
        "(is the host name right?)",
    )


def test_two_listeners_on_one_port(tmp_path: Path) -> None:
    """24: two port settings alike are named before anything binds."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = cheap_env(
        tmp_path / "data", NUBO_HTTPS_PORT=str(port), NUBO_SMTP_PORT=str(port)
    )
    status, stderr = failed_start(env)
    assert status == 1
    one_line(
        stderr,
        f"nubo: settings https_port and smtp_port: both are {port}; "
        "each listener needs its own port",
    )
