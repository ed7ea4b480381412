"""Exactly one answer per question, nothing from forged requests, and errors that speak."""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from adapters.slack.delivery import where_of
from adapters.slack.events import SlackQuestion
from bots.web import start_worker_if_embedded
from core.questions.lifecycle import ANSWER_TASK
from core.storage.models import Feedback, Message
from core.types import SessionKey
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_signing import event_body, signed_headers, slash_command_body
from tests.slack.harness import (
    CHANNEL,
    DM,
    QUESTION,
    SECRET,
    USER,
    assert_within_slack_limits,
    block_text,
    feedback_value,
)

APP_ROWS = ("processed_events", "messages", "conversations", "rate_limits", "feedback")


def row_counts(harness) -> dict[str, int]:
    """Rows a request could have written (periodic housekeeping jobs are not a request's doing)."""
    with harness.container.database.engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in APP_ROWS}
    return {**counts, "answer_jobs": harness.answer_jobs(), "intake_jobs": harness.intake_jobs()}


# -- de-duplication -----------------------------------------------------------------------------------
def test_a_slack_retry_of_the_same_event_is_answered_once(harness):
    event = harness.mention(QUESTION)
    harness.event(event, event_id="EvRETRY1")
    response = harness.event(event, event_id="EvRETRY1", retry_num=1)
    assert response.status_code == 200  # acknowledged, so Slack stops retrying
    harness.event(event, event_id="EvRETRY1", retry_num=2)
    harness.settle()
    assert len(harness.answers(CHANNEL, event["ts"])) == 1
    assert len(harness.bot_replies(CHANNEL, event["ts"])) == 1  # no second placeholder either
    assert harness.answer_jobs() == 1
    assert harness.intake_jobs() == 0  # the backstop was dropped once the delivery was taken in hand


def test_a_mention_delivered_as_app_mention_and_as_message_is_answered_once(harness):
    mention = harness.mention(QUESTION)
    as_message = {**mention, "type": "message", "channel_type": "channel"}
    harness.event(as_message, event_id="EvMSG0001")
    harness.event(mention, event_id="EvMENTION1")
    harness.settle()
    assert len(harness.answers(CHANNEL, mention["ts"])) == 1
    assert harness.answer_jobs() == 1


def test_an_answer_job_that_runs_twice_posts_once(harness):
    event = harness.mention(QUESTION)
    harness.event(event)
    harness.settle()
    job = _answer_job_args(harness)
    harness.runtime.jobs.configure_task(ANSWER_TASK, queue="answers").defer(**job)  # e.g. a retry after a crash
    harness.runtime.jobs.configure_task(ANSWER_TASK, queue="answers").defer(**job)
    harness.settle()
    assert harness.answer_jobs() == 3
    assert len(harness.answers(CHANNEL, event["ts"])) == 1
    assert len(harness.slack.calls_to("chat.update")) == 1  # delivered once: the replays find it done
    assert len(harness.slack.calls_to("chat.postMessage")) == 1  # the placeholder, and nothing else


def _answer_job_args(harness) -> dict:
    with harness.container.database.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT args FROM procrastinate_jobs WHERE task_name = :name"), {"name": ANSWER_TASK}).scalar_one()


def test_bot_messages_own_messages_edits_and_deletions_are_ignored(harness):
    bot = harness.slack.bot_user_id
    ignored = [
        harness.user_message(QUESTION, channel=DM, bot_id="B0OTHER001", subtype="bot_message"),
        harness.user_message(QUESTION, channel=DM, user=bot, bot_id=harness.slack.bot_id),
        harness.user_message(QUESTION, channel=DM, bot_id="B0OTHER002"),  # a bot without subtype
        {"type": "message", "subtype": "message_changed", "channel": DM, "channel_type": "im", "ts": "1.5",
         "hidden": True, "message": {"type": "message", "user": USER, "text": QUESTION, "ts": "1.4"}},
        {"type": "message", "subtype": "message_deleted", "channel": DM, "channel_type": "im", "ts": "1.6",
         "hidden": True, "deleted_ts": "1.4"},
        harness.user_message(QUESTION, channel=DM, edited={"user": USER, "ts": "1.7"}),
        harness.user_message(QUESTION, channel=DM, subtype="channel_join"),
        {"type": "reaction_added", "user": USER, "reaction": "eyes", "item": {"type": "message", "channel": DM}},
    ]
    for event in ignored:
        assert harness.event(event).status_code == 200  # acknowledged, never retried
    harness.settle()
    assert harness.slack.calls == []
    assert row_counts(harness)["messages"] == 0 and harness.intake_jobs() == 0


# -- signatures ---------------------------------------------------------------------------------------
def test_forged_signature_is_refused_with_401_and_changes_nothing(harness):
    body = event_body(harness.mention(QUESTION), team_id=harness.slack.team_id, event_id="EvFORGED1")
    headers = signed_headers("not-the-secret", body)
    response = harness.client.post("/slack/events", data=body, headers=headers)
    assert response.status_code == 401
    command = slash_command_body(QUESTION, team_id=harness.slack.team_id, channel_id=CHANNEL, user_id=USER,
                                 response_url=harness.slack.response_url("x"))
    forged = harness.client.post("/slack/events", data=command, headers=signed_headers("wrong", command))
    assert forged.status_code == 401
    harness.settle()
    assert harness.slack.calls == []
    assert not any(row_counts(harness).values())


def test_stale_timestamp_is_refused_with_401_and_changes_nothing(harness):
    body = event_body(harness.mention(QUESTION), team_id=harness.slack.team_id, event_id="EvSTALE01")
    response = harness.send(body, timestamp=int(time.time()) - 600)  # correctly signed, 10 minutes old
    assert response.status_code == 401
    harness.settle()
    assert harness.slack.calls == []
    assert not any(row_counts(harness).values())


# -- Slack and LLM failures -------------------------------------------------------------------------
def test_slack_rate_limit_429_is_waited_out_and_the_answer_arrives(harness):
    harness.slack.fail_next("chat.update", status=429, retry_after=0)
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=0)
    event = harness.mention(QUESTION)
    harness.event(event)
    harness.settle()
    assert [c.status for c in harness.slack.calls_to("chat.postMessage")] == [429, 200]
    assert [c.status for c in harness.slack.calls_to("chat.update")] == [429, 200]
    [answer] = harness.answers(CHANNEL, event["ts"])
    assert_within_slack_limits(answer)


def test_llm_failure_gets_an_apology_with_a_reference(make_harness):
    with FakeOpenAI() as llm:
        harness = make_harness(llm="openai", openai_base_url=llm.base_url, openai_api_key="test", llm_max_retries=0)
        llm.fail_next(1, status=500)
        event = harness.mention(QUESTION)
        harness.event(event)
        harness.settle()
    [reply] = harness.bot_replies(CHANNEL, event["ts"])
    text = block_text(reply)
    assert "Sorry" in text and "reference" in text
    with harness.container.database.engine.connect() as conn:
        stored = conn.execute(sa.select(Message.text).where(Message.role == "error")).scalar_one()
    reference = text.rsplit("reference: ", 1)[1].strip()
    assert reference in stored  # the id the user quotes is the one operators find
    assert_within_slack_limits(reply)


def test_over_long_question_gets_a_helpful_reply(harness):
    long_question = "how do I rotate my API key " + "please " * 400
    response = harness.command(long_question)
    assert "limit is 2000" in response.get_data(as_text=True)  # /ask: told at once, privately

    harness.event(harness.mention(long_question))
    harness.settle()
    [notice] = harness.slack.ephemeral_messages()
    assert "limit is 2000" in notice["text"] and notice["user"] == USER
    assert harness.answer_jobs() == 0


def test_rate_limited_user_is_told_when_to_ask_again(make_harness):
    harness = make_harness(rate_user_per_min=1)
    harness.event(harness.user_message(QUESTION, channel=DM))
    harness.settle()  # answered before the next arrives: two at once may be admitted in either order
    second = harness.user_message("how do I ingest a folder?", channel=DM)
    harness.event(second)
    harness.settle()
    [notice] = harness.bot_replies(DM, second["ts"])
    assert "ask again in" in notice["text"]
    assert harness.answer_jobs() == 1


def test_a_question_whose_job_was_lost_is_answered_by_the_sweep_in_its_placeholder(make_harness):
    harness = make_harness(start_worker=False)
    event = harness.user_message(QUESTION, channel=DM)
    question = SlackQuestion(team_id=harness.slack.team_id, channel=DM, user=USER, text=QUESTION, ts=event["ts"],
                             thread_ts=event["ts"], is_dm=True)
    lifecycle = harness.runtime.lifecycle
    # Accepted and its placeholder shown, then the process died before queueing the job.
    question_id = harness.container.engine.accept(question.key, QUESTION, where=where_of(question))
    lifecycle._show_placeholder(question_id, where_of(question))
    with harness.container.database.sessions.begin() as session:
        session.execute(sa.text("UPDATE question_deliveries SET created_at = now() - interval '1 minute'"))
    assert lifecycle.requeue_lost() == 1
    assert lifecycle.requeue_lost() == 0  # its job is queued now
    harness.runtime.worker = start_worker_if_embedded(harness.container, lifecycle, harness.runtime.slack, True)
    harness.settle()
    [answer] = harness.bot_replies(DM, event["ts"])
    assert feedback_value(answer) is not None  # the placeholder became the answer
    assert len(harness.slack.calls_to("chat.postMessage")) == 1  # the placeholder only: no second message


# -- feedback -----------------------------------------------------------------------------------------
def test_feedback_click_is_stored_and_acknowledged_visibly(harness):
    event = harness.mention(QUESTION)
    harness.event(event)
    harness.settle()
    [answer] = harness.answers(CHANNEL, event["ts"])
    response = harness.click("docrag_feedback_down", feedback_value(answer), message_ts=answer["ts"])
    assert response.status_code == 200
    harness.click("docrag_feedback_up", feedback_value(answer), message_ts=answer["ts"])  # changed their mind
    harness.settle()
    with harness.container.database.sessions() as session:
        [row] = session.scalars(sa.select(Feedback)).all()
    assert (row.message_id, row.user_id, row.score, row.platform) == (int(feedback_value(answer)), USER, 1, "slack")
    acknowledgements = harness.slack.responses("click")
    assert len(acknowledgements) == 2
    assert acknowledgements[-1]["response_type"] == "ephemeral" and "👍" in acknowledgements[-1]["text"]


def test_feedback_on_a_deleted_answer_says_so(harness):
    harness.click("docrag_feedback_up", "999999", message_ts="1.1")
    harness.settle()
    [ack] = harness.slack.responses("click")
    assert "no longer exists" in ack["text"]


def test_simultaneous_double_deliveries_from_parallel_requests_are_answered_once(harness):
    """Both deliveries race through separate threads (as through separate web processes)."""
    pairs = []
    for n in range(8):
        mention = harness.mention(f"{QUESTION} ({n})")
        pairs.append((mention, {**mention, "type": "message", "channel_type": "channel"}))
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda e: harness.app.test_client().post(
            "/slack/events", data=(body := event_body(e, team_id=harness.slack.team_id, event_id=f"Ev{id(e)}")),
            headers=signed_headers(SECRET, body)).status_code, [e for pair in pairs for e in pair]))
    assert statuses == [200] * 16
    harness.settle()
    for mention, _ in pairs:
        assert len(harness.answers(CHANNEL, mention["ts"])) == 1
    assert harness.answer_jobs() == 8


def test_ask_where_docrag_cannot_post_says_how_to_fix_it(harness):
    harness.slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    harness.command(QUESTION, channel="D0OTHERS01")  # e.g. a DM between two other people
    harness.settle()
    [response] = harness.slack.responses("cmd")
    assert "/invite @DocRag" in response["text"] and response["response_type"] == "ephemeral"
    assert harness.answer_jobs() == 0


def test_rate_limited_ask_removes_its_question_post_and_tells_the_asker(make_harness):
    harness = make_harness(rate_user_per_min=1)
    harness.command(QUESTION)
    harness.command("how do I ingest a folder?")
    harness.settle()
    [response] = harness.slack.responses("cmd")
    assert "ask again in" in response["text"] and response["response_type"] == "ephemeral"
    assert len(harness.slack.calls_to("chat.delete")) == 1
    top_level = [m for m in harness.slack.messages(CHANNEL) if "thread_ts" not in m]
    assert len(top_level) == 1  # only the answered question stays in the channel


def test_a_delivery_the_web_process_dropped_after_the_ack_is_answered_by_the_backstop(harness, monkeypatch):
    monkeypatch.setattr("adapters.slack.queue.INTAKE_BACKSTOP_S", 0)  # instead of 30 s
    after_ack = harness.runtime.slack.after_ack
    real_submit = after_ack.submit

    def crash_before_taking_it(work, *args, **kwargs):  # the process died right after acknowledging
        if getattr(work, "__name__", "") != "take_in_hand":
            real_submit(work, *args, **kwargs)

    monkeypatch.setattr(after_ack, "submit", crash_before_taking_it)
    mention = harness.mention(QUESTION)
    assert harness.event(mention).status_code == 200
    assert harness.command("how do I ingest a folder?").status_code == 200
    harness.settle()
    assert len(harness.answers(CHANNEL, mention["ts"])) == 1
    question_post = next(m for m in harness.slack.messages(CHANNEL) if "asked:" in m["text"])
    assert len(harness.answers(CHANNEL, question_post["ts"])) == 1


def test_the_backstop_does_nothing_when_the_web_process_took_the_delivery(harness, monkeypatch):
    monkeypatch.setattr("adapters.slack.queue.INTAKE_BACKSTOP_S", 0)  # both race for it
    mentions = [harness.mention(f"{QUESTION} ({n})") for n in range(5)]
    for mention in mentions:
        harness.event(mention)
    harness.settle()
    for mention in mentions:
        assert len(harness.answers(CHANNEL, mention["ts"])) == 1
        assert len(harness.bot_replies(CHANNEL, mention["ts"])) == 1


def test_retries_used_up_turn_the_placeholder_into_an_apology_with_a_reference(make_harness):
    harness = make_harness(start_worker=False)
    event = harness.mention(QUESTION)
    harness.event(event)
    harness.runtime.slack.after_ack.wait_idle()
    [placeholder] = harness.bot_replies(CHANNEL, event["ts"])
    with harness.container.database.sessions.begin() as session:  # every earlier run died mid-answer
        session.execute(sa.text("UPDATE question_deliveries SET attempts = :n"),
                        {"n": harness.runtime.lifecycle.options.max_attempts})
    harness.runtime.worker = start_worker_if_embedded(harness.container, harness.runtime.lifecycle,
                                                      harness.runtime.slack, True)
    harness.settle()
    [reply] = harness.bot_replies(CHANNEL, event["ts"])
    assert reply["ts"] == placeholder["ts"]  # the placeholder itself, updated: no other message
    text = block_text(reply)
    assert "Sorry" in text and re.search(r"reference: [0-9a-f]{8}", text)
    with harness.container.database.engine.connect() as conn:
        stored = conn.execute(sa.select(Message.text).where(Message.role == "error")).scalar_one()
    assert text.rsplit("reference: ", 1)[1].strip() in stored
    assert len(harness.slack.calls_to("chat.postMessage")) == 1


def test_the_follow_up_rule_is_shared_a_mentions_only_channel_is_quiet_on_every_platform(harness):
    from adapters.discord.events import DiscordQuestion
    from core.tenancy.channels import set_mentions_only
    from core.questions.follow_up import Addressing

    rule = harness.runtime.slack.follow_ups
    slack_reply = SessionKey("slack", harness.slack.team_id, CHANNEL, "1.0", USER)
    discord_reply = SessionKey("discord", "42", "7", "99", "5")
    for key in (slack_reply, discord_reply):  # DocRag takes part in both threads
        harness.container.engine.accept(key, QUESTION)
        assert rule.is_for_us(Addressing(key, in_thread=True))
    with harness.container.database.sessions.begin() as session:
        set_mentions_only(session, "slack", harness.slack.team_id, CHANNEL, True)
        set_mentions_only(session, "discord", "42", "7", True)
    discord_follow_up = DiscordQuestion(discord_reply, "and for Windows?", mentioned=False, where="thread")
    assert not rule.is_for_us(discord_follow_up.addressing)  # Discord reads the same rule as Slack
    assert not rule.is_for_us(Addressing(slack_reply, in_thread=True))
    assert rule.is_for_us(Addressing(slack_reply, in_thread=True, mentioned=True))


def test_a_process_killed_between_claiming_and_accepting_is_finished_by_the_backstop(harness, monkeypatch):
    from core.questions.claims import claim

    monkeypatch.setattr("adapters.slack.queue.INTAKE_BACKSTOP_S", 0)
    after_ack = harness.runtime.slack.after_ack
    real_submit = after_ack.submit

    def claim_then_die(work, *args, **kwargs):  # SIGKILL right after the claim: no acceptance, no release
        if getattr(work, "__name__", "") == "take_in_hand":
            claim(harness.container.database.sessions, "slack", *args[0].dedupe_keys())
            return
        real_submit(work, *args, **kwargs)

    monkeypatch.setattr(after_ack, "submit", claim_then_die)
    mention = harness.mention(QUESTION)
    assert harness.event(mention).status_code == 200
    harness.settle()
    assert len(harness.answers(CHANNEL, mention["ts"])) == 1
    assert len(harness.bot_replies(CHANNEL, mention["ts"])) == 1
