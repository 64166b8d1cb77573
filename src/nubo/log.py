"""Logging: one line per event, a logger per module, nothing private.

Messages are short and lowercase with ``key=value`` fields. Client addresses
are shortened to their network (IPv4 /24, IPv6 /48) with ``client_network``
before they reach a log; passwords, message contents, subjects and file names
are never logged. ``nubo serve`` also writes ``logs/nubo.log`` in the data
folder, rotated daily and purged after ``log_retention_days``.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

from nubo.config import Config

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(config: Config, *, to_file: bool = False) -> None:
    """Send logs to standard error (and, for the server, to the data folder)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(config.log_level.upper())

    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(console)

    if to_file:
        folder = config.data_path / "logs"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        rotating = logging.handlers.TimedRotatingFileHandler(
            folder / "nubo.log",
            when="midnight",
            backupCount=config.log_retention_days,
            utc=True,
            encoding="utf-8",
        )
        rotating.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(rotating)

    # Libraries speak at WARNING unless the operator asked for debug.
    quiet = "DEBUG" if config.log_level.lower() == "debug" else "WARNING"
    for name in ("uvicorn", "uvicorn.error", "alembic", "asyncio", "sqlalchemy"):
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger("uvicorn.access").disabled = True
