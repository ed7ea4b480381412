"""Web door harness: the API, playground and metrics blueprints on a Flask app, real PostgreSQL.

The blueprints are mounted on a bare Flask app (no application-wide error handlers), so these tests
show that the API's JSON errors do not depend on the app around it; one test also mounts them in
``bots.web.create_app``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import procrastinate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from adapters.web.api import ApiLimits, ApiServices, api_blueprint
from adapters.web.metrics import metrics_blueprint
from adapters.web.playground import playground_blueprint
from adapters.web.sources_page import sources_page_blueprint
from bots.wiring import Container
from core.tenancy.apikeys import ApiKeys, NewKey
from core.ingest.jobs import IngestJobs, IngestRunner
from core.storage.queue import build_job_app
from core.questions.metrics import QueueDepth
from tests.builders import SAMPLE_DOCS, write_docs

COLLECTION = "docs"
DOCS = SAMPLE_DOCS


@dataclass
class Web:
    app: Flask
    client: FlaskClient
    container: Container
    keys: ApiKeys
    jobs: procrastinate.App
    runner: IngestRunner
    key: NewKey  # scoped to COLLECTION
    extra: dict[str, Any] = field(default_factory=dict)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key.key}"}

    def post(self, path: str, body: Any, *, key: str | None = None, **kwargs: Any):
        return self.client.post(path, json=body, headers=self.auth(key), **kwargs)

    def get(self, path: str, *, key: str | None = None, **kwargs: Any):
        return self.client.get(path, headers=self.auth(key), **kwargs)

    def ask(self, question: str, **fields: Any):
        return self.post("/api/v1/ask", {"question": question, **fields})

    def run_queued_ingest_jobs(self) -> None:
        """Run every queued ingestion job here and now, as a worker would."""
        with self.container.database.engine.connect() as conn:
            queued = sa.text("SELECT id FROM ingest_jobs WHERE status = 'queued' ORDER BY id")
            ids = conn.execute(queued).scalars().all()
        for job_id in ids:
            self.runner.run(job_id)

    def wait_for_job(self, job_id: int, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/jobs/{job_id}").get_json()["job"]
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish within {timeout}s")


def build_app(container: Container, jobs: procrastinate.App, *, limits: ApiLimits | None = None) -> Flask:
    """The web door's blueprints as bots/web.py would mount them."""
    engine = container.engine  # counted: the container's engine has the Prometheus observer
    sessions = container.database.sessions
    services = ApiServices(
        engine=engine, database=container.database, keys=ApiKeys(sessions), ingest=IngestJobs(sessions, jobs),
        jobs=jobs, limits=limits or ApiLimits(), sources=container.sources, door=container.waiting_door(jobs),
    )
    app = Flask("docrag-web-test")
    app.register_blueprint(api_blueprint(services))
    app.register_blueprint(playground_blueprint(engine, door=container.waiting_door(jobs)))
    app.register_blueprint(sources_page_blueprint(engine, container.sources))
    app.register_blueprint(metrics_blueprint(QueueDepth(container.database.engine)))
    return app


@pytest.fixture
def jobs(database) -> Iterator[procrastinate.App]:
    app = build_job_app(database.conninfo)
    app.open()
    yield app
    app.close()


@pytest.fixture
def docs_folder(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs", DOCS)


@pytest.fixture
def make_web(make_container, jobs, docs_folder) -> Callable[..., Web]:
    def make(*, ingest: bool = True, limits: ApiLimits | None = None, allow_private_urls: bool = True,
             **overrides: Any) -> Web:
        overrides.setdefault("default_collection", COLLECTION)  # what the playground answers from
        container = make_container(**overrides)
        if ingest:
            container.ingestor.ingest([str(docs_folder)], collection=COLLECTION, base_url="https://docs.example.com/")
        keys = ApiKeys(container.database.sessions)
        app = build_app(container, jobs, limits=limits)
        runner = IngestRunner(container.database.sessions, container.ingestor, allow_private_urls=allow_private_urls)
        return Web(app=app, client=app.test_client(), container=container, keys=keys, jobs=jobs, runner=runner,
                   key=keys.create([COLLECTION], name="tests"))

    return make


@pytest.fixture
def web(make_web) -> Web:
    return make_web()
