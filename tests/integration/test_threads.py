"""Threads that follow the topic: a follow-up searches with its history, a new topic as if fresh."""
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.storage.models import Message
from core.types import SessionKey
from tests.builders import write_docs
from tests.fakes.openai_server import FakeOpenAI

DOCS = {
    "api-keys.md": """# API keys

Create an API key on the settings page. Rotate an API key every ninety days: after rotation the
previous key keeps working for 24 hours, then it is revoked.
""",
    "backups.md": """# Backups

The database is backed up every night at 02:00 UTC. Backups are kept for thirty days, and an
administrator restores one from the admin console.
""",
    "webhooks.md": """# Webhooks

Webhooks send an HTTP POST to your endpoint for every event. Each request is signed with the
webhook secret, so your endpoint can check where it came from.
""",
}

ROTATE = "How do I rotate an API key?"
HOW_LONG = "how long does the old one keep working?"
BACKUPS = "How are backups restored?"


def key(thread: str) -> SessionKey:
    return SessionKey(platform="test", workspace="w1", channel="c1", thread=thread, user="u1")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs", DOCS)


@pytest.fixture
def extractive(container, corpus):
    container.ingestor.ingest([str(corpus)], collection="default")
    return container


def search_queries(container) -> list[str]:
    with container.database.sessions() as session:
        return list(session.scalars(sa.select(Message.search_query).where(Message.role == "user").order_by(Message.id)))


def test_a_pronoun_follow_up_searches_with_the_question_it_refers_to(extractive):
    extractive.engine.ask(key("t-keys"), ROTATE)
    follow_up = extractive.engine.ask(key("t-keys"), HOW_LONG)

    assert follow_up.citations[0].title == "API keys"
    assert "24 hours" in follow_up.text
    assert ROTATE in search_queries(extractive)[-1]  # the history reached the search


def test_a_new_topic_in_the_third_turn_retrieves_its_own_document_as_a_fresh_question_would(extractive):
    engine = extractive.engine
    engine.ask(key("t-topics"), ROTATE)
    engine.ask(key("t-topics"), HOW_LONG)
    in_thread = engine.ask(key("t-topics"), BACKUPS)
    fresh = engine.ask(key("t-fresh"), BACKUPS)

    assert in_thread.citations[0].title == "Backups"
    assert "admin console" in in_thread.text
    assert search_queries(extractive)[2] == BACKUPS  # nothing of the API-key turns was added
    assert [c.source for c in in_thread.citations] == [c.source for c in fresh.citations]
    assert in_thread.text == fresh.text


def is_rewrite(body) -> bool:
    return "standalone search query" in body["messages"][0]["content"]


def test_with_an_llm_only_the_follow_up_is_rewritten_and_a_new_topic_is_searched_as_asked(make_container, corpus):
    with FakeOpenAI() as fake_llm:
        rewrites: list[str] = []

        def respond(body):
            if is_rewrite(body):
                rewrites.append(body["messages"][-1]["content"])
                return "How long does a rotated API key keep working?"
            return "An answer [1]."

        fake_llm.chat_responder = respond
        container = make_container(llm="openai", openai_base_url=fake_llm.base_url, llm_max_retries=0, llm_timeout_s=1.0)
        container.ingestor.ingest([str(corpus)], collection="default")
        container.engine.ask(key("t-llm"), ROTATE)
        container.engine.ask(key("t-llm"), HOW_LONG)
        new_topic = container.engine.ask(key("t-llm"), BACKUPS)

    assert len(rewrites) == 1 and HOW_LONG in rewrites[0] and ROTATE in rewrites[0]
    assert search_queries(container)[1:] == ["How long does a rotated API key keep working?", BACKUPS]
    assert new_topic.citations[0].title == "Backups"
