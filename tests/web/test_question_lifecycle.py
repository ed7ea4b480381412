"""The REST API and the playground on the question lifecycle: idempotency keys, durable answers.

A retried request with the same key never gets a second answer; a question whose web process
dies mid-answer (a real subprocess, SIGKILLed) is answered once by its durable job and fetched.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from bots.web import start_worker_if_embedded
from tests.fakes.openai_server import FakeOpenAI
from tests.web.conftest import COLLECTION, Web
from tests.web.test_streaming import parse_events

REPO = Path(__file__).resolve().parents[2]
WRITTEN = "To rotate your key open Settings [1]. The old key works for 24 hours [1]."
QUESTION = "how do I rotate my API key?"


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.chat_responder = lambda body: WRITTEN
        yield fake


@pytest.fixture
def llm_web(make_web, fake_llm) -> Web:
    return make_web(llm="openai", openai_base_url=fake_llm.base_url, llm_max_retries=0, llm_timeout_s=5.0)


def stored(web: Web, sql: str, **params: Any) -> Any:
    with web.container.database.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def answers_to(web: Web, question_id: int) -> int:
    return stored(web, "SELECT count(*) FROM messages WHERE reply_to_id = :q AND role = 'assistant'", q=question_id)


def chat_calls(fake: FakeOpenAI) -> int:
    return len(fake.requests_to("/v1/chat/completions"))


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


# -- idempotency ---------------------------------------------------------------------------------
def test_a_retried_post_with_the_same_idempotency_key_gets_the_same_answer_once(llm_web, fake_llm):
    headers = {**llm_web.auth(), "Idempotency-Key": "retry-1"}
    first = llm_web.client.post("/api/v1/ask", json={"question": QUESTION}, headers=headers)
    again = llm_web.client.post("/api/v1/ask", json={"question": QUESTION}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()  # the same session_id too, though none was sent
    question_id = int(first.headers["X-Question-Id"])
    assert int(again.headers["X-Question-Id"]) == question_id
    assert answers_to(llm_web, question_id) == 1 and chat_calls(fake_llm) == 1
    assert stored(llm_web, "SELECT count(*) FROM messages WHERE role = 'user'") == 1


def test_request_id_in_the_body_is_the_same_key_and_scoped_to_the_api_key(llm_web, fake_llm):
    first = llm_web.ask(QUESTION, request_id="r-7")
    again = llm_web.ask(QUESTION, request_id="r-7")
    other = llm_web.keys.create([COLLECTION], name="someone else")
    theirs = llm_web.post("/api/v1/ask", {"question": QUESTION, "request_id": "r-7"}, key=other.key)

    assert again.get_json() == first.get_json()
    assert theirs.status_code == 200 and theirs.headers["X-Question-Id"] != first.headers["X-Question-Id"]
    assert chat_calls(fake_llm) == 2  # one per API key, none for the retry


def test_the_same_key_for_another_question_is_refused(llm_web):
    llm_web.ask(QUESTION, request_id="r-8")
    reused = llm_web.ask("and how do I delete a document?", request_id="r-8")
    bad = llm_web.ask(QUESTION, request_id="not a key!")

    assert reused.status_code == 409 and reused.get_json()["error"]["code"] == "idempotency_key_reused"
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "request_id"


def test_a_streamed_retry_ends_with_the_same_answer_document(llm_web, fake_llm):
    headers = {**llm_web.auth(), "Idempotency-Key": "stream-1"}
    first = llm_web.client.post("/api/v1/ask", json={"question": QUESTION, "stream": True}, headers=headers)
    events = parse_events(first.get_data(as_text=True))
    again = parse_events(llm_web.client.post(
        "/api/v1/ask", json={"question": QUESTION, "stream": True}, headers=headers).get_data(as_text=True))
    plain = llm_web.client.post("/api/v1/ask", json={"question": QUESTION}, headers=headers).get_json()

    assert events[-1][0] == "answer" and {name for name, _ in events[:-1]} == {"delta"}
    assert again == [("answer", events[-1][1])] and plain == events[-1][1]
    assert answers_to(llm_web, int(first.headers["X-Question-Id"])) == 1 and chat_calls(fake_llm) == 1


def test_a_question_can_be_fetched_by_its_asker_only(llm_web):
    asked = llm_web.ask(QUESTION)
    question_id = asked.headers["X-Question-Id"]

    mine = llm_web.get(f"/api/v1/questions/{question_id}")
    other = llm_web.keys.create([COLLECTION], name="someone else")
    theirs = llm_web.get(f"/api/v1/questions/{question_id}", key=other.key)

    body = mine.get_json()["question"]
    assert mine.status_code == 200 and body["state"] == "answered" and body["question"] == QUESTION
    assert body["answer"] == asked.get_json() and body["error"] is None
    assert theirs.status_code == 404 and llm_web.get("/api/v1/questions/999999").status_code == 404


def test_answered_inline_the_held_job_is_gone_and_the_delivery_done(llm_web):
    question_id = int(llm_web.ask(QUESTION).headers["X-Question-Id"])

    assert stored(llm_web, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'questions.answer' "
                           "AND status IN ('todo', 'doing')") == 0
    assert stored(llm_web, "SELECT delivered_at IS NOT NULL FROM question_deliveries WHERE question_id = :q",
                  q=question_id)


def test_a_retry_of_a_question_whose_holder_died_is_answered_by_the_retry_once(llm_web, fake_llm):
    from adapters.web.api import session_key

    door = llm_web.container.waiting_door(llm_web.jobs)
    key = session_key(llm_web.keys.verify(llm_web.key.key), "died")
    accepted = door.accept(key, QUESTION, collection=COLLECTION, request=f"api:{llm_web.key.info.id}:died-1")
    # The process that accepted it died before answering: no renewals, so its lease runs out.
    with llm_web.container.database.engine.begin() as conn:
        conn.execute(sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = :j"),
                     {"j": accepted.job_id})

    retried = llm_web.ask(QUESTION, request_id="died-1")

    assert retried.status_code == 200 and "Settings" in retried.get_json()["answer"]
    assert retried.get_json()["session_id"] == "died"
    assert answers_to(llm_web, accepted.question_id) == 1 and chat_calls(fake_llm) == 1


# -- a web process killed mid-answer ------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_api(database_url: str, llm: FakeOpenAI, data_dir: Path, port: int) -> subprocess.Popen:
    """The real web process (bots.web.create_app), answers left to workers elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCRAG_", "SLACK_", "OPENAI_", "DISCORD_"))}
    env.update(DATABASE_URL=database_url, DOCRAG_DATA_DIR=str(data_dir), DOCRAG_LOG_LEVEL="WARNING",
               DOCRAG_LLM="openai", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test",
               DOCRAG_LLM_MAX_RETRIES="0", DOCRAG_DEFAULT_COLLECTION=COLLECTION)
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "_crash_child.py"), "web-only", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            return conn.getresponse().status == 200
        except OSError:
            return False

    wait_until(up, 60, "the web process starting")
    return proc


def test_a_web_process_killed_mid_answer_is_answered_once_by_the_durable_job(
    llm_web, fake_llm, database_url, tmp_path
):
    port = _free_port()
    proc = _serve_api(database_url, fake_llm, tmp_path / "child", port)
    held = fake_llm.hold_next(path="/v1/chat/completions")

    def ask_and_lose_the_reply() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"question": QUESTION, "request_id": "crash-1"})
        try:
            conn.request("POST", "/api/v1/ask", body, {**llm_web.auth(), "Content-Type": "application/json"})
            conn.getresponse().read()
        except OSError:
            pass  # the process died under it

    client = threading.Thread(target=ask_and_lose_the_reply, daemon=True)
    client.start()
    try:
        held.wait_holding()  # the web process is mid-answer, waiting on the language model
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        held.release()
    client.join(timeout=30)
    question_id = stored(llm_web, "SELECT question_id FROM question_deliveries WHERE request_key LIKE :k",
                         k="%:crash-1")

    meanwhile = llm_web.ask(QUESTION, request_id="crash-1")  # its lease has not run out yet
    assert meanwhile.status_code == 202
    assert meanwhile.headers["Location"] == f"/api/v1/questions/{question_id}"
    assert meanwhile.get_json()["question"]["state"] == "answering"

    lifecycle = llm_web.container.lifecycle(llm_web.jobs)
    worker = start_worker_if_embedded(llm_web.container, lifecycle, None, True)  # a live worker elsewhere
    try:
        fetched = wait_until(lambda: (lambda q: q if q["state"] == "answered" else None)(
            llm_web.get(f"/api/v1/questions/{question_id}").get_json()["question"]), 90, "the durable answer")
    finally:
        assert worker is not None
        worker.stop()

    retried = llm_web.ask(QUESTION, request_id="crash-1")
    assert retried.status_code == 200 and retried.get_json() == fetched["answer"]
    assert "Settings" in fetched["answer"]["answer"]
    assert answers_to(llm_web, question_id) == 1


# -- the playground ------------------------------------------------------------------------------------
def _form(page: str, name: str) -> str:
    import re

    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


def test_a_playground_form_sent_twice_is_one_question(llm_web, fake_llm):
    page = llm_web.client.get("/").get_data(as_text=True)
    form = {"question": QUESTION, "csrf_token": _form(page, "csrf_token"), "request_id": _form(page, "request_id")}

    first = llm_web.client.post("/ask", data=form)
    first.get_data()  # the streamed page, to its end
    again = llm_web.client.post("/ask", data=form)

    assert first.status_code == 200 and again.status_code == 303
    assert stored(llm_web, "SELECT count(*) FROM messages WHERE role = 'user'") == 1
    assert stored(llm_web, "SELECT count(*) FROM messages WHERE role = 'assistant'") == 1
    assert chat_calls(fake_llm) == 1
    assert _form(llm_web.client.get("/").get_data(as_text=True), "request_id") != form["request_id"]
