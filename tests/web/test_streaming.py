"""Streamed answers on the REST API: ``POST /api/v1/ask`` with ``"stream": true`` answers in server-sent events."""
from __future__ import annotations

import http.client
import json
import threading
from typing import Any, Iterator

import pytest
from werkzeug.serving import make_server

from tests.fakes.openai_server import FakeOpenAI

WRITTEN = "To rotate your key open Settings [1]. The old key works for 24 hours [1][4]. See also [9]."
QUESTION = "how do I rotate my API key?"


def parse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.chat_responder = lambda body: WRITTEN
        yield fake


@pytest.fixture
def llm_web(make_web, fake_llm):
    return make_web(llm="openai", openai_base_url=fake_llm.base_url, llm_max_retries=0, llm_timeout_s=2.0)


def test_the_last_event_is_the_same_answer_as_the_plain_call(llm_web):
    plain = llm_web.ask(QUESTION).get_json()

    response = llm_web.ask(QUESTION, stream=True)

    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = parse_events(response.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"delta"} and len(names) > 1
    final = events[-1][1]
    assert "".join(data["text"] for name, data in events[:-1]) == final["answer"] == plain["answer"]
    assert {k: v for k, v in final.items() if k != "session_id"} == {k: v for k, v in plain.items() if k != "session_id"}
    assert "[9]" not in final["answer"]


def test_a_streamed_follow_up_continues_the_conversation(llm_web):
    first = parse_events(llm_web.ask(QUESTION, stream=True).get_data(as_text=True))[-1][1]
    llm_web.ask("how long does the old one keep working?", stream=True, session_id=first["session_id"]).get_data()

    turns = llm_web.get(f"/api/v1/conversations/{first['session_id']}").get_json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]


def test_bad_requests_are_plain_json_errors_before_any_stream(llm_web):
    assert llm_web.ask("", stream=True).get_json()["error"]["code"] == "invalid_field"
    response = llm_web.ask(QUESTION, stream="yes")
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "stream"
    assert llm_web.ask(QUESTION, stream=True, collection="elsewhere").status_code == 404


def test_a_stream_that_breaks_midway_ends_with_an_error_event(llm_web, fake_llm):
    fake_llm.break_next_stream(after=4)

    events = parse_events(llm_web.ask(QUESTION, stream=True).get_data(as_text=True))

    assert events[0][0] == "delta", "the first words had been shown"
    name, data = events[-1]
    assert name == "error" and data["error"]["code"] == "upstream_unavailable" and data["error"]["reference"]
    assert "answer" not in [n for n, _ in events]


def test_a_client_that_leaves_mid_stream_still_gets_its_answer_stored(llm_web):
    response = llm_web.ask(QUESTION, stream=True, session_id="leaver")
    first = next(iter(response.response))
    response.close()  # what the server does when the client hangs up

    assert b"event: delta" in first
    turns = llm_web.get("/api/v1/conversations/leaver").get_json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["text"].startswith("To rotate your key")


def test_without_a_model_the_stream_is_just_the_answer(web):
    events = parse_events(web.ask(QUESTION, stream=True).get_data(as_text=True))
    assert [name for name, _ in events] == ["answer"]
    assert "Rotate" in events[0][1]["answer"]


def test_the_first_event_arrives_while_the_model_is_still_writing(llm_web, fake_llm):
    server = make_server("127.0.0.1", 0, llm_web.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    release = fake_llm.pause_next_stream(after=3)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        body = json.dumps({"question": QUESTION, "stream": True})
        conn.request("POST", "/api/v1/ask", body, {**llm_web.auth(), "Content-Type": "application/json"})
        response = conn.getresponse()
        first = b""
        while not first.endswith(b"\n\n"):
            first += response.read1(1)

        assert not release.is_set(), "the model is still held by the fake"
        assert parse_events(first.decode()) == [("delta", {"text": "To"})]
        release.set()
        rest = parse_events(response.read().decode())
        assert rest[-1][0] == "answer" and rest[-1][1]["answer"].startswith("To rotate your key")
    finally:
        release.set()
        server.shutdown()
