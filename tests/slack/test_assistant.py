"""Slack's AI-app container, driven through the real slack-bolt/slack_sdk against the fake Slack:
suggested prompts from the collection, the status line, one answer, follow-ups in context."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from adapters.slack.assistant_status import SEARCHING, WRITING
from adapters.slack.assistant_threads import TITLE_MAX, thread_title
from adapters.slack.render import PLACEHOLDER
from core.storage.models import Document
from core.types import SessionKey
from tests.slack.harness import DM, QUESTION, USER, block_text

REPO = Path(__file__).resolve().parents[2]
OTHER_CHANNEL = "C0CHAN0001"


def test_manifest_declares_the_assistant_container():
    from adapters.slack.app import BOT_SCOPES

    manifest = yaml.safe_load((REPO / "slack-manifest.yml").read_text())
    view = manifest["features"]["assistant_view"]
    assert view["assistant_description"].strip()
    assert len(view.get("suggested_prompts") or []) <= 4
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert {"assistant:write", "chat:write", "im:history"} <= set(scopes)
    assert sorted(scopes) == sorted(BOT_SCOPES)
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])


def _start_thread(harness) -> str:
    started = harness.slack.start_assistant_thread(DM, user=USER, context_channel=OTHER_CHANNEL)
    assert harness.event(started).status_code == 200
    harness.settle()
    return started["assistant_thread"]["thread_ts"]


def _statuses(harness, thread_ts: str) -> list[str]:
    return [c.params["status"] for c in harness.slack.calls_to("assistant.threads.setStatus")
            if c.params.get("thread_ts") == thread_ts]


def test_a_new_thread_suggests_prompts_from_the_collections_documents(harness):
    thread_ts = _start_thread(harness)

    prompts = harness.slack.assistant_thread(DM, thread_ts).prompts
    assert 3 <= len(prompts) <= 4
    with harness.container.database.sessions() as session:
        titles = set(session.scalars(sa.select(Document.title)))
    for prompt in prompts:
        assert prompt["title"] in titles, prompt  # each one is about a document of the collection
        assert prompt["title"] in prompt["message"]
    assert not harness.slack.posted_messages(DM), "the prompts are offered, nothing is posted"


def _ask(harness, thread_ts: str, text: str) -> None:
    """A person asks ``text`` in the container thread, and everything it queues runs."""
    harness.event(harness.user_message(text, channel=DM, thread_ts=thread_ts))
    harness.settle()


def test_a_question_shows_searching_then_writing_and_is_answered_once(harness):
    thread_ts = _start_thread(harness)
    question = harness.user_message(QUESTION, channel=DM, thread_ts=thread_ts)
    harness.event(question, event_id="EvAssist0001")
    harness.event(question, event_id="EvAssist0001", retry_num=1)  # Slack's retry of the same delivery
    harness.settle()

    assert _statuses(harness, thread_ts) == [SEARCHING, WRITING, ""]  # set, then cleared when it landed
    assert harness.slack.assistant_thread(DM, thread_ts).status == ""
    [answer] = harness.answers(DM, thread_ts)
    assert "Rotate" in block_text(answer)
    replies = harness.bot_replies(DM, thread_ts)
    assert replies == [answer], "no placeholder: the status line says what is happening"


def test_a_follow_up_in_the_thread_is_answered_in_its_context(harness):
    thread_ts = _start_thread(harness)
    _ask(harness, thread_ts, QUESTION)
    _ask(harness, thread_ts, "and how long does the old one keep working?")

    answers = harness.answers(DM, thread_ts)
    assert len(answers) == 2
    assert "24 hours" in block_text(answers[1])  # the follow-up searched with the thread's topic
    assert _statuses(harness, thread_ts) == [SEARCHING, WRITING, ""] * 2


def test_a_changed_context_is_acknowledged_without_calling_slack(harness):
    thread_ts = _start_thread(harness)
    harness.slack.clear_calls()
    changed = harness.slack.assistant_context_changed(DM, thread_ts, user=USER, context_channel="C0OTHER002")
    assert harness.event(changed).status_code == 200
    harness.settle()
    assert harness.slack.calls == []
    assert harness.answer_jobs() == 0


def test_a_refused_status_does_not_cost_the_answer(harness):
    thread_ts = _start_thread(harness)
    harness.slack.fail_next("assistant.threads.setStatus", 3, status=200, error="channel_not_found")
    _ask(harness, thread_ts, QUESTION)
    assert len(harness.answers(DM, thread_ts)) == 1


LONG_QUESTION = QUESTION + " And what happens to requests that still use the old key meanwhile?"


def _titles(harness, thread_ts: str) -> list[str]:
    return [c.params["title"] for c in harness.slack.calls_to("assistant.threads.setTitle")
            if c.params.get("thread_ts") == thread_ts]


def test_the_first_question_titles_the_thread_once_cut_at_a_word(harness):
    thread_ts = _start_thread(harness)
    _ask(harness, thread_ts, LONG_QUESTION)
    _ask(harness, thread_ts, "and how long does the old one keep working?")

    [title] = _titles(harness, thread_ts)  # once per thread: the follow-up does not rename it
    assert harness.slack.assistant_thread(DM, thread_ts).title == title
    assert len(title) <= TITLE_MAX and title.endswith("…") and title.startswith(QUESTION)
    assert LONG_QUESTION.startswith(title[:-1]) and LONG_QUESTION[len(title) - 1] == " ", "cut between words"
    assert len(harness.answers(DM, thread_ts)) == 2


def test_a_refused_title_does_not_cost_the_answer(harness):
    thread_ts = _start_thread(harness)
    harness.slack.fail_next("assistant.threads.setTitle", 1, status=200, error="invalid_thread_ts")
    _ask(harness, thread_ts, QUESTION)
    assert len(harness.answers(DM, thread_ts)) == 1
    assert _statuses(harness, thread_ts) == [SEARCHING, WRITING, ""]


def test_thread_titles_are_short_single_lines_without_mentions():
    assert thread_title("  how do I\n rotate   my key? ") == "how do I rotate my key?"
    assert thread_title("<@U0BOT0001> how do I rotate my key?") == "how do I rotate my key?"
    assert thread_title("word " * 30) == "word " * 11 + "word…"  # 60 characters, cut between words
    assert thread_title("abcdefg " * 30) == "abcdefg " * 6 + "abcdefg…"  # not inside a word
    assert thread_title("x" * 100) == "x" * (TITLE_MAX - 1) + "…"  # one giant word has to be cut


def test_a_reply_in_an_ordinary_dm_thread_gets_the_placeholder_not_the_status_line(harness):
    """bolt's Assistant passes every threaded DM reply to ``user_message``; a thread Slack did not
    open in the container (no assistant_thread_started) is an ordinary DM thread."""
    first = harness.user_message(QUESTION, channel=DM)
    harness.event(first)
    harness.settle()
    harness.slack.clear_calls()
    harness.event(harness.user_message("and how long does the old one keep working?", channel=DM,
                                       thread_ts=first["ts"]))
    harness.settle()

    assert harness.slack.calls_to("assistant.threads.setStatus") == []
    assert harness.slack.calls_to("assistant.threads.setTitle") == []
    placeholders = [c for c in harness.slack.calls_to("chat.postMessage") if PLACEHOLDER in str(c.params.get("text"))]
    assert len(placeholders) == 1, "the follow-up showed the usual placeholder"
    answers = harness.answers(DM, first["ts"])
    assert len(answers) == 2 and "24 hours" in block_text(answers[1])
    assert harness.bot_replies(DM, first["ts"]) == answers, "each placeholder became its answer"


def test_a_container_thread_whose_start_was_missed_is_known_by_its_root_message(harness):
    """The root of a thread opened in the container has the subtype assistant_app_thread."""
    started = harness.slack.start_assistant_thread(DM, user=USER)  # the event never reached DocRag
    thread_ts = started["assistant_thread"]["thread_ts"]
    _ask(harness, thread_ts, QUESTION)
    _ask(harness, thread_ts, "and how long does the old one keep working?")

    assert _statuses(harness, thread_ts) == [SEARCHING, WRITING, ""] * 2
    root_looks = [c for c in harness.slack.calls_to("conversations.replies") if str(c.params.get("limit")) == "1"]
    assert len(root_looks) == 1, "the root was read once, then the thread remembered"
    assert len(_titles(harness, thread_ts)) == 1 and len(harness.answers(DM, thread_ts)) == 2


def test_fake_slack_refuses_what_slack_refuses(slack):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=slack.token, base_url=slack.api_url)
    started = slack.start_assistant_thread(DM)
    ts = started["assistant_thread"]["thread_ts"]
    too_many = [{"title": f"t{i}", "message": f"m{i}"} for i in range(5)]
    for call, error in [
        (lambda: client.assistant_threads_setSuggestedPrompts(channel_id=DM, thread_ts=ts, prompts=too_many),
         "invalid_arguments"),
        (lambda: client.assistant_threads_setStatus(channel_id=DM, thread_ts="1.000001", status="x"),
         "invalid_thread_ts"),
        (lambda: client.assistant_threads_setTitle(channel_id=DM, thread_ts=ts, title=""), "invalid_arguments"),
    ]:
        try:
            call()
        except SlackApiError as exc:
            assert exc.response["error"] == error
        else:
            raise AssertionError(f"expected {error}")
    client.assistant_threads_setStatus(channel_id=DM, thread_ts=ts, status="is thinking…")
    client.chat_postMessage(channel=DM, thread_ts=ts, text="the reply")
    assert slack.assistant_thread(DM, ts).statuses == ["is thinking…", ""]  # the reply cleared it


# -- streamed answers in the container (issue 12) ----------------------------------------------------

@pytest.fixture
def llm():
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as fake:
        fake.chat_responder = lambda _body: STREAMED_ANSWER
        yield fake


@pytest.fixture
def streaming(make_harness, llm):
    return make_harness(llm="openai", openai_base_url=llm.base_url, openai_api_key="sk-test", llm_max_retries=0)


STREAMED_ANSWER = ("To rotate your API key, open Settings and choose Rotate [1]. The old key keeps working for "
                   "24 hours, so deployments can switch over [1].")


def _ask_in_container(harness) -> str:
    thread_ts = _start_thread(harness)
    assert harness.event(harness.user_message(QUESTION, channel=DM, thread_ts=thread_ts)).status_code == 200
    return thread_ts


def test_a_container_answer_streams_its_first_words_then_ends_as_one_complete_answer(streaming, llm):
    from tests.slack.test_streamed_answers import until

    release = llm.pause_next_stream(after=4)  # the model stops after four pieces until released
    thread_ts = _ask_in_container(streaming)
    until(lambda: streaming.bot_replies(DM, thread_ts), "the stream to start")

    [live] = streaming.bot_replies(DM, thread_ts)
    assert live["text"] and STREAMED_ANSWER.startswith(live["text"]) and live["text"] != STREAMED_ANSWER
    assert streaming.slack.is_streaming(DM, live["ts"]), "the first words, before the model finished"
    start = streaming.slack.last_call("chat.startStream").params
    assert (start["channel"], start["thread_ts"]) == (DM, thread_ts)
    assert start["recipient_user_id"] == USER and start["recipient_team_id"] == streaming.slack.team_id
    release.set()
    streaming.settle()

    [answer] = streaming.bot_replies(DM, thread_ts)
    assert answer["ts"] == live["ts"] and not streaming.slack.is_streaming(DM, answer["ts"])
    engine = streaming.container.engine
    plain = engine.answer(engine.accept(SessionKey("cli", "t", "c", "other-thread", "u"), QUESTION))
    assert answer["text"] == plain.text, "the streamed answer is the one written without streaming"
    kinds = [b["type"] for b in answer["blocks"]]
    assert kinds == ["context", "context_actions"], "sources, then Slack's feedback_buttons, at stopStream"
    assert answer["blocks"][1]["elements"][0]["type"] == "feedback_buttons"
    assert not any(PLACEHOLDER in (m.get("text") or "") for m in streaming.slack.posted_messages(DM))
    assert streaming.slack.calls_to("chat.postMessage") == [], "the stream is the answer: no placeholder"
    assert _statuses(streaming, thread_ts)[:2] == [SEARCHING, WRITING]
    assert streaming.slack.assistant_thread(DM, thread_ts).status == "", "the stream replaced the status"


def test_a_refused_container_stream_posts_the_answer_once(streaming):
    streaming.slack.fail_next("chat.startStream", status=200, error="method_not_supported_for_channel_type")
    thread_ts = _ask_in_container(streaming)
    streaming.settle()

    assert len(streaming.slack.calls_to("chat.startStream")) == 1
    [answer] = streaming.bot_replies(DM, thread_ts)
    assert answer["text"].count("24 hours") == 1 and answer["blocks"][-1]["type"] == "actions"
    assert len(streaming.slack.calls_to("chat.postMessage")) == 1, "posted once, no placeholder first"
    assert _statuses(streaming, thread_ts) == [SEARCHING, WRITING, ""]


def test_the_status_port_states_open_stream_itself_as_python_3_12_isinstance_requires():
    """From 3.12, isinstance on a runtime_checkable Protocol looks with inspect.getattr_static, which
    never calls __getattr__: a forwarded open_stream would silently turn streaming off in the container."""
    import inspect

    from adapters.slack.assistant_status import AssistantStatusDelivery

    assert callable(inspect.getattr_static(AssistantStatusDelivery, "open_stream", None))
