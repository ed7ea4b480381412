"""Connections: an external PostgreSQL from ``DATABASE_URL``, or the private embedded one (core/storage/embedded.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from core.storage.faults import install_fault_translation
from core.storage.pool import PoolSettings, install_pool_gauges, pool_arguments
from core.storage.timeouts import Limits, TimeoutPolicy, Work, bound_to, conninfo_parameters, connect_args, install_work_limits
from core.storage.watchdog import install_statement_watchdog
from core.storage.embedded import start_embedded_postgres
from core.errors import ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionProfile:
    """How one process uses the server: its name in pg_stat_activity, its pool, its time limits."""

    application_name: str = "docrag"
    pool: PoolSettings = field(default_factory=PoolSettings)
    timeouts: TimeoutPolicy = field(default_factory=TimeoutPolicy)


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    url: str  # SQLAlchemy URL (psycopg2 driver)
    profile: ConnectionProfile = field(default_factory=ConnectionProfile)

    @property
    def conninfo(self) -> str:
        """A libpq URL for drivers other than SQLAlchemy's (the job queue uses psycopg 3), with the
        same connect timeout and limits, named ``<process>-jobs`` in pg_stat_activity."""
        from psycopg.conninfo import make_conninfo  # psycopg 3 loads only with the job queue

        parameters = conninfo_parameters(self.profile.timeouts, f"{self.profile.application_name}-jobs")
        url = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        return make_conninfo(url, **parameters)

    def sessions_for(self, work: Work) -> sessionmaker[Session]:
        """Sessions on the same pool whose transactions run under ``work``'s time limits."""
        return sessionmaker(bound_to(self.engine, work), expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()


def resolve_database_url(
    database_url: str | None,
    data_dir: Path,
    *,
    shared_buffers_mb: int | None = None,
    max_connections: int | None = None,
) -> str:
    if not database_url:
        return start_embedded_postgres(data_dir, shared_buffers_mb=shared_buffers_mb, max_connections=max_connections)
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")
    if not url.drivername.startswith("postgresql"):
        raise ConfigurationError("DATABASE_URL must point at PostgreSQL (postgresql://user:pass@host/db)")
    return url.render_as_string(hide_password=False)


def connect(url: str, *, pool_size: int | None = None, profile: ConnectionProfile | None = None) -> Database:
    profile = profile or ConnectionProfile()
    if pool_size is not None:
        profile = ConnectionProfile(profile.application_name, PoolSettings(size=pool_size), profile.timeouts)
    engine = create_bounded_engine(url, profile)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False), url=url, profile=profile)


def create_bounded_engine(url: str, profile: ConnectionProfile) -> Engine:
    """An engine whose every wait is bounded (connect, checkout, statements, locks), whose "not now"
    errors are DatabaseUnavailable, and whose pool is measured (core/storage/pool.py)."""
    engine = sa.create_engine(
        url,
        connect_args=connect_args(profile.timeouts, profile.application_name),
        **pool_arguments(profile.pool, profile.application_name),
    )
    install_fault_translation(engine)
    install_work_limits(engine, profile.timeouts)
    install_statement_watchdog(engine, profile.timeouts)
    install_pool_gauges(engine, profile.application_name)
    return engine


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


def open_probe_engine(database: Database, *, connect_timeout_s: int = 2, statement_timeout_ms: int = 1000) -> Engine:
    """A pool-less engine for readiness probes: every check opens a fresh connection (so it sees a
    restarted or stopped server at once and never waits for the main pool), connects within
    ``connect_timeout_s`` and runs each statement within ``statement_timeout_ms``. A frozen server
    answers neither, so callers also bound the whole check in wall-clock time."""
    policy = TimeoutPolicy(
        connect_timeout_s=connect_timeout_s,
        limits={Work.REQUEST: Limits(statement_timeout_ms, statement_timeout_ms // 2)},
    )
    engine = sa.create_engine(
        database.url,
        poolclass=NullPool,
        connect_args=connect_args(policy, f"{database.profile.application_name}-probe"),
    )
    install_fault_translation(engine)
    return engine
