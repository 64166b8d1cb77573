"""Settings: defaults, TOML, environment, precedence and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nubo.config import SETTINGS, ConfigError, load


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    config = load(environ={})

    assert config.data == "./nubo-data"
    assert config.bind == "127.0.0.1"
    assert (config.http_port, config.smtp_port, config.imap_port) == (8080, 2525, 2143)
    assert (config.submission_port, config.submissions_port) == (2587, 2465)
    assert config.imaps_port == 2993
    assert config.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert config.effective_database_url.endswith("nubo-data/nubo.db")
    assert config.effective_blob_url.endswith("nubo-data/blobs")


def test_environment_beats_toml_beats_default(tmp_path: Path) -> None:
    path = tmp_path / "nubo.toml"
    path.write_text('http_port = 9000\nsmtp_port = 9025\nhostname = "mail.example"\n')

    config = load(path, environ={"NUBO_SMTP_PORT": "9999"})

    assert config.http_port == 9000
    assert config.smtp_port == 9999
    assert config.hostname == "mail.example"
    assert config.sources["http_port"] == str(path)
    assert config.sources["smtp_port"] == "NUBO_SMTP_PORT"
    assert "imap_port" not in config.sources


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "nubo.toml"
    path.write_text("imap_port = 1143\n")

    assert load(environ={"NUBO_CONFIG": str(path)}).imap_port == 1143


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"NUBO_HTTP_PORT": "eighty"},
            "setting http_port: 'eighty' is not a valid int",
        ),
        ({"NUBO_HTTP_PORT": "70000"}, "setting http_port: 70000 must be a port"),
        ({"NUBO_BIND": "localhost"}, "setting bind: 'localhost' must be an IP"),
        ({"NUBO_LOG_LEVEL": "loud"}, "setting log_level: 'loud' must be one of"),
        ({"NUBO_DATABASE_URL": "mysql://x"}, "setting database_url:"),
        ({"NUBO_BLOB_URL": "s3://"}, "setting blob_url: 's3://' must name a bucket"),
        ({"NUBO_SHUTDOWN_GRACE": "-1"}, "setting shutdown_grace: -1.0 must not be"),
    ],
)
def test_bad_setting_names_itself(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(environ=environ)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "nubo.toml"
    path.write_text("http_port = \n")
    with pytest.raises(ConfigError, match=r"config file .*nubo.toml"):
        load(path, environ={})

    path.write_text("htp_port = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'htp_port'"):
        load(path, environ={})

    path.write_text('http_port = "80"\nbind = 1\n')
    with pytest.raises(ConfigError, match="setting bind: 1 is not a valid str"):
        load(path, environ={})

    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "missing.toml", environ={})


def test_secrets_masked_in_show() -> None:
    config = load(
        environ={
            "NUBO_DATABASE_URL": "postgresql://nubo:hunter2@db.example/nubo",
            "NUBO_ADMIN_PASSWORD": "correct horse",
            "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        }
    )

    shown = {name: value for name, value, _ in config.shown()}

    assert shown["database_url"] == "postgresql://nubo:********@db.example/nubo"
    assert shown["admin_password"] == "********"
    assert shown["s3_secret_access_key"] == "********"
    assert "hunter2" not in str(list(config.shown()))


def test_every_setting_has_help_and_valid_default() -> None:
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name
        assert isinstance(setting.default, setting.kind), setting.name
        if setting.check is not None:
            assert setting.check(setting.default) is None, setting.name


def run_nubo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nubo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_show_command(tmp_path: Path) -> None:
    from tests.serve import cheap_env

    result = run_nubo(
        "config", "show", env=cheap_env(tmp_path, NUBO_ADMIN_PASSWORD="hidden words")
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SETTINGS)
    assert any(
        line.startswith("http_port") and "# NUBO_HTTP_PORT" in line for line in lines
    )
    assert "hidden words" not in result.stdout


def test_bad_setting_stops_command_with_one_line(tmp_path: Path) -> None:
    from tests.serve import cheap_env

    result = run_nubo("serve", env=cheap_env(tmp_path, NUBO_HTTP_PORT="x"))

    assert result.returncode == 2
    assert result.stderr == "nubo: setting http_port: 'x' is not a valid int\n"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"NUBO_PASSWORD_MEMORY_KIB": "99999999999"},
            "setting password_memory_kib: 99999999999 must be between 8 KiB and "
            "4194304 KiB",
        ),
        (
            {"NUBO_PASSWORD_TIME_COST": "1000"},
            "setting password_time_cost: 1000 must be between 1 and 100",
        ),
        (
            {"NUBO_DEFAULT_QUOTA": "99999999999999999999999"},
            "setting default_quota: 99999999999999999999999 must be at most "
            "9223372036854775807",
        ),
        (
            {"NUBO_SHUTDOWN_GRACE": "1e300"},
            "setting shutdown_grace: 1e+300 must be at most 1000000000 seconds",
        ),
        ({"NUBO_SHUTDOWN_GRACE": "nan"}, "setting shutdown_grace: 'nan' is not a "),
        ({"NUBO_DNS_TIMEOUT": "inf"}, "setting dns_timeout: 'inf' is not a valid "),
        ({"NUBO_HTTP_PORT": "８０"}, "setting http_port: '８０' is not a valid int"),
        (
            {"NUBO_BLOB_URL": "s3:///prefix"},
            "setting blob_url: 's3:///prefix' must name a bucket",
        ),
        (
            {"NUBO_S3_ENDPOINT": "notaurl"},
            "setting s3_endpoint: 'notaurl' must be an http:// or https:// URL",
        ),
        (
            {"NUBO_S3_PART_SIZE": "1"},
            "setting s3_part_size: 1 must be between 5242880 and 5368709120",
        ),
        (
            {"NUBO_DNS_SERVERS": "garbage"},
            "setting dns_servers: 'garbage' must be IP addresses",
        ),
        (
            {"NUBO_MX_OVERRIDE": "garbage"},
            "setting mx_override: 'garbage' must be domain=host:port pairs",
        ),
        ({"NUBO_RELAY_HOST": "a b:xx"}, "setting relay_host: 'a b:xx' must be host"),
        (
            {"NUBO_RELAY_HOST": "a b"},
            "setting relay_host: 'a b' must be host or host:port: 'a b' is not a "
            "host name or IP address",
        ),
        (
            {"NUBO_DKIM_SELECTOR": "-x"},
            "setting dkim_selector: '-x' must be DNS labels separated by dots",
        ),
        (
            {"NUBO_ADMIN_PASSWORD": "x"},
            "setting admin_password: the value must be at least 8 characters, or empty",
        ),
    ],
)
def test_out_of_range_settings_are_refused_at_load(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(environ=environ)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_mail_settings_in_their_documented_forms_load() -> None:
    config = load(
        environ={
            "NUBO_RELAY_HOST": "smtp.example.org:587",
            "NUBO_MX_OVERRIDE": "*=127.0.0.1:2525,example.org=[::1]:25",
            "NUBO_DNS_SERVERS": "127.0.0.1:5353, ::1",
            "NUBO_S3_ENDPOINT": "http://127.0.0.1:8333",
            "NUBO_DKIM_SELECTOR": "mail.2025",
        }
    )

    assert config.relay_host == "smtp.example.org:587"


def test_a_secret_is_never_echoed_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load(environ={"NUBO_DATABASE_URL": "mysql://u:p4ssw0rd@127.0.0.1/x"})
    assert str(caught.value).startswith(
        "setting database_url: 'mysql://u:********@127.0.0.1/x' must be empty"
    )

    with pytest.raises(ConfigError) as caught:
        load(environ={"NUBO_DATABASE_URL": "mysql://db/x?password=p4ssw0rd"})
    assert "p4ssw0rd" not in str(caught.value)

    with pytest.raises(ConfigError) as caught:
        load(environ={"NUBO_ADMIN_PASSWORD": "short"})
    assert "short" not in str(caught.value)


def test_passwords_in_any_url_are_masked_in_show() -> None:
    config = load(
        environ={
            "NUBO_DATABASE_URL": "postgresql://nubo@127.0.0.1/test?password=QueryPw",
            "NUBO_BLOB_URL": "s3://user:BlobPw@bucket/p",
            "NUBO_S3_ENDPOINT": "https://key:EndPw@s3.example/",
        }
    )

    shown = {name: value for name, value, _ in config.shown()}

    assert shown["database_url"] == (
        "postgresql://nubo@127.0.0.1/test?password=********"
    )
    assert shown["blob_url"] == "s3://user:********@bucket/p"
    assert shown["s3_endpoint"] == "https://key:********@s3.example/"


def test_a_config_file_that_is_not_utf8_or_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nubo.toml"
    path.write_bytes(b'hostname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert str(caught.value) == f"config file {path}: not UTF-8 text"

    path.write_text("this is not toml\n")
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert str(caught.value).startswith(f"config file {path}: not valid TOML: ")
    assert "\n" not in str(caught.value)


def test_a_bad_config_file_stops_the_command_with_one_line(tmp_path: Path) -> None:
    from tests.serve import cheap_env

    path = tmp_path / "nubo.toml"
    path.write_bytes(b"\xff\xfe garbage")

    result = run_nubo("--config", str(path), "config", "show", env=cheap_env(tmp_path))

    assert result.returncode == 2
    assert result.stderr == f"nubo: config file {path}: not UTF-8 text\n"
