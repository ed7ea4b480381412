"""Answers streamed into Slack through the question lifecycle (issue 12): the real Flask app, Bolt
and slack_sdk against the fake Slack, a fake OpenAI that streams, the durable answer job."""
from __future__ import annotations

import time
from typing import Iterator

import pytest

from adapters.slack import delivery as slack_delivery
from adapters.slack.delivery import STREAMED
from core.types import SessionKey
from tests.fakes.openai_server import FakeOpenAI
from tests.slack.harness import CHANNEL, QUESTION, feedback_value

ANSWER = ("To rotate your API key, open Settings and choose Rotate [1]. The old key keeps working for "
          "24 hours, so deployments can switch over [1].\n\nRevoke it early from the same page [1].")


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.chat_responder = lambda _body: ANSWER
        yield fake


@pytest.fixture
def streaming(make_harness, llm):
    return make_harness(llm="openai", openai_base_url=llm.base_url, openai_api_key="sk-test", llm_max_retries=0)


def ask(harness) -> dict:
    """@DocRag QUESTION in the channel, sent as Slack sends it; the event."""
    event = harness.mention(QUESTION)
    assert harness.event(event).status_code == 200
    return event


def until(condition, what: str, timeout: float = 20.0) -> None:
    """Wait for something the system does by itself (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def stored_answer_text(harness, question_ts: str) -> str:
    [answer] = harness.answers(CHANNEL, question_ts)
    message_id = int(feedback_value(answer) or 0)
    stored = harness.container.engine.store
    with stored.sessions() as session:
        from core.storage.models import Message

        return session.get(Message, message_id).text


def test_first_words_show_while_the_model_is_still_writing_and_the_stop_completes_the_answer(streaming, llm):
    release = llm.pause_next_stream(after=4)  # the model stops after four pieces until released
    event = ask(streaming)
    until(lambda: streaming.slack.calls_to("chat.startStream", ok=True), "the stream to start")
    # The placeholder is deleted just after the stream's ts is stored: wait for that, not a race.
    until(lambda: len(streaming.bot_replies(CHANNEL, event["ts"])) == 1, "the placeholder to give way")

    [live] = streaming.bot_replies(CHANNEL, event["ts"])
    assert live["text"] and ANSWER.startswith(live["text"]), "the first words, before the model finished"
    assert streaming.slack.is_streaming(CHANNEL, live["ts"])
    start = streaming.slack.last_call("chat.startStream").params
    assert start["recipient_user_id"] == event["user"] and start["recipient_team_id"] == streaming.slack.team_id
    release.set()
    streaming.settle()

    [answer] = streaming.bot_replies(CHANNEL, event["ts"])
    assert answer["ts"] == live["ts"] and not streaming.slack.is_streaming(CHANNEL, answer["ts"])
    assert answer["text"] == stored_answer_text(streaming, event["ts"]), "the streamed text is the stored answer"
    kinds = [b["type"] for b in answer["blocks"]]
    assert kinds == ["context", "context_actions"], "sources, then Slack's feedback_buttons"
    assert "docs.example.com" in answer["blocks"][0]["elements"][1]["text"]
    assert answer["blocks"][1]["elements"][0]["type"] == "feedback_buttons"
    assert streaming.slack.calls_to("chat.update") == [], "no post-then-replace when streaming works"


def test_the_streamed_text_equals_the_answer_written_without_streaming(streaming):
    event = ask(streaming)
    streaming.settle()
    streamed = stored_answer_text(streaming, event["ts"])
    [message] = streaming.bot_replies(CHANNEL, event["ts"])

    engine = streaming.container.engine
    plain = engine.answer(engine.accept(SessionKey("cli", "t", "c", "other-thread", "u"), QUESTION))

    assert message["text"] == streamed == plain.text


def test_the_feedback_buttons_of_a_streamed_answer_record_the_vote(streaming):
    event = ask(streaming)
    streaming.settle()
    [answer] = streaming.bot_replies(CHANNEL, event["ts"])
    buttons = answer["blocks"][1]["elements"][0]

    response = streaming.click(buttons["action_id"], buttons["negative_button"]["value"], message_ts=answer["ts"])

    assert response.status_code == 200
    from core.storage.models import Feedback

    with streaming.container.database.sessions() as session:
        [vote] = session.query(Feedback).all()
    assert (vote.message_id, vote.score) == (int(feedback_value(answer) or 0), -1)


@pytest.mark.parametrize("error", ["not_allowed_token_type", "unknown_method", "method_not_supported_for_channel_type"])
def test_where_slack_refuses_to_stream_the_answer_replaces_the_placeholder_as_today(streaming, error):
    streaming.slack.fail_next("chat.startStream", status=200, error=error)
    event = ask(streaming)
    streaming.settle()

    [answer] = streaming.bot_replies(CHANNEL, event["ts"])
    assert len(streaming.slack.calls_to("chat.startStream")) == 1
    assert streaming.slack.calls_to("chat.appendStream") == [] and streaming.slack.calls_to("chat.stopStream") == []
    assert answer["ts"] == streaming.slack.calls_to("chat.postMessage")[0].response["ts"], "the placeholder"
    assert answer["blocks"][-1]["type"] == "actions" and "24 hours" in answer["text"]
    assert answer["text"].count("24 hours") == 1


def test_a_stream_stopped_on_slacks_side_is_replaced_by_the_whole_answer_once(streaming, llm):
    release = llm.pause_next_stream(after=3)
    event = ask(streaming)
    until(lambda: streaming.slack.calls_to("chat.startStream", ok=True), "the stream to start")
    ts = streaming.slack.last_call("chat.startStream").response["ts"]
    streaming.slack.end_stream(CHANNEL, ts)  # Slack ended it (expired)
    release.set()
    streaming.settle()

    [answer] = streaming.bot_replies(CHANNEL, event["ts"])
    assert answer["ts"] == ts and answer["text"].count("24 hours") == 1, "no lost or doubled text"
    assert feedback_value(answer) is not None


def test_a_model_failure_mid_stream_leaves_the_apology_in_place_of_the_partial_answer(streaming, llm):
    llm.break_next_stream(after=3)
    event = ask(streaming)
    streaming.settle()

    [reply] = streaming.bot_replies(CHANNEL, event["ts"])
    assert "Sorry, I couldn't answer this" in reply["text"] and "rotate" not in reply["text"].lower()
    assert not streaming.slack.is_streaming(CHANNEL, reply["ts"])


class Crash(BaseException):
    """The process dies (no exception handler runs, as with SIGKILL)."""


def test_a_crash_mid_stream_ends_with_one_complete_answer_in_place_of_the_partial_one(make_harness, llm, monkeypatch):
    harness = make_harness(start_worker=False, llm="openai", openai_base_url=llm.base_url,
                           openai_api_key="sk-test", llm_max_retries=0)
    event = ask(harness)
    harness.runtime.slack.after_ack.wait_idle(20)
    [question_id] = _undelivered(harness)
    pieces = {"n": 0}
    real_add = slack_delivery.SlackLive.add

    def dying_add(self, piece: str) -> None:
        real_add(self, piece)
        pieces["n"] += 1
        if pieces["n"] == 5:
            raise Crash()

    monkeypatch.setattr(slack_delivery.SlackLive, "add", dying_add)
    with pytest.raises(Crash):
        harness.runtime.lifecycle.run(question_id)
    [partial] = harness.bot_replies(CHANNEL, event["ts"])
    assert harness.slack.is_streaming(CHANNEL, partial["ts"]) and "Revoke" not in partial["text"]
    assert harness.container.engine.store.delivery(question_id).placeholder == STREAMED + partial["ts"]

    monkeypatch.setattr(slack_delivery.SlackLive, "add", real_add)
    harness.runtime.lifecycle.run(question_id)  # the job, put back by a live worker

    [answer] = harness.bot_replies(CHANNEL, event["ts"])
    assert answer["ts"] == partial["ts"], "the partial streamed message became the answer"
    assert answer["text"].count("Revoke") == 1 and feedback_value(answer) is not None
    assert not harness.slack.is_streaming(CHANNEL, answer["ts"])
    assert len(harness.slack.calls_to("chat.startStream")) == 1, "the recovery did not stream a second copy"


def test_without_a_model_the_extract_is_posted_at_once_without_streaming(harness):
    event = ask(harness)
    harness.settle()

    [answer] = harness.bot_replies(CHANNEL, event["ts"])
    assert harness.slack.calls_to("chat.startStream") == []
    assert answer["ts"] == harness.slack.calls_to("chat.postMessage")[0].response["ts"]


def _undelivered(harness) -> list[int]:
    import sqlalchemy as sa

    with harness.container.database.engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT question_id FROM question_deliveries WHERE delivered_at IS NULL")).scalars())


