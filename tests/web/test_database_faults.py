"""A database that does not answer in time: REST says 503 with Retry-After, chat apologises with a
reference, a pool with no free connection fails fast, an ingestion job is left for its retry.

The limits are made tight on a Database of the test's own (same server as the other tests); the
waits are real: another connection holds a lock on the table the question is written to.
"""
from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import replace
from typing import Iterator

import pytest
import sqlalchemy as sa

from bots.wiring import Container
from core.storage.db import ConnectionProfile, Database, connect
from core.storage.faults import DatabaseUnavailable
from core.storage.pool import PoolSettings
from core.storage.timeouts import Limits, TimeoutPolicy, Work
from core.ingest.jobs import IngestRunner
from core.observability.registry import REGISTRY
from tests.web.conftest import COLLECTION, Web, build_app
from tests.web.test_playground import ask as playground_ask
from tests.web.test_playground import csrf_token, open_page

REFERENCE = re.compile(r"reference [0-9a-f]{8}")


def tight_database(url: str, *, statement_ms: int = 5000, lock_ms: int = 2000, pool: PoolSettings | None = None) -> Database:
    limits = Limits(statement_timeout_ms=statement_ms, lock_timeout_ms=lock_ms)
    policy = TimeoutPolicy(connect_timeout_s=2, limits={work: limits for work in Work})
    return connect(url, profile=ConnectionProfile("docrag-web", pool or PoolSettings(size=3, max_overflow=2), policy))


def web_on(web: Web, database: Database) -> Web:
    """The same web door (keys, documents), served through ``database``."""
    container = Container(settings=web.container.settings, database=database)
    app = build_app(container, web.jobs)
    return replace(web, app=app, client=app.test_client(), container=container,
                   runner=IngestRunner(database.sessions, container.ingestor))


@contextlib.contextmanager
def table_locked(database: Database, table: str) -> Iterator[None]:
    """Another session holds an exclusive lock on ``table`` (as a long migration or a stuck job would)."""
    with database.engine.connect() as conn:
        conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


@pytest.fixture
def make_tight_web(make_web, database_url):
    opened: list[Database] = []

    def make(**limits) -> Web:
        database = tight_database(database_url, **limits)
        opened.append(database)
        return web_on(make_web(), database)

    yield make
    for database in opened:
        database.dispose()


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"statement_ms": 300, "lock_ms": 0}, "a statement took longer than its timeout"),
        ({"statement_ms": 5000, "lock_ms": 300}, "a lock was not granted within its timeout"),
    ],
    ids=["statement_timeout", "lock_timeout"],
)
def test_a_timed_out_question_is_a_503_with_retry_after_and_a_reference(make_tight_web, database, limits, reason):
    web = make_tight_web(**limits)
    with table_locked(database, "messages"):
        response = web.ask("How do I rotate an API key?", collection=COLLECTION)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit() and int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["code"] == "database_unavailable"
    assert "temporarily unavailable" in error["message"] and reason in error["message"]
    assert error["reference"] and error["reference"] in error["message"]
    # Once the lock is gone the same question is answered.
    assert web.ask("How do I rotate an API key?", collection=COLLECTION).status_code == 200


def test_a_timed_out_chat_question_gets_the_apology_with_a_reference(make_tight_web, database):
    web = make_tight_web(statement_ms=300, lock_ms=0)
    token = csrf_token(open_page(web.client))
    with table_locked(database, "messages"):
        response = playground_ask(web.client, "How do I rotate an API key?", token)
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "temporarily unavailable" in page and REFERENCE.search(page)


def test_a_timed_out_cli_question_says_so_with_a_reference(database, database_url, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from bots.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOCRAG_LLM", "extractive")
    (tmp_path / "keys.md").write_text("# API keys\n\nRotate an API key from the settings page.\n")
    assert CliRunner().invoke(main, ["ingest", str(tmp_path)]).exit_code == 0
    monkeypatch.setenv("DOCRAG_DB_REQUEST_LOCK_TIMEOUT_MS", "300")  # read by the CLI process's own settings
    with table_locked(database, "messages"):
        result = CliRunner().invoke(main, ["ask", "how do I rotate an API key?"])
    assert result.exit_code == 1
    assert "temporarily unavailable" in result.output and REFERENCE.search(result.output)


def test_a_question_whose_connection_is_killed_mid_statement_is_a_503_not_a_500(make_tight_web, database):
    """A restart or pg_terminate_backend cuts a question's connection while its statement runs: the
    client gets the "temporarily unavailable" 503 it can retry, not an internal error. (The lost
    connection's rollback used to raise PendingRollbackError over the real error.)"""
    web = make_tight_web(statement_ms=30_000, lock_ms=30_000)
    outcome: list = []
    with table_locked(database, "messages"):
        asking = threading.Thread(target=lambda: outcome.append(web.ask("How do I rotate an API key?", collection=COLLECTION)))
        asking.start()
        killed = terminate_when_waiting_on_a_lock(database)
        asking.join(timeout=60)
    assert killed == 1
    response = outcome[0]
    assert response.status_code == 503 and response.headers["Retry-After"]
    error = response.get_json()["error"]
    assert error["code"] == "database_unavailable" and "connection to the server" in error["message"]
    assert web.ask("How do I rotate an API key?", collection=COLLECTION).status_code == 200


def terminate_when_waiting_on_a_lock(database: Database) -> int:
    """pg_terminate_backend on the backend that waits for a lock, once there is one (a 30 s guard).

    Each look is a transaction of its own: pg_stat_activity is read once per transaction."""
    for _ in range(600):
        with database.engine.begin() as conn:
            killed = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'")).scalar_one()
        if killed:
            return killed
        threading.Event().wait(0.05)
    return 0


def test_no_free_connection_within_the_pool_timeout_is_a_503_and_is_counted(make_web, database_url):
    database = tight_database(database_url, pool=PoolSettings(size=1, max_overflow=0, timeout_s=0.3))
    web = web_on(make_web(), database)
    before = REGISTRY.get_sample_value("docrag_db_pool_timeouts_total", {"pool": "docrag-web"}) or 0
    try:
        with database.engine.connect() as held:  # the pool's only connection is in use
            held.exec_driver_sql("SELECT 1")
            response = web.ask("How do I rotate an API key?", collection=COLLECTION)
            in_use = REGISTRY.get_sample_value("docrag_db_pool_checked_out", {"pool": "docrag-web"})
        after = web.ask("How do I rotate an API key?", collection=COLLECTION)
    finally:
        database.dispose()
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "no free database connection within 0.3 s" in response.get_json()["error"]["message"]
    assert REGISTRY.get_sample_value("docrag_db_pool_timeouts_total", {"pool": "docrag-web"}) == before + 1
    assert in_use == 1
    assert after.status_code == 200
    waits = REGISTRY.get_sample_value("docrag_db_pool_wait_seconds_count", {"pool": "docrag-web"})
    assert waits and waits >= 2


def test_an_ingestion_job_that_meets_a_held_lock_is_left_for_its_retry(make_tight_web, database):
    web = make_tight_web(statement_ms=5000, lock_ms=300)
    job_id = web.post(f"/api/v1/collections/{COLLECTION}/documents", {"url": "https://docs.example.com/none"}).get_json()["job"]["id"]
    with table_locked(database, "ingest_jobs"):
        with pytest.raises(DatabaseUnavailable):
            web.runner.run(job_id)
    with database.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM ingest_jobs WHERE id = :id"), {"id": job_id}).scalar_one()
    assert status != "failed"  # not marked failed: procrastinate runs it again (core/storage/queue.py DATABASE_RETRY)


def test_a_slack_answer_job_that_times_out_posts_the_apology_with_a_reference(make_tight_web, database):
    from dataclasses import replace

    from adapters.slack.delivery import render
    from core.questions.lifecycle import Lifecycle
    from core.questions.values import Where
    from core.types import SessionKey

    web = make_tight_web(statement_ms=300, lock_ms=0)
    engine = web.container.engine
    lifecycle = Lifecycle(engine, web.jobs, {})
    question_id = engine.accept(SessionKey("slack", "T1", "C1", "1.0", "U1"), "How do I rotate an API key?",
                                collection=COLLECTION, where=Where("slack", {"team": "T1", "channel": "C1"}))
    delivery = engine.store.delivery(question_id)
    last_try = replace(delivery, attempts=lifecycle.options.max_attempts)  # earlier tries left it to the retry
    with table_locked(database, "messages"):
        reply = render(lifecycle.compose(last_try))
    assert "the database" in reply.text and "unavailable" in reply.text
    assert REFERENCE.search(reply.text) or re.search(r"reference: [0-9a-f]{8}", reply.text)


def test_a_discord_question_that_times_out_gets_the_apology_with_a_reference():
    from adapters.discord.render import error_text

    text = error_text(DatabaseUnavailable("a statement took longer than its timeout"))
    assert "the database is temporarily unavailable" in text and re.search(r"reference `[0-9a-f]{8}`", text)


def test_database_unavailable_is_still_an_operational_error_and_survives_pickling():
    import pickle

    error = DatabaseUnavailable("no free database connection within 5 s")
    assert isinstance(error, sa.exc.OperationalError)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.reference == error.reference


def test_a_connection_lost_under_an_orm_autoflush_is_database_unavailable(database, database_url):
    """SQLAlchemy adds a note to an error raised by an autoflush; that must not turn the 503 into a 500."""
    from core.storage.models import Collection

    own = tight_database(database_url)
    try:
        with own.sessions() as session:
            pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with database.engine.connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            session.add(Collection(name="autoflushed"))
            with pytest.raises(DatabaseUnavailable) as caught:
                session.execute(sa.select(Collection))  # flushes the new row first, on the dead connection
    finally:
        own.dispose()
    assert "temporarily unavailable" in str(caught.value)
