"""Slack threads that end well become learned answers, cited apart from the docs; private ones never.

The real Bolt app behind Flask, the fake Slack on 127.0.0.1, the embedded job worker: a 👍, a ✅
reaction or a "resolved" reply queues a learning job, which asks the fake Slack about the
channel and stores the document; the next question cites it as "answered in #channel on DATE".
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from core.ingest.learned import list_learned
from core.ingest.learned_jobs import EXPIRE_TASK
from core.tenancy.channels import set_learn_from_threads
from tests.slack.harness import CHANNEL, QUESTION, USER, block_text, feedback_value

PRIVATE = "C0PRIV0001"
FRESH = "which button gives me a fresh API key when mine leaked?"
OTHER_USER = "U0USER0002"


def ask(harness, question: str = QUESTION, *, channel: str = CHANNEL):
    """A mention answered in its thread; returns (the question's event, the answer message)."""
    event = harness.mention(question, channel=channel)
    harness.event(event)
    harness.settle()
    [answer] = harness.answers(channel, event["ts"])
    return event, answer


def react(harness, name: str, *, channel: str, ts: str, user: str = OTHER_USER, item_user: str | None = None):
    return harness.event({
        "type": "reaction_added", "user": user, "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": item_user or harness.slack.bot_user_id, "event_ts": f"{time.time():.6f}",
    })


def settle_learning(harness, timeout: float = 20) -> None:
    """Wait until no learning job is queued or running."""
    harness.settle()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with harness.container.database.engine.connect() as conn:
            pending = conn.execute(sa.text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'learned.learn_thread' "
                "AND status IN ('todo', 'doing')")).scalar_one()
        if pending == 0:
            return
        time.sleep(0.05)
    raise AssertionError("learning jobs still pending")


def learned(harness):
    return list_learned(harness.container.database.sessions)


def sources_of(message) -> str:
    return "\n".join(block_text({"blocks": [b]}) for b in message.get("blocks") or [] if b.get("type") == "context")


def test_a_thumbs_up_on_the_answer_is_learned_and_then_cited_apart_from_the_docs(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    harness.slack.add_user(OTHER_USER, name="ada", real_name="Ada Lovelace")
    event, answer = ask(harness, FRESH)

    response = harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"], user=OTHER_USER)
    assert response.status_code == 200
    harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"], user=OTHER_USER)  # again
    settle_learning(harness)

    [row] = learned(harness)  # one document, however often it is confirmed
    day = datetime.now(timezone.utc).date().isoformat()
    assert row.title.startswith(f"Answered in #support on {day}: {FRESH}")
    assert row.link == f"https://{harness.slack.team_id.lower()}.slack.com/archives/{CHANNEL}/p{event['ts'].replace('.', '')}"
    assert row.confirmed_by == "ada"
    assert row.expires_at > (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()

    _, later = ask(harness, FRESH)  # the next person asks in the same words
    shown = sources_of(later)
    assert f":speech_balloon: <{row.link}|answered in #support on {day}>" in shown
    assert "not the official docs" in shown
    _, official = ask(harness, "how do I ingest a folder?")
    assert "<https://docs.example.com/ingest.md" in sources_of(official)  # the documentation, cited as itself
    assert ":speech_balloon:" not in sources_of(official)


def test_a_check_mark_reaction_by_a_person_on_the_question_or_the_answer_is_learned(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    event, _ = ask(harness)
    react(harness, "white_check_mark", channel=CHANNEL, ts=event["ts"], item_user=USER)  # on the question
    settle_learning(harness)
    [row] = learned(harness)
    assert "#support" in row.title and row.link.endswith(event["ts"].replace(".", ""))

    second, answer = ask(harness, "how do I ingest a folder?")
    react(harness, "heavy_check_mark", channel=CHANNEL, ts=answer["ts"])  # on the answer
    settle_learning(harness)
    assert len(learned(harness)) == 2


def test_a_resolved_reply_in_the_thread_is_learned_and_not_answered_as_a_question(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    event, _ = ask(harness)
    reply = harness.user_message("Resolved!", thread_ts=event["ts"], user=OTHER_USER)
    harness.event(reply)
    settle_learning(harness)
    assert len(learned(harness)) == 1
    assert len(harness.answers(CHANNEL, event["ts"])) == 1  # "resolved" got no answer of its own
    [note] = harness.slack.ephemeral_messages()
    assert note["user"] == OTHER_USER and note["thread_ts"] == event["ts"] and "keep this answer" in note["text"]


def test_reactions_that_do_not_count_learn_nothing(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    event, answer = ask(harness)
    react(harness, "+1", channel=CHANNEL, ts=event["ts"], item_user=USER)  # a 👍 on the question is not on the answer
    react(harness, "eyes", channel=CHANNEL, ts=answer["ts"])
    react(harness, "white_check_mark", channel=CHANNEL, ts=answer["ts"], user=harness.slack.bot_user_id)  # the bot
    settle_learning(harness)
    assert learned(harness) == []


def test_a_thumbs_up_reaction_on_the_answer_is_learned(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    _, answer = ask(harness)
    react(harness, "+1::skin-tone-3", channel=CHANNEL, ts=answer["ts"])
    settle_learning(harness)
    assert len(learned(harness)) == 1


def test_a_private_channel_never_feeds_the_shared_collection(harness):
    harness.slack.add_channel(PRIVATE, name="secret-project", is_private=True)
    event, answer = ask(harness, channel=PRIVATE)
    harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"], channel=PRIVATE)
    react(harness, "white_check_mark", channel=PRIVATE, ts=event["ts"])
    settle_learning(harness)
    assert learned(harness) == []
    assert harness.slack.calls_to("conversations.info")  # it was asked, and said private
    [note] = harness.slack.ephemeral_messages()  # to the ✅ (a click is thanked by the feedback reply)
    assert "private conversations are never shared" in note["text"]


def test_a_channel_that_turned_learning_off_learns_nothing(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    with harness.container.database.sessions.begin() as session:
        set_learn_from_threads(session, "slack", harness.slack.team_id, CHANNEL, False)
    event, answer = ask(harness)
    harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"])
    react(harness, "white_check_mark", channel=CHANNEL, ts=event["ts"])
    settle_learning(harness)
    assert learned(harness) == []


def test_the_expiry_job_removes_expired_learned_answers(harness):
    harness.slack.add_channel(CHANNEL, name="support")
    _, answer = ask(harness)
    harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"])
    settle_learning(harness)
    [row] = learned(harness)
    with harness.container.database.engine.begin() as conn:  # as if confirmed long ago
        conn.execute(sa.text("UPDATE documents SET metadata = jsonb_set(metadata, '{learned,expires_at}', "
                             "to_jsonb(CAST(:past AS text))) WHERE id = :id"),
                     {"past": (datetime.now(timezone.utc) - timedelta(days=1)).isoformat(), "id": row.id})
    worker_app = harness.runtime.worker.app
    [periodic] = [p for p in worker_app.periodic_registry.periodic_tasks.values() if p.task.name == EXPIRE_TASK]
    assert periodic.cron == "43 * * * *"  # hourly, on every worker; procrastinate defers it once per period
    harness.runtime.jobs.configure_task(EXPIRE_TASK).defer(timestamp=int(time.time()))  # as the scheduler does
    deadline = time.monotonic() + 20
    while learned(harness) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert learned(harness) == []


def test_a_learned_answer_expires_after_the_configured_days(make_harness):
    harness = make_harness(learned_ttl_days=7)
    harness.slack.add_channel(CHANNEL, name="support")
    _, answer = ask(harness)
    harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"])
    settle_learning(harness)
    [row] = learned(harness)
    expected = (datetime.now(timezone.utc) + timedelta(days=7)).date().isoformat()
    assert row.expires_at[:10] == expected
