"""Fixtures for the Slack tests: a fake Slack per test and the harness around create_app."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
from flask import Flask

from bots.web import create_app, shutdown
from tests.fakes.slack_server import FakeSlack
from tests.builders import write_docs
from tests.slack.harness import BASE_URL, DOCS, SECRET, SlackHarness


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def make_harness(make_container, slack, tmp_path) -> Iterator[Callable[..., SlackHarness]]:
    apps: list[Flask] = []

    def make(*, ingest: bool = True, start_worker: bool = True, **overrides: Any) -> SlackHarness:
        values: dict[str, Any] = {
            "slack_bot_token": slack.token,
            "slack_signing_secret": SECRET,
            "slack_api_url": slack.api_url,
        }
        values.update(overrides)
        container = make_container(**values)
        if ingest:
            container.ingestor.ingest([str(write_docs(tmp_path / "docs", DOCS))], collection="default",
                                      base_url=BASE_URL)
        app = create_app(container=container, start_worker=start_worker)
        apps.append(app)
        return SlackHarness(app=app, client=app.test_client(), slack=slack, container=container)

    yield make
    for app in apps:
        shutdown(app)


@pytest.fixture
def harness(make_harness) -> SlackHarness:
    return make_harness()
