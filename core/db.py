"""Connections: an external PostgreSQL from ``DATABASE_URL``, or the private embedded one (core/embedded_db.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from core.embedded_db import start_embedded_postgres
from core.errors import ConfigurationError

log = logging.getLogger(__name__)


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


def resolve_database_url(database_url: str | None, data_dir: Path, *, shared_buffers_mb: int | None = None) -> str:
    if not database_url:
        return start_embedded_postgres(data_dir, shared_buffers_mb=shared_buffers_mb)
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
