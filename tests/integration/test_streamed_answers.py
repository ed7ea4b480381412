"""Streamed answers (Engine.answer_stream): shown as the model writes them, the same answer in the end."""
from __future__ import annotations

import threading


import pytest
import sqlalchemy as sa

from core.errors import UpstreamUnavailable
from core.storage.models import Message
from core.types import Answer
from tests.integration.test_answers import DOCS, key
from tests.builders import write_docs
from tests.fakes.openai_server import FakeOpenAI

WRITTEN = "Create the app from the manifest [2]. Tokens are in the vault [7]. Install it to the workspace [2][1]."


@pytest.fixture
def fake_llm():
    with FakeOpenAI() as fake:
        fake.chat_responder = lambda body: WRITTEN
        yield fake


@pytest.fixture
def make_llm_container(make_container, fake_llm, tmp_path):
    corpus = write_docs(tmp_path / "docs", DOCS)

    def make(**overrides):
        settings = dict(llm="openai", openai_base_url=fake_llm.base_url, llm_max_retries=0, llm_timeout_s=2.0)
        container = make_container(**{**settings, **overrides})
        container.ingestor.ingest([str(corpus)], collection="default")
        return container

    return make


def drain(stream) -> tuple[list[str], Answer]:
    pieces: list[str] = []
    while True:
        try:
            pieces.append(next(stream))
        except StopIteration as done:
            return pieces, done.value


def test_streamed_text_is_the_finished_answer_with_its_final_citation_numbers(make_llm_container):
    engine = make_llm_container().engine
    plain = engine.ask(key("t-plain"), "How do I set up the Slack app?")

    pieces, streamed = drain(engine.answer_stream(engine.accept(key("t-stream"), "How do I set up the Slack app?")))

    assert len(pieces) > 5, "the answer arrives in pieces"
    assert "".join(pieces) == streamed.text == plain.text
    assert "[7]" not in "".join(pieces), "an invented citation is never shown, not even for a moment"
    assert [c.title for c in streamed.citations] == [c.title for c in plain.citations]
    assert streamed.message_id is not None


def test_first_words_arrive_while_the_model_is_still_writing(make_llm_container, fake_llm):
    engine = make_llm_container().engine
    question = engine.accept(key("t-early"), "How do I set up the Slack app?")
    release = fake_llm.pause_next_stream(after=3)  # the model stops after three words until released

    stream = engine.answer_stream(question)
    first = next(stream)

    assert not release.is_set() and first == "Create"
    release.set()
    pieces, answer = drain(stream)
    assert first + "".join(pieces) == answer.text


def test_a_stream_that_breaks_midway_is_retried_without_doubling_the_text(make_llm_container, fake_llm):
    engine = make_llm_container(llm_max_retries=1).engine
    fake_llm.break_next_stream(after=4)

    pieces, answer = drain(engine.answer_stream(engine.accept(key("t-retry"), "How do I set up the Slack app?")))

    assert "".join(pieces) == answer.text
    assert answer.text.count("Create the app") == 1
    assert len(fake_llm.requests_to("/v1/chat/completions")) == 2


def test_a_stream_that_keeps_breaking_ends_in_the_apology_not_a_half_answer(make_llm_container, fake_llm, database):
    engine = make_llm_container(llm_max_retries=0).engine
    fake_llm.break_next_stream(after=4)
    question = engine.accept(key("t-broken"), "How do I set up the Slack app?")

    shown = []
    with pytest.raises(UpstreamUnavailable):
        for piece in engine.answer_stream(question):
            shown.append(piece)

    assert shown, "some words were shown before the break"
    with database.sessions() as session:
        replies = session.scalars(sa.select(Message).where(Message.reply_to_id == question)).all()
    assert [r.role for r in replies] == ["error"], "the question is settled by the apology, with no partial answer stored"


def test_without_a_model_the_extract_is_immediate(container, tmp_path):
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", DOCS))], collection="default")
    engine = container.engine

    pieces, answer = drain(engine.answer_stream(engine.accept(key("t-extract"), "How many questions can a user ask per minute?")))

    assert pieces == [], "nothing to wait for, so nothing is streamed"
    assert "ten questions per minute" in answer.text


def test_a_model_answer_already_stored_is_returned_without_asking_again(make_llm_container, fake_llm):
    engine = make_llm_container().engine
    question = engine.accept(key("t-again"), "How do I set up the Slack app?")
    _, first = drain(engine.answer_stream(question))
    calls = len(fake_llm.requests_to("/v1/chat/completions"))

    pieces, again = drain(engine.answer_stream(question))

    assert pieces == [] and again.text == first.text and again.message_id == first.message_id
    assert len(fake_llm.requests_to("/v1/chat/completions")) == calls


def test_the_stream_can_be_driven_one_step_per_thread_as_discord_does(make_llm_container):
    engine = make_llm_container().engine
    stream = engine.answer_stream(engine.accept(key("t-threads"), "How do I set up the Slack app?"))
    pieces: list[str] = []
    outcome: list[Answer] = []

    def step() -> None:
        try:
            pieces.append(next(stream))
        except StopIteration as done:
            outcome.append(done.value)

    while not outcome:
        worker = threading.Thread(target=step)  # a fresh thread, so a fresh context, every step
        worker.start()
        worker.join()

    assert "".join(pieces) == outcome[0].text and outcome[0].message_id is not None
