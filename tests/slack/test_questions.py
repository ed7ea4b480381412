"""What a Slack user sees: /ask, @mentions, thread follow-ups and DMs, each answered once."""
from __future__ import annotations

import json

from core.tenancy.channels import set_mentions_only
from tests.fakes.slack_signing import url_verification_body
from tests.slack.harness import (
    BASE_URL,
    CHANNEL,
    DM,
    QUESTION,
    USER,
    assert_within_slack_limits,
    block_text,
)


def test_url_verification_is_answered_with_the_challenge(harness):
    response = harness.send(url_verification_body("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"))
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.get_data(as_text=True)


def test_ask_in_a_channel_posts_the_question_naming_the_asker_and_answers_in_its_thread(harness):
    response = harness.command(QUESTION)
    assert response.status_code == 200
    harness.settle()

    question = harness.slack.posted_messages(CHANNEL)[0]
    assert question.get("thread_ts") is None  # a new message in the channel...
    assert question["text"].startswith(f"*<@{USER}> asked:*") and "rotate my API key" in question["text"]
    question_ts = harness.slack.messages(CHANNEL)[0]["ts"]
    [answer] = harness.answers(CHANNEL, question_ts)  # ...whose thread holds the answer
    assert "Rotate" in block_text(answer)
    assert f"<{BASE_URL}keys.md" in block_text(answer)  # a linked source title
    assert_within_slack_limits(answer)


def test_ask_in_a_dm_is_answered_in_the_dm(harness):
    harness.command(QUESTION, channel=DM)
    harness.settle()
    question_ts = harness.slack.messages(DM)[0]["ts"]
    [answer] = harness.answers(DM, question_ts)
    assert_within_slack_limits(answer)


def test_empty_ask_shows_usage_to_the_asker_only(harness):
    response = harness.command("   ")
    assert response.status_code == 200
    assert "/ask how do I" in response.get_data(as_text=True)  # the ack body: shown to the asker alone
    harness.settle()
    assert harness.slack.posted_messages() == []
    assert harness.answer_jobs() == 0


def test_ask_containing_the_word_payload_still_reaches_the_command(harness):
    response = harness.command("what is the payload format of the rotate API key call?")
    assert response.status_code == 200
    harness.settle()
    question = harness.slack.posted_messages(CHANNEL)[0]
    assert "payload format" in question["text"]
    assert len(harness.answers(CHANNEL, harness.slack.messages(CHANNEL)[0]["ts"])) == 1


def test_mention_in_a_channel_is_answered_in_a_thread_under_the_mention(harness):
    event = harness.mention(QUESTION)
    assert harness.event(event).status_code == 200
    harness.settle()

    [answer] = harness.answers(CHANNEL, event["ts"])
    assert answer["thread_ts"] == event["ts"]
    assert_within_slack_limits(answer)
    placeholder_call = harness.slack.calls_to("chat.postMessage")[0]
    assert placeholder_call.params["thread_ts"] == event["ts"]  # the placeholder came first...
    assert harness.slack.calls_to("chat.update")[0].params["ts"] == answer["ts"]  # ...and became the answer


def test_mention_inside_a_thread_is_answered_in_that_thread(harness):
    root = harness.slack.add_message(CHANNEL, "We are discussing keys here", user="U0OTHER001")
    event = harness.mention(QUESTION, thread_ts=root)
    harness.event(event)
    harness.settle()
    [answer] = harness.answers(CHANNEL, root)
    assert answer["thread_ts"] == root


def test_follow_up_without_mention_in_a_thread_docrag_answered_is_answered(harness):
    first = harness.mention(QUESTION)
    harness.event(first)
    harness.settle()
    follow_up = harness.user_message("and how long does the old one keep working?", thread_ts=first["ts"])
    harness.event(follow_up)
    harness.settle()
    assert len(harness.answers(CHANNEL, first["ts"])) == 2


def test_unmentioned_reply_in_a_thread_docrag_is_not_part_of_is_ignored(harness):
    root = harness.slack.add_message(CHANNEL, "lunch?", user="U0OTHER001")
    harness.event(harness.user_message("how do I rotate my API key?", thread_ts=root))
    harness.settle()
    assert harness.slack.calls == []
    assert harness.answer_jobs() == 0 and harness.intake_jobs() == 0


def test_mentions_only_channel_ignores_unmentioned_follow_ups_but_answers_mentions(harness):
    first = harness.mention(QUESTION)
    harness.event(first)
    harness.settle()
    with harness.container.database.sessions.begin() as session:
        set_mentions_only(session, "slack", harness.slack.team_id, CHANNEL, True)

    harness.event(harness.user_message("and the old key?", thread_ts=first["ts"]))
    harness.settle()
    assert len(harness.answers(CHANNEL, first["ts"])) == 1

    harness.event(harness.mention("how long does the old API key keep working?", thread_ts=first["ts"]))
    harness.settle()
    assert len(harness.answers(CHANNEL, first["ts"])) == 2


def test_direct_messages_are_answered_and_each_dm_thread_is_its_own_conversation(harness):
    first = harness.user_message(QUESTION, channel=DM)
    second = harness.user_message("how do I ingest a folder?", channel=DM)
    harness.event(first)
    harness.event(second)
    harness.settle()
    assert len(harness.answers(DM, first["ts"])) == 1
    assert len(harness.answers(DM, second["ts"])) == 1
    with harness.container.database.engine.connect() as conn:
        threads = conn.exec_driver_sql("SELECT thread FROM conversations WHERE channel = %s", (DM,)).scalars().all()
    assert sorted(threads) == sorted([first["ts"], second["ts"]])


def test_a_channel_message_that_does_not_mention_docrag_is_ignored(harness):
    harness.event(harness.user_message(QUESTION))
    harness.settle()
    assert harness.slack.calls == [] and harness.answer_jobs() == harness.intake_jobs() == 0


def test_answer_is_markdown_converted_escaped_and_the_fallback_is_plain(harness):
    harness.event(harness.mention(QUESTION))
    harness.settle()
    update = harness.slack.calls_to("chat.update")[0].params
    assert update["text"] and "<script" not in update["text"]
    blocks = update["blocks"]
    assert blocks[-1]["type"] == "actions"
    assert {e["action_id"] for e in blocks[-1]["elements"]} == {"docrag_feedback_up", "docrag_feedback_down"}
    assert json.dumps(blocks).count("docrag_feedback") >= 2
