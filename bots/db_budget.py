"""How many PostgreSQL connections each DocRag process may open, derived from its concurrency.

A thread doing database work holds one connection at a time, except that a search runs its
full-text leg on a second connection (core/search/retrieval.py) and an ingest stores documents on
``STORE_WRITERS`` connections of their own (core/ingest/pipeline.py). So for each process kind:

    pool size     = threads that do database work at once
    max overflow  = the second legs of their searches (at most TEXT_LEG_WORKERS) + ingest writers

and each process that opens the job queue (procrastinate, psycopg 3) adds its own pool of
JOB_QUEUE_POOL connections per opened app. docs/database.md writes the formula out; a test
keeps the numbers below equal to the processes' own settings.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from bots import gunicorn_conf
from core.config import Settings
from core.storage.db import ConnectionProfile
from core.storage.pool import PoolSettings
from core.storage.timeouts import Work, policy_from_settings
from core.ingest import STORE_WRITERS
from core.search.retrieval import TEXT_LEG_WORKERS

log = logging.getLogger(__name__)

# The processes' concurrency (tests/unit/test_db_budget.py checks these against their sources).
WORKER_CONCURRENCY = 4  # bots/worker.py DEFAULT_CONCURRENCY
EMBEDDED_JOB_CONCURRENCY = 2  # bots/web.py EMBEDDED_CONCURRENCY
DISCORD_ENGINE_THREADS = 8  # adapters/discord/bot.py BotOptions.engine_workers
CLI_THREADS = 1
JOB_QUEUE_POOL = 4  # psycopg_pool's default size, per opened procrastinate app

PROCESS_KINDS = ("web", "worker", "discord", "cli")
DEFAULT_WORK = {"web": Work.REQUEST, "worker": Work.ANSWER_JOB, "discord": Work.REQUEST, "cli": Work.REQUEST}


@dataclass(frozen=True)
class ProcessBudget:
    pool: PoolSettings
    job_queue_connections: int

    @property
    def connections(self) -> int:
        return self.pool.max_connections + self.job_queue_connections


def _budget(settings: Settings, threads: int, *, ingests: bool, job_apps: int) -> ProcessBudget:
    overflow = min(TEXT_LEG_WORKERS, threads) + (STORE_WRITERS if ingests else 0)
    pool = PoolSettings(
        size=settings.db_pool_size or threads,
        max_overflow=settings.db_max_overflow if settings.db_max_overflow is not None else overflow,
        timeout_s=settings.db_pool_timeout_s,
        recycle_s=settings.db_pool_recycle_s,
    )
    return ProcessBudget(pool, job_apps * JOB_QUEUE_POOL)


def embedded_jobs(settings: Settings) -> bool:
    """Does the web process run the job workers itself (the embedded default)?"""
    return settings.embedded_workers and settings.uses_embedded_database


def process_budget(settings: Settings, process: str) -> ProcessBudget:
    if process == "web":
        jobs = EMBEDDED_JOB_CONCURRENCY if embedded_jobs(settings) else 0
        return _budget(settings, gunicorn_conf.threads + jobs, ingests=bool(jobs), job_apps=1 + bool(jobs))
    if process == "worker":
        return _budget(settings, WORKER_CONCURRENCY, ingests=True, job_apps=2)
    if process == "discord":
        return _budget(settings, DISCORD_ENGINE_THREADS, ingests=False, job_apps=0)
    return _budget(settings, CLI_THREADS, ingests=True, job_apps=0)


def deployment_connections(settings: Settings) -> dict[str, int]:
    """The most connections each part of a deployment may hold: every gunicorn worker, one
    `docrag worker` (with DATABASE_URL) and one Discord process (with DISCORD_TOKEN)."""
    planned = {"web": gunicorn_conf.workers * process_budget(settings, "web").connections}
    if not embedded_jobs(settings):
        planned["worker"] = process_budget(settings, "worker").connections
    if settings.discord_token is not None:
        planned["discord"] = process_budget(settings, "discord").connections
    return planned


# Beyond the long-running processes: a few `docrag` commands at once, and the server's reserve
# for superusers (PostgreSQL's default superuser_reserved_connections).
COMMAND_HEADROOM = 10
SUPERUSER_RESERVED = 3


def embedded_max_connections(settings: Settings) -> int:
    """The max_connections the embedded server needs for this machine's deployment: every
    process's worst case (deployment_connections), some CLI commands, and the superuser reserve.
    On two cores that is under PostgreSQL's default of 100; on more, gunicorn runs more workers
    and the server is sized up instead of warning about itself."""
    return sum(deployment_connections(settings).values()) + COMMAND_HEADROOM + SUPERUSER_RESERVED


def connection_profile(settings: Settings, process: str) -> ConnectionProfile:
    if process not in PROCESS_KINDS:
        raise ValueError(f"unknown process kind {process!r}")
    return ConnectionProfile(
        application_name=f"docrag-{process}",
        pool=process_budget(settings, process).pool,
        timeouts=policy_from_settings(settings, DEFAULT_WORK[process]),
    )


def warn_if_over_capacity(engine: sa.Engine, settings: Settings) -> str | None:
    """Compare the deployment's worst case with the server's max_connections; log and return a
    warning when it can exceed what the server accepts from ordinary roles."""
    with engine.connect() as conn:
        max_connections = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
        reserved = int(conn.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
    planned = deployment_connections(settings)
    total, available = sum(planned.values()), max_connections - reserved
    if total <= available:
        return None
    parts = ", ".join(f"{kind} {count}" for kind, count in planned.items())
    message = (
        f"DocRag's processes may open {total} database connections ({parts}) but the server accepts "
        f"{available} (max_connections {max_connections} - {reserved} reserved): raise max_connections, "
        "lower DOCRAG_DB_POOL_SIZE / DOCRAG_DB_MAX_OVERFLOW or WEB_CONCURRENCY, or put PgBouncer in front "
        "(docs/database.md)"
    )
    log.warning("db.connections_may_exceed_server_limit planned=%s available=%s detail=%s", total, available, message)
    return message
