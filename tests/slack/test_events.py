"""Raw Slack payloads -> SlackQuestion: what counts as a question and where it is answered."""
from __future__ import annotations

from adapters.slack.events import parse_command, parse_event
from core.types import SessionKey

BOT = "U0BOT0001"


def body(event: dict, **envelope) -> dict:
    return {"team_id": "T1", "event_id": "Ev1", "authorizations": [{"user_id": BOT, "is_bot": True}],
            "event": event, **envelope}


def test_a_mention_starts_a_thread_under_itself():
    q = parse_event(body({"type": "app_mention", "user": "U1", "text": f"<@{BOT}> hi", "ts": "10.1", "channel": "C1"}))
    assert q is not None and q.mentioned and not q.in_thread
    assert q.key == SessionKey("slack", "T1", "C1", "10.1", "U1")
    assert q.dedupe_keys() == ["event:Ev1", "msg:T1:C1:10.1"]


def test_a_reply_in_a_thread_belongs_to_that_thread():
    q = parse_event(body({"type": "message", "user": "U1", "text": "and then?", "ts": "11.1", "thread_ts": "10.1",
                          "channel": "C1", "channel_type": "channel"}))
    assert q is not None and q.in_thread and not q.mentioned and q.thread_ts == "10.1"


def test_plain_channel_chatter_is_not_a_question_but_a_dm_is():
    chatter = {"type": "message", "user": "U1", "text": "lunch?", "ts": "12.1", "channel": "C1",
               "channel_type": "channel"}
    assert parse_event(body(chatter)) is None
    dm = parse_event(body({**chatter, "channel": "D1", "channel_type": "im"}))
    assert dm is not None and dm.is_dm and dm.thread_ts == "12.1"


def test_a_message_mentioning_the_bot_by_its_authorized_id_is_a_mention():
    q = parse_event(body({"type": "message", "user": "U1", "text": f"hey <@{BOT}|docrag> help", "ts": "13.1",
                          "channel": "C1", "channel_type": "channel"}))
    assert q is not None and q.mentioned


def test_bots_edits_and_other_subtypes_are_not_questions():
    base = {"type": "message", "user": "U1", "text": "x", "ts": "14.1", "channel": "D1", "channel_type": "im"}
    for variant in ({"bot_id": "B1"}, {"user": BOT}, {"subtype": "message_changed"}, {"subtype": "message_deleted"},
                    {"edited": {"ts": "14.2"}}, {"subtype": "channel_join"}, {"bot_profile": {"id": "B2"}}):
        assert parse_event(body({**base, **variant})) is None, variant
    assert parse_event(body({**base, "subtype": "thread_broadcast"})) is not None
    assert parse_event(body({"type": "reaction_added", "user": "U1"})) is None


def test_a_slash_command_from_a_dm_knows_it_is_one():
    command = parse_command({"team_id": "T1", "channel_id": "D9", "user_id": "U1", "text": "hi", "command": "/ask"})
    assert command.is_dm and command.text == "hi"
