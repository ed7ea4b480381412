"""Pool sizes follow the processes' concurrency; a deployment that can exceed max_connections is told."""
from __future__ import annotations

import logging

import pytest

from adapters.discord.bot import BotOptions
from bots import db_budget, gunicorn_conf, web, worker
from bots.wiring import open_database
from core.config import Settings
from core.storage.timeouts import Work
from core.ingest import STORE_WRITERS
from core.search.retrieval import TEXT_LEG_WORKERS


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_budget_uses_the_processes_own_concurrency():
    assert db_budget.WORKER_CONCURRENCY == worker.DEFAULT_CONCURRENCY
    assert db_budget.EMBEDDED_JOB_CONCURRENCY == web.EMBEDDED_CONCURRENCY
    assert db_budget.DISCORD_ENGINE_THREADS == BotOptions().engine_workers


def test_pool_size_is_the_threads_and_overflow_their_second_legs():
    external = settings(database_url="postgresql://db.example/docrag")
    web_pool = db_budget.process_budget(external, "web").pool
    assert web_pool.size == gunicorn_conf.threads
    assert web_pool.max_overflow == min(TEXT_LEG_WORKERS, gunicorn_conf.threads)
    worker_pool = db_budget.process_budget(external, "worker").pool
    assert worker_pool.size == worker.DEFAULT_CONCURRENCY
    assert worker_pool.max_overflow == min(TEXT_LEG_WORKERS, worker.DEFAULT_CONCURRENCY) + STORE_WRITERS
    # On the embedded default the web process also runs the job workers (and their ingests).
    embedded = db_budget.process_budget(settings(), "web").pool
    assert embedded.size == gunicorn_conf.threads + web.EMBEDDED_CONCURRENCY


def test_settings_override_the_derived_pool_and_limits():
    s = settings(db_pool_size=3, db_max_overflow=0, db_pool_timeout_s=1.5, db_request_statement_timeout_ms=750)
    profile = db_budget.connection_profile(s, "web")
    assert (profile.pool.size, profile.pool.max_overflow, profile.pool.timeout_s) == (3, 0, 1.5)
    assert profile.timeouts.for_work(Work.REQUEST).statement_timeout_ms == 750
    assert profile.application_name == "docrag-web"
    assert db_budget.connection_profile(s, "worker").timeouts.default == Work.ANSWER_JOB


def test_a_deployment_that_can_exceed_max_connections_is_warned_at_start(make_settings, database, caplog):
    with caplog.at_level(logging.WARNING, logger="bots.db_budget"):
        big = open_database(make_settings(db_pool_size=200), process="web")
        big.dispose()
        small = open_database(make_settings(db_pool_size=1, db_max_overflow=0), process="web")
        small.dispose()
    warnings = [r.getMessage() for r in caplog.records if "connections_may_exceed_server_limit" in r.getMessage()]
    assert len(warnings) == 1
    assert "max_connections 100" in warnings[0] and "DOCRAG_DB_POOL_SIZE" in warnings[0]


def test_an_unknown_process_kind_is_refused():
    with pytest.raises(ValueError):
        db_budget.connection_profile(settings(), "scheduler")


def test_each_kind_of_work_runs_under_its_own_limits(make_settings, database):
    import sqlalchemy as sa

    from core.storage.timeouts import database_work

    db = open_database(make_settings(db_job_lock_timeout_ms=4321), process="web")

    def limits(sessions) -> tuple[str, str, str]:
        with sessions.begin() as session:
            return tuple(session.execute(sa.text(f"SHOW {name}")).scalar_one()
                         for name in ("statement_timeout", "lock_timeout", "application_name"))

    try:
        assert limits(db.sessions) == ("5s", "2s", "docrag-web")  # a web process: request limits
        assert limits(db.sessions_for(Work.INGESTION)) == ("10min", "1min", "docrag-web")
        with database_work(Work.ANSWER_JOB):  # a job's body, on the process's ordinary sessions
            assert limits(db.sessions) == ("15s", "4321ms", "docrag-web")
        assert limits(db.sessions) == ("5s", "2s", "docrag-web")  # SET LOCAL ended with its transaction
    finally:
        db.dispose()


def test_the_embedded_server_is_sized_up_only_when_the_machine_runs_more_web_workers(monkeypatch):
    from core.storage.embedded import PG_DEFAULT_MAX_CONNECTIONS, server_settings

    monkeypatch.setattr(gunicorn_conf, "workers", 2)  # two cores: PostgreSQL's default suffices
    small = db_budget.embedded_max_connections(settings())
    assert small <= PG_DEFAULT_MAX_CONNECTIONS
    assert "max_connections" not in server_settings(128, small)  # an existing data folder is not restarted

    monkeypatch.setattr(gunicorn_conf, "workers", 4)  # four cores and more: four web workers
    planned = sum(db_budget.deployment_connections(settings()).values())
    large = db_budget.embedded_max_connections(settings())
    assert planned > PG_DEFAULT_MAX_CONNECTIONS - db_budget.SUPERUSER_RESERVED  # what used to warn
    assert large >= planned + db_budget.SUPERUSER_RESERVED
    assert server_settings(128, large)["max_connections"] == str(large)
