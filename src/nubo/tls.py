"""TLS for every listener: configured certificate files or a self-signed one.

With ``tls_cert`` and ``tls_key`` set, those PEM files are used as they are.
Otherwise nubo makes a self-signed certificate for ``hostname`` (and
localhost, 127.0.0.1, ::1) in ``<data>/tls/`` on first start and renews it
when it is within 30 days of expiry. Clients will warn about it: it is for
trying nubo, not for serving members.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nubo.accounts.addresses import display_domain, normalize_domain
from nubo.accounts.errors import InvalidDomain
from nubo.config import Config, ConfigError

log = logging.getLogger(__name__)

VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)


def certificate_files(config: Config) -> tuple[Path, Path]:
    """The (certificate, key) PEM paths to serve, making them when needed."""
    if config.tls_cert or config.tls_key:
        if not (config.tls_cert and config.tls_key):
            raise ConfigError("setting tls_cert: tls_cert and tls_key go together")
        cert, key = Path(config.tls_cert), Path(config.tls_key)
        for name, path in (("tls_cert", cert), ("tls_key", key)):
            if not path.is_file():
                raise ConfigError(f"setting {name}: {path} is not a readable file")
        return cert, key

    folder = config.data_path / "tls"
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not _needs_new(cert, key):
        return cert, key
    try:
        # A certificate names an international domain in its A-label form.
        hostname = normalize_domain(config.hostname)
    except InvalidDomain as exc:
        raise ConfigError(f"setting hostname: {exc}") from None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_self_signed(hostname, cert, key)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"setting data: cannot write {folder}: {reason}") from None
    log.info("self-signed certificate made for=%s", display_domain(hostname))
    return cert, key


def server_context(config: Config) -> ssl.SSLContext:
    """An SSLContext for listeners: TLS 1.2 or newer, the served certificate.

    A file that is not PEM, or a key that does not match the certificate, is a
    ConfigError naming the setting to fix.
    """
    cert, key = certificate_files(config)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(_load_problem(exc, cert, key)) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"setting tls_cert: cannot read {cert}: {reason}") from None
    return context


def _load_problem(exc: ssl.SSLError, cert: Path, key: Path) -> str:
    """Which file is wrong, from OpenSSL's reason (``KEY_VALUES_MISMATCH``...)."""
    reason = exc.reason or ""
    if reason == "KEY_VALUES_MISMATCH":
        return f"setting tls_key: {key} is not the key of the certificate {cert}"
    try:
        x509.load_pem_x509_certificate(cert.read_bytes())
    except (ValueError, OSError):
        return f"setting tls_cert: {cert} is not a PEM certificate"
    return f"setting tls_key: {key} is not a PEM private key without a passphrase"


def _needs_new(cert: Path, key: Path) -> bool:
    if not (cert.is_file() and key.is_file()):
        return True
    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError:
        return True
    return loaded.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC)


def _write_self_signed(hostname: str, cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        names.append(x509.DNSName("localhost"))
    names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )

    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem)
    _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, replacing any old one whole."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
