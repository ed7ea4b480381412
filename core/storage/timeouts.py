"""A bound on every wait for the database: connect, statement and lock timeouts per kind of work.

Each kind of work has its own limits (a web request must not wait as long as an ingestion
transaction may run). A connection is opened with its process's default kind in the libpq
``options`` (no round trip); work of another kind on the same pool sets its own values with
``SET LOCAL`` at the start of each transaction, so a rolled-back transaction cannot leave a
connection with another kind's limits.

Which kind is running comes from :func:`database_work` (a context variable: set around a job's
body) or from an engine's ``docrag_work`` execution option (a sessionmaker bound to
``engine.execution_options(docrag_work=...)`` carries it into any thread).
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import event

if TYPE_CHECKING:
    from core.config import Settings


class Work(str, Enum):
    REQUEST = "request"  # web, chat and CLI questions answered while someone waits
    ANSWER_JOB = "answer_job"  # answers produced by background jobs (Slack)
    INGESTION = "ingestion"  # loading and indexing documents, postings rebuilds
    MIGRATION = "migration"  # schema changes (`docrag db upgrade`)


@dataclass(frozen=True)
class Limits:
    statement_timeout_ms: int  # 0 = no limit (PostgreSQL's own meaning)
    lock_timeout_ms: int


# The defaults of the DOCRAG_DB_*_TIMEOUT_MS settings (docs/database.md explains each value).
DEFAULT_LIMITS: Mapping[Work, Limits] = {
    Work.REQUEST: Limits(statement_timeout_ms=5_000, lock_timeout_ms=2_000),
    Work.ANSWER_JOB: Limits(statement_timeout_ms=15_000, lock_timeout_ms=5_000),
    Work.INGESTION: Limits(statement_timeout_ms=600_000, lock_timeout_ms=60_000),
    Work.MIGRATION: Limits(statement_timeout_ms=1_800_000, lock_timeout_ms=5_000),
}


@dataclass(frozen=True)
class TimeoutPolicy:
    connect_timeout_s: int = 5
    limits: Mapping[Work, Limits] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    default: Work = Work.REQUEST  # the limits a connection is opened with

    def for_work(self, work: Work) -> Limits:
        return self.limits.get(work) or self.limits.get(self.default) or Limits(0, 0)


EXECUTION_OPTION = "docrag_work"
_current: contextvars.ContextVar[Work | None] = contextvars.ContextVar("docrag_work", default=None)


@contextlib.contextmanager
def database_work(work: Work) -> Iterator[None]:
    """Run the block's transactions (in this thread) under ``work``'s limits."""
    token = _current.set(work)
    try:
        yield
    finally:
        _current.reset(token)


def connect_args(policy: TimeoutPolicy, application_name: str) -> dict[str, Any]:
    """libpq parameters: a connect timeout, the default kind's limits, and a name pg_stat_activity shows."""
    limits = policy.for_work(policy.default)
    return {
        "connect_timeout": policy.connect_timeout_s,
        "application_name": application_name,
        "options": f"-c statement_timeout={limits.statement_timeout_ms} -c lock_timeout={limits.lock_timeout_ms}",
    }


def conninfo_parameters(policy: TimeoutPolicy, application_name: str) -> dict[str, str]:
    """The same parameters as strings, for a libpq URL (the job queue's psycopg 3 connections)."""
    return {key: str(value) for key, value in connect_args(policy, application_name).items()}


def work_of(conn: sa.Connection, policy: TimeoutPolicy) -> Work:
    """The kind of work ``conn`` is doing: the block's, else its engine's, else the process's."""
    return Work(_current.get() or conn.get_execution_options().get(EXECUTION_OPTION) or policy.default)


def install_work_limits(engine: sa.Engine, policy: TimeoutPolicy) -> None:
    """Give each transaction the limits of the work it belongs to."""

    @event.listens_for(engine, "begin")
    def _set_limits(conn: sa.Connection) -> None:
        limits = policy.for_work(work_of(conn, policy))
        if limits == policy.for_work(policy.default):
            return  # the connection was opened with these
        conn.exec_driver_sql(
            f"SET LOCAL statement_timeout = {int(limits.statement_timeout_ms)}; "
            f"SET LOCAL lock_timeout = {int(limits.lock_timeout_ms)}"
        )


def bound_to(engine: sa.Engine, work: Work) -> sa.Engine:
    """The same engine and pool, with ``work``'s limits on every transaction."""
    return engine.execution_options(**{EXECUTION_OPTION: work.value})


def policy_from_settings(settings: "Settings", default: Work) -> TimeoutPolicy:
    """The time limits the settings ask for, with ``default`` as the connections' own kind."""
    s = settings
    return TimeoutPolicy(
        connect_timeout_s=s.db_connect_timeout_s,
        limits={
            Work.REQUEST: Limits(s.db_request_statement_timeout_ms, s.db_request_lock_timeout_ms),
            Work.ANSWER_JOB: Limits(s.db_job_statement_timeout_ms, s.db_job_lock_timeout_ms),
            Work.INGESTION: Limits(s.db_ingest_statement_timeout_ms, s.db_ingest_lock_timeout_ms),
            Work.MIGRATION: Limits(s.db_migration_statement_timeout_ms, s.db_migration_lock_timeout_ms),
        },
        default=default,
    )
