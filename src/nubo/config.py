"""Every setting of nubo, defined once: its type, default, help and checks.

Settings come from, in rising precedence: the defaults below (the embedded
mode: one data folder, SQLite, blobs in a folder, loopback, unprivileged
ports), a TOML file (``--config`` or ``NUBO_CONFIG``), then ``NUBO_*``
environment variables named after the setting (``http_port`` is
``NUBO_HTTP_PORT``). The TOML file holds the same names as top-level keys.

A setting that fails its check raises ``ConfigError`` with one line naming the
setting and what was wrong; ``nubo`` prints it and stops.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "NUBO_"

# Every int setting must fit a BIGINT column and a C int64.
MAX_INT = 2**63 - 1

# Longest wait any seconds setting may name (about 31 years): larger values
# overflow asyncio's timers and datetime arithmetic.
MAX_SECONDS = 10**9

MIB = 1024 * 1024


class ConfigError(Exception):
    """A setting is missing, malformed or out of range."""


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type, default and help line."""

    name: str
    kind: type
    default: Any
    help: str
    secret: bool = False
    check: Callable[[Any], str | None] | None = None
    env: str = ""

    @property
    def env_name(self) -> str:
        return self.env or ENV_PREFIX + self.name.upper()


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port between 0 and 65535"


def _positive(value: int | float) -> str | None:
    return None if value > 0 else "must be greater than zero"


def _not_negative(value: int | float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _between(low: int, high: int, unit: str = "") -> Callable[[Any], str | None]:
    """A check that the value lies in [low, high]; ``unit`` is said after both."""

    def check(value: int | float) -> str | None:
        if low <= value <= high:
            return None
        return f"must be between {low}{unit} and {high}{unit}"

    return check


def _seconds(value: float) -> str | None:
    """A positive number of seconds that timers and datetimes can hold."""
    return _positive(value) or _at_most_seconds(value)


def _seconds_or_zero(value: float) -> str | None:
    return _not_negative(value) or _at_most_seconds(value)


def _at_most_seconds(value: float) -> str | None:
    return None if value <= MAX_SECONDS else f"must be at most {MAX_SECONDS} seconds"


def _bind(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "must be an IP address, such as 127.0.0.1, 0.0.0.0 or ::"
    return None


def _log_level(value: str) -> str | None:
    levels = ("debug", "info", "warning", "error")
    return None if value.lower() in levels else "must be one of " + ", ".join(levels)


def _database_url(value: str) -> str | None:
    if not value or value.startswith(("sqlite", "postgresql", "postgres://")):
        return None
    return "must be empty (SQLite in the data folder), sqlite:/// or postgresql://"


def _blob_url(value: str) -> str | None:
    if value.startswith("s3://") and not value[len("s3://") :].split("/", 1)[0]:
        return "must name a bucket: s3://bucket or s3://bucket/prefix"
    if "://" in value and not value.startswith(("s3://", "file://")):
        return "must be a folder path or s3://bucket/prefix"
    return None


def _s3_endpoint(value: str) -> str | None:
    if not value:
        return None
    problem = "must be an http:// or https:// URL, such as http://127.0.0.1:8333"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return problem
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return problem
    return None


# A host name (LDH labels, RFC 1123 §2.1) or an IP address.
_HOSTNAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def _host_problem(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host.lower()) or len(host) > 253:
            return f"{host[:40]!r} is not a host name or IP address"
    return None


# The parsers live with their users in nubo.mail, which imports this module;
# importing them when a check runs (this module is loaded by then) avoids the
# import cycle.


def _dns_servers(value: str) -> str | None:
    from nubo.mail.dns import parse_servers

    try:
        parse_servers(value)
    except ValueError:
        return "must be IP addresses, each ip or ip:port, separated by commas"
    return None


def _mx_override(value: str) -> str | None:
    from nubo.mail.dns import parse_mx_override

    usage = "must be domain=host:port pairs separated by commas"
    try:
        table = parse_mx_override(value, 25)
    except ValueError:
        return usage
    for host, _port in table.values():
        problem = _host_problem(host)
        if problem:
            return f"{usage}: {problem}"
    return None


def _relay_host(value: str) -> str | None:
    from nubo.mail.dns import parse_host_port

    if not value:
        return None
    usage = "must be host or host:port"
    try:
        host, _port = parse_host_port(value, 25)
    except ValueError:
        return usage
    problem = _host_problem(host)
    return f"{usage}: {problem}" if problem else None


def _dkim_selector(value: str) -> str | None:
    from nubo.mail.dkim import check_selector

    try:
        check_selector(value)
    except ValueError:
        return "must be DNS labels separated by dots, such as nubo or mail.2025"
    return None


# The shortest password a member may choose (nubo.accounts.passwords says so
# too; that module is not imported here, as it needs argon2).
MIN_PASSWORD_CHARS = 8


def _admin_password(value: str) -> str | None:
    if value and len(value) < MIN_PASSWORD_CHARS:
        return f"must be at least {MIN_PASSWORD_CHARS} characters, or empty"
    return None  # the other rules are check_password's, applied at first start


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data",
        str,
        "./nubo-data",
        "Data folder: SQLite database, blobs, keys.",
        check=lambda value: None if value.strip() else "must not be empty",
    ),
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the metadata store; empty means SQLite in the data "
        "folder, postgresql://user@host/db for PostgreSQL.",
        secret=True,
        check=_database_url,
    ),
    Setting(
        "blob_url",
        str,
        "",
        "Where message and file bytes live: empty means the blobs/ folder in the "
        "data folder, a folder path, or s3://bucket/prefix.",
        check=_blob_url,
    ),
    Setting(
        "s3_endpoint",
        str,
        "",
        "S3 endpoint URL, for stores other than AWS.",
        check=_s3_endpoint,
    ),
    Setting("s3_region", str, "us-east-1", "S3 region."),
    Setting(
        "s3_access_key_id",
        str,
        "",
        "S3 access key (AWS_ACCESS_KEY_ID also works).",
        env="NUBO_S3_ACCESS_KEY_ID",
    ),
    Setting(
        "s3_secret_access_key",
        str,
        "",
        "S3 secret key (AWS_SECRET_ACCESS_KEY also works).",
        secret=True,
    ),
    Setting(
        "s3_part_size",
        int,
        8 * 1024 * 1024,
        "Bytes per part of an S3 multipart upload; bounds memory per upload. "
        "S3 takes parts from 5 MiB to 5 GiB.",
        check=_between(5 * MIB, 5 * 1024 * MIB),
    ),
    Setting("hostname", str, "localhost", "Name this server answers as."),
    Setting("bind", str, "127.0.0.1", "Address every listener binds.", check=_bind),
    Setting("http_port", int, 8080, "HTTP port (portal, DAV, /healthz).", check=_port),
    Setting("https_port", int, 8443, "HTTPS port; 0 picks a free one.", check=_port),
    Setting("smtp_port", int, 2525, "SMTP port for incoming mail (MX).", check=_port),
    Setting("submission_port", int, 2587, "Submission port (STARTTLS).", check=_port),
    Setting(
        "submissions_port",
        int,
        2465,
        "Submission port with implicit TLS.",
        check=_port,
    ),
    Setting("imap_port", int, 2143, "IMAP port (STARTTLS).", check=_port),
    Setting("imaps_port", int, 2993, "IMAP port with implicit TLS.", check=_port),
    Setting(
        "tls_cert",
        str,
        "",
        "PEM certificate chain; empty makes a self-signed one in the data folder.",
    ),
    Setting("tls_key", str, "", "PEM private key matching tls_cert."),
    Setting(
        "log_level", str, "info", "debug, info, warning or error.", check=_log_level
    ),
    Setting(
        "log_retention_days",
        int,
        14,
        "Days a log file in the data folder's logs/ is kept.",
        check=_between(1, 36500),
    ),
    Setting(
        "default_domain",
        str,
        "",
        "Domain created on first start; empty means the hostname.",
    ),
    Setting(
        "admin_address",
        str,
        "",
        "Administrator created on first start; empty means admin@default_domain.",
    ),
    Setting(
        "admin_password",
        str,
        "",
        "Password of the first administrator; empty generates one, printed once.",
        secret=True,
        check=_admin_password,
    ),
    Setting(
        "default_quota",
        int,
        5 * 1024**3,
        "Quota in bytes of a new user; 0 means unlimited.",
        check=_not_negative,
    ),
    Setting(
        "password_time_cost",
        int,
        3,
        "Argon2id passes per password hash.",
        check=_between(1, 100),
    ),
    Setting(
        "password_memory_kib",
        int,
        65536,
        "Argon2id memory per password hash, in KiB (at most 4 GiB).",
        check=_between(8, 4 * 1024 * 1024, " KiB"),
    ),
    Setting(
        "lockout_threshold",
        int,
        5,
        "Failed logins (per account, per client network) before answers slow.",
        check=_positive,
    ),
    Setting(
        "lockout_max_seconds",
        int,
        900,
        "Longest an account or client network is refused after failures.",
        check=_seconds,
    ),
    Setting(
        "shutdown_grace",
        float,
        10.0,
        "Seconds work in flight may take to finish after SIGTERM.",
        check=_seconds_or_zero,
    ),
    Setting(
        "blob_gc_grace",
        int,
        3600,
        "Seconds unreferenced bytes are kept before collection; covers writes "
        "in flight.",
        check=_seconds_or_zero,
    ),
    # -- mail transport (SMTP in, submission, the outbound queue) ----------
    Setting(
        "max_message_size",
        int,
        50 * 1024 * 1024,
        "Largest message accepted over SMTP or submission, in bytes (SIZE).",
        check=_positive,
    ),
    Setting(
        "smtp_max_recipients",
        int,
        100,
        "Recipients accepted per message; more get 452 4.5.3.",
        check=_positive,
    ),
    Setting(
        "smtp_command_timeout",
        float,
        300.0,
        "Seconds an SMTP client may stay silent before it is disconnected.",
        check=_seconds,
    ),
    Setting(
        "smtp_session_timeout",
        float,
        1800.0,
        "Longest an SMTP session may last, in seconds.",
        check=_seconds,
    ),
    Setting(
        "smtp_verify",
        bool,
        True,
        "Check SPF, DKIM and DMARC of incoming mail (Authentication-Results).",
    ),
    Setting(
        "dns_servers",
        str,
        "",
        "Resolvers for mail lookups as ip or ip:port, comma-separated; empty "
        "uses the system's (/etc/resolv.conf).",
        check=_dns_servers,
    ),
    Setting(
        "dns_timeout",
        float,
        10.0,
        "Seconds a DNS lookup may take before it counts as a temporary failure.",
        check=_seconds,
    ),
    Setting(
        "dkim_selector",
        str,
        "nubo",
        "DKIM selector of the keys made for new domains.",
        check=_dkim_selector,
    ),
    Setting(
        "submission_rate_limit",
        int,
        200,
        "Messages a user may submit per hour; 0 means no limit.",
        check=_not_negative,
    ),
    Setting(
        "relay_host",
        str,
        "",
        "Send all outgoing mail through this smarthost (host or host:port) "
        "instead of looking up MX records.",
        check=_relay_host,
    ),
    Setting("relay_username", str, "", "User name for AUTH at the relay host."),
    Setting(
        "relay_password",
        str,
        "",
        "Password for AUTH at the relay host.",
        secret=True,
    ),
    Setting(
        "mx_override",
        str,
        "",
        "Static MX answers, as domain=host:port pairs, comma-separated ('*' "
        "matches any domain); for tests and private networks.",
        check=_mx_override,
    ),
    Setting(
        "outbound_port",
        int,
        25,
        "Port of remote MX hosts that outgoing mail is delivered to.",
        check=_port,
    ),
    Setting(
        "queue_retry_for",
        float,
        5 * 86400.0,
        "Seconds a message keeps being retried before it bounces.",
        check=_seconds,
    ),
    Setting(
        "queue_delay_notice_after",
        float,
        4 * 3600.0,
        "Seconds after which the sender is told a message is delayed.",
        check=_seconds,
    ),
    Setting(
        "queue_first_retry",
        float,
        60.0,
        "Seconds before the first retry; each next wait doubles.",
        check=_seconds,
    ),
    Setting(
        "queue_max_retry",
        float,
        3600.0,
        "Longest wait between two retries, in seconds.",
        check=_seconds,
    ),
    Setting(
        "queue_poll_interval",
        float,
        5.0,
        "Seconds between two looks at the queue when nothing woke it.",
        check=_seconds,
    ),
    Setting(
        "queue_concurrency",
        int,
        8,
        "Deliveries one process runs at once.",
        check=_between(1, 10000),
    ),
    Setting(
        "http_header_timeout",
        float,
        30.0,
        "Seconds an HTTP client has to send a whole request head.",
        check=_seconds,
    ),
    Setting(
        "http_max_connections",
        int,
        500,
        "Open connections each HTTP listener accepts; more get 503.",
        check=_between(1, 100000),
    ),
    Setting(
        "imap_max_connections_per_address",
        int,
        50,
        "Open IMAP connections one client address may hold; more get BYE.",
        check=_between(1, 100000),
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    """The effective settings, and where each came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_path(self) -> Path:
        return Path(self.values["data"]).expanduser()

    @property
    def effective_database_url(self) -> str:
        url: str = self.values["database_url"]
        if not url:
            return f"sqlite+aiosqlite:///{self.data_path.resolve() / 'nubo.db'}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url[len("postgresql://") :]
        if url.startswith("sqlite:///"):
            url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def effective_blob_url(self) -> str:
        url: str = self.values["blob_url"]
        if not url:
            return str(self.data_path.resolve() / "blobs")
        if url.startswith("file://"):
            return url[len("file://") :]
        return url

    @property
    def effective_domain(self) -> str:
        return str(self.values["default_domain"] or self.values["hostname"])

    def replace(self, **changes: Any) -> Config:
        """A copy with some values changed (for tests and the command line)."""
        values = dict(self.values)
        sources = dict(self.sources)
        for name, value in changes.items():
            values[name] = _convert(_BY_NAME[name], value)
            sources[name] = "override"
        return Config(values, sources)

    def shown(self) -> Iterator[tuple[str, str, str]]:
        """(name, value, source) for each setting, secrets masked."""
        for setting in SETTINGS:
            value = self.values[setting.name]
            text = str(value)
            if value:
                text = _masked(setting, text)
            yield setting.name, text, self.sources.get(setting.name, "default")


MASK = "********"

# Query parameters that carry a secret: password=, sslpassword=, token=, …
_SECRET_PARAMETER = re.compile(
    r"([?&;][^=&;#]*(?:password|passwd|pwd|secret|token)[^=&;#]*=)[^&;#]*",
    re.IGNORECASE,
)


def _masked(setting: Setting, text: str) -> str:
    """The value as it may be shown: passwords in URLs and secrets masked."""
    if "://" in text:
        return mask_url(text)
    return MASK if setting.secret else text


def mask_url(text: str) -> str:
    """``text`` with the password of its userinfo and of its query masked.

    Any scheme: ``postgresql://u:pw@h/db``, ``s3://key:secret@bucket/p``.
    """
    scheme, rest = text.split("://", 1)
    if "@" in rest:
        # The last "@" ends the userinfo: a password may hold "@" or "/".
        userinfo, host = rest.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        rest = f"{userinfo}@{host}"
    return _SECRET_PARAMETER.sub(lambda m: m.group(1) + MASK, f"{scheme}://{rest}")


def _shown_value(setting: Setting, raw: Any) -> str:
    """The value for an error message: a secret's is never echoed."""
    text = str(raw)
    if "://" in text:
        return repr(mask_url(text)[:200])
    if setting.secret:
        return "the value"
    return repr(raw)[:200]


# Only ASCII digits: int() and float() would take "５", "1_0", "nan", "inf".
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _convert(setting: Setting, raw: Any) -> Any:
    """Turn a raw value (TOML value or environment string) into the setting's type."""
    kind = setting.kind
    try:
        value = _typed(kind, raw)
    except (TypeError, ValueError, OverflowError):
        shown = _shown_value(setting, raw)
        raise ConfigError(
            f"setting {setting.name}: {shown} is not a valid {kind.__name__}"
        ) from None

    problem = _range_problem(value) or (setting.check(value) if setting.check else None)
    if problem:
        shown = _shown_value(setting, value)
        raise ConfigError(f"setting {setting.name}: {shown} {problem}")
    return value


def _typed(kind: type, raw: Any) -> Any:
    if kind is bool:
        return _to_bool(raw)
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError
        return raw
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, str):
        pattern = _INT if kind is int else _FLOAT
        if not pattern.fullmatch(raw.strip()):
            raise ValueError
    if kind is int:
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError
        return int(raw)
    if not isinstance(raw, (int, float, str)):
        raise ValueError
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError
    return value


def _range_problem(value: Any) -> str | None:
    """What any int or float setting must respect, whatever its own check."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return f"must be at most {MAX_INT}" if is_int and abs(value) > MAX_INT else None


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def load(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective settings from defaults, the TOML file and the env."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources: dict[str, str] = {}

    path = path or env.get("NUBO_CONFIG") or None
    if path:
        for name, raw in _read_toml(Path(path)).items():
            values[name] = _convert(_BY_NAME[name], raw)
            sources[name] = str(path)

    for setting in SETTINGS:
        raw_env = env.get(setting.env_name)
        if raw_env is not None:
            values[setting.name] = _convert(setting, raw_env)
            sources[setting.name] = setting.env_name

    for name, aws in (
        ("s3_access_key_id", "AWS_ACCESS_KEY_ID"),
        ("s3_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ):
        if not values[name] and env.get(aws):
            values[name] = env[aws]
            sources[name] = aws
    return Config(values, sources)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None

    for name in data:
        if name not in _BY_NAME:
            raise ConfigError(f"config file {path}: unknown setting {name!r}")
    return data


def describe() -> Iterator[str]:
    """One line per setting for documentation: name, env name, default, help."""
    for s in SETTINGS:
        yield f"{s.name} ({s.env_name}, default {s.default!r}): {s.help}"
