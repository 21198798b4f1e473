"""Optuna storages from a URL: an SQL database (``sqlite:///relative/path.db``,
``sqlite:////absolute/path.db``, ``postgresql://user:password@host/db``, ``mysql://...``)
or an Optuna journal file (``journal:///relative/path.log``, ``journal:////absolute/path.log``),
which needs no database server but has no heartbeat; None for a study in memory.

PostgreSQL goes through psycopg 3 (``pip install 'imgclf[postgres]'``) whichever SQLAlchemy
is installed: ``postgresql://`` and ``postgres://`` mean ``postgresql+psycopg://``. A URL
whose database driver is not installed is refused when the tuning block is read."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from imgclf.lazy import lazy_module

optuna = lazy_module("optuna")

_LOGGER = logging.getLogger(__name__)

JOURNAL_PREFIX = "journal:///"
RDB_DIALECTS = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
SQLITE_LOCK_TIMEOUT_SECONDS = 60
RDB_OPEN_ATTEMPTS = 5
POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")
POSTGRES_DRIVER_URL_PREFIX = "postgresql+psycopg://"


def make_storage(
    url: str | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> optuna.storages.BaseStorage:
    """Open the storage at ``url`` (see the module docstring), creating the parent folder
    of a local sqlite or journal file.

    Args:
        url: an SQLAlchemy URL, ``journal:///path``, or None for an in-memory storage.
        heartbeat_interval: seconds between heartbeats of running trials (RDB storages;
            a journal file has no heartbeat).
        grace_period: seconds without a heartbeat after which a running trial is failed
            (None: twice ``heartbeat_interval``).
    """
    check_storage_url(url)
    if url is None:
        return optuna.storages.InMemoryStorage()
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        path.parent.mkdir(parents=True, exist_ok=True)
        if heartbeat_interval is not None:
            _LOGGER.debug("journal storage %s has no heartbeat; heartbeat_interval ignored", url)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    engine_kwargs: dict[str, Any] = {}
    if _dialect(url) == "sqlite":
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Wait for the lock rather than fail at once when several workers write.
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_SECONDS}}
    return _open_rdb_storage(_with_driver(url), engine_kwargs, heartbeat_interval, grace_period)


def _open_rdb_storage(
    url: str,
    engine_kwargs: dict[str, Any],
    heartbeat_interval: int | None,
    grace_period: int | None,
) -> optuna.storages.RDBStorage:
    """Open an RDB storage, retrying while another worker is creating its tables."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(1, RDB_OPEN_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                )
        except (IntegrityError, OperationalError, ProgrammingError) as error:
            # Two workers creating the tables at once: one finds a table the other made.
            if attempt == RDB_OPEN_ATTEMPTS:
                raise
            _LOGGER.debug("opening storage failed (attempt %d), retrying: %s", attempt, error)
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def check_storage_url(url: Any) -> None:
    if url is None:
        return
    if not isinstance(url, str) or not url:
        raise ValueError(f"tuning 'storage' must be a URL string or null; got {url!r}")
    if url.startswith("journal:"):
        if not url.startswith(JOURNAL_PREFIX) or len(url) == len(JOURNAL_PREFIX):
            raise ValueError(
                f"journal storage URLs look like journal:///relative/path.log or "
                f"journal:////absolute/path.log; got {url!r}"
            )
        return
    if "://" not in url or _dialect(url) not in RDB_DIALECTS:
        raise ValueError(
            f"tuning 'storage' {url!r} is not supported; use an SQLAlchemy URL of "
            f"{', '.join(RDB_DIALECTS)} (e.g. sqlite:///data/06_models/optuna.db) or "
            f"journal:///path/to/study.log"
        )
    if _dialect(url) != "sqlite":
        _check_driver(url)


def _with_driver(url: str) -> str:
    """``url`` with psycopg named as its driver when it is a PostgreSQL URL without one."""
    for prefix in POSTGRES_URL_PREFIXES:
        if url.startswith(prefix):
            return POSTGRES_DRIVER_URL_PREFIX + url[len(prefix) :]
    return url


def _check_driver(url: str) -> None:
    """Refuse an SQL URL that SQLAlchemy cannot parse or whose driver is not installed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(_with_driver(url))
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError) as error:
        message = f"tuning 'storage' {url!r} is not a usable SQLAlchemy URL: {error}"
        raise ValueError(message) from None
    except ImportError as error:
        install = (
            "pip install 'imgclf[postgres]'"
            if parsed.get_backend_name() == "postgresql"
            else f"install the Python package that provides {error.name!r}"
        )
        raise ValueError(
            f"tuning 'storage' {parsed.render_as_string(hide_password=True)} needs the "
            f"database driver {error.name!r}, which is not installed here: {install}"
        ) from None


def _dialect(url: str) -> str:
    """The database dialect of an SQLAlchemy URL (``postgresql+psycopg://`` -> postgresql)."""
    return url.split("://", 1)[0].split("+", 1)[0].lower()
