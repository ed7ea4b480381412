"""What counts as a thread ending well, read from Slack payloads; how a learned citation is recognised."""
from adapters.slack.learning import helpful_answer_id, reaction_confirmation, resolved_confirmation
from adapters.slack.render import FEEDBACK_DOWN, FEEDBACK_UP
from adapters.slack.streaming import FEEDBACK_BUTTONS
from core.ingest.learned_label import learned_label, learned_title
from core.types import Citation

BOT = "U0BOT"


def test_only_a_helpful_click_names_an_answer():
    assert helpful_answer_id({"action_id": FEEDBACK_UP, "value": "42"}) == 42
    assert helpful_answer_id({"action_id": FEEDBACK_DOWN, "value": "42"}) is None
    assert helpful_answer_id({"action_id": FEEDBACK_BUTTONS, "value": "up:7"}) == 7
    assert helpful_answer_id({"action_id": FEEDBACK_BUTTONS, "value": "down:7"}) is None
    assert helpful_answer_id({"action_id": "something_else", "value": "7"}) is None


def reaction(name, user="U1"):
    return {"team_id": "T1", "event": {"type": "reaction_added", "user": user, "reaction": name,
                                       "item": {"type": "message", "channel": "C1", "ts": "1.2"}}}


def test_a_thumbs_up_points_at_an_answer_and_a_check_mark_also_at_a_question():
    up = reaction_confirmation(reaction("+1::skin-tone-2"), BOT)
    assert up is not None and up.target.placeholder == "1.2" and up.target.thread is None
    done = reaction_confirmation(reaction("white_check_mark"), BOT)
    assert done is not None and done.target.placeholder == "1.2" and done.target.thread == "1.2"
    assert reaction_confirmation(reaction("eyes"), BOT) is None
    assert reaction_confirmation(reaction("white_check_mark", user=BOT), BOT) is None


def message(text, *, thread_ts="1.0", ts="1.5", **extra):
    return {"team_id": "T1", "event": {"type": "message", "user": "U1", "text": text, "channel": "C1",
                                       "ts": ts, "thread_ts": thread_ts, **extra}}


def test_resolved_is_a_whole_reply_in_a_thread():
    for text in ("resolved", "Resolved!", f"<@{BOT}> resolved."):
        found = resolved_confirmation(message(text), BOT)
        assert found is not None and found.target.thread == "1.0", text
    assert resolved_confirmation(message("is this resolved?"), BOT) is None
    assert resolved_confirmation(message("resolved", thread_ts="1.5"), BOT) is None  # not in a thread
    assert resolved_confirmation(message("resolved", bot_id="B1"), BOT) is None


def test_a_learned_title_is_recognised_and_an_official_one_is_not():
    title = learned_title("#release train", "2026-12-07", "How do I roll back?")
    label = learned_label(Citation(1, title, "https://x"))
    assert label is not None and label.text == "answered in #release-train on 2026-12-07"
    assert label.question == "How do I roll back?"
    assert learned_label(Citation(1, "Answers to common questions", "https://x")) is None
