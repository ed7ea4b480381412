"""The web door mounted in the real application factory (bots.web.create_app), as production runs it.

Until bots/web.py mounts these blueprints itself, the factories below (the code proposed for it) are
added to its BLUEPRINTS list for the test; once it does, its own are used.
"""
from __future__ import annotations

from typing import Iterator

import pytest
from flask import Blueprint, Flask

import bots.web
from adapters.web.api import ApiServices, api_blueprint
from adapters.web.metrics import metrics_blueprint
from adapters.web.playground import playground_blueprint
from core.tenancy.apikeys import ApiKeys
from core.ingest.jobs import IngestJobs
from core.questions.metrics import QueueDepth
from tests.web.conftest import COLLECTION


def api_blueprint_for(runtime: bots.web.WebRuntime) -> Blueprint:
    container = runtime.container
    sessions = container.database.sessions
    return api_blueprint(ApiServices(
        engine=container.engine, database=container.database, keys=ApiKeys(sessions),
        ingest=IngestJobs(sessions, runtime.jobs), jobs=runtime.jobs,
    ))


def playground_blueprint_for(runtime: bots.web.WebRuntime) -> Blueprint:
    return playground_blueprint(runtime.container.engine)


def metrics_blueprint_for(runtime: bots.web.WebRuntime) -> Blueprint:
    return metrics_blueprint(QueueDepth(runtime.container.database.engine))


@pytest.fixture
def app(make_container, docs_folder, monkeypatch) -> Iterator[Flask]:
    proposed = [api_blueprint_for, playground_blueprint_for, metrics_blueprint_for]
    missing = [factory for factory in proposed if not hasattr(bots.web, factory.__name__)]
    monkeypatch.setattr(bots.web, "BLUEPRINTS", [*bots.web.BLUEPRINTS, *missing])
    # Served where `make run` serves it, loopback with no sign-in configured: a public playground.
    container = make_container(default_collection=COLLECTION, web_listen="127.0.0.1:8000")
    container.ingestor.ingest([str(docs_folder)], collection=COLLECTION, base_url="https://docs.example.com/")
    application = bots.web.create_app(container=container, start_worker=False)
    yield application
    bots.web.shutdown(application)


def test_the_api_keeps_its_error_shape_inside_the_application(app):
    client = app.test_client()
    key = ApiKeys(bots.web.runtime_of(app).container.database.sessions).create([COLLECTION]).key
    auth = {"Authorization": f"Bearer {key}"}

    answer = client.post("/api/v1/ask", json={"question": "how do I rotate my API key?"}, headers=auth)
    assert answer.status_code == 200 and answer.get_json()["citations"]

    for response, status in (
        (client.get("/api/v1/nope", headers=auth), 404),
        (client.get("/api/v1/ask", headers=auth), 405),
        (client.post("/api/v1/ask", data="x" * 100_000, headers=auth, content_type="application/json"), 413),
        (client.post("/api/v1/ask", json={}, headers=auth), 400),
        (client.post("/api/v1/ask", json={"question": "hi"}), 401),
    ):
        assert response.status_code == status
        assert set(response.get_json()["error"]) >= {"code", "message"}


def test_playground_health_and_metrics_are_served_beside_slack(app):
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/ready").get_json()["status"] == "ready"
    page = client.get("/")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assert b"docrag_queue_depth" in client.get("/metrics").get_data()


def test_install_json_errors_gives_any_app_the_same_error_shape():
    """Offered to bots/web.py in place of its own handlers, so every path answers errors alike."""
    from adapters.web.errors import install_json_errors

    bare = Flask("bare")

    @bare.post("/only-post")
    def only_post() -> str:
        return "ok"

    install_json_errors(bare)
    client = bare.test_client()
    assert client.get("/nowhere").get_json()["error"]["code"] == "not_found"
    wrong = client.get("/only-post")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]
