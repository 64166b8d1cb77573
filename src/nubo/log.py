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


def setup_logging(
    config: Config, *, to_file: bool = False, command: bool = False
) -> None:
    """Send logs to standard error (and, for the server, to the data folder).

    A ``command`` (every sub-command but ``serve``) logs warnings and errors
    only, unless log_level is debug: it prints its own one line, and "blob
    store opened" or "schema upgraded" would say more than it did.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level: int = logging.getLevelName(config.log_level.upper())
    if command and level != logging.DEBUG:
        level = max(level, logging.WARNING)
    root.setLevel(level)

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
