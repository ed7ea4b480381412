"""adapters/slack/streaming.py against the fake Slack with the real slack_sdk WebClient."""
from __future__ import annotations

from collections.abc import Generator

import pytest

from adapters.slack.clients import build_web_client
from adapters.slack.messages import post_placeholder
from adapters.slack.streaming import FEEDBACK_BUTTONS, SlackStreamer, StreamTarget, feedback_from_action
from core.errors import UpstreamUnavailable
from core.types import Answer, Citation

CHANNEL = "C0STREAM1"
TEXT = "To rotate your key open *Settings* [1]. The old key keeps working for 24 hours [2]."
PIECES = TEXT.replace(" ", "\0 ").split("\0")
ANSWER = Answer(TEXT, [Citation(1, "API keys", "https://docs.example.com/keys"), Citation(2, "FAQ", "faq.md")],
                message_id=42)


def written(pieces: list[str], answer: Answer | None = ANSWER, *, then_fail: bool = False) -> Generator[str, None, Answer]:
    yield from pieces
    if then_fail:
        raise UpstreamUnavailable("The language model", "the answer stream broke")
    assert answer is not None
    return answer


@pytest.fixture
def client(slack):
    return build_web_client(slack.api_url, slack.token)


@pytest.fixture
def target(slack, client):
    question = slack.add_message(CHANNEL, "how do I rotate my key?", user="U0ASKER01")
    return StreamTarget(CHANNEL, question, user_id="U0ASKER01", team_id=slack.team_id,
                        placeholder_ts=post_placeholder(client, CHANNEL, question))


def bot_replies(slack, target):
    return [m for m in slack.thread(CHANNEL, target.thread_ts) if m.get("bot_id")]


def test_the_answer_streams_into_the_thread_and_stops_with_sources_and_feedback_buttons(slack, client, target):
    streamer = SlackStreamer(client, target, interval_s=0)

    assert streamer.deliver(written(PIECES)) == ANSWER

    start = slack.last_call("chat.startStream").params
    assert start["markdown_text"] == PIECES[0], "the first words start the stream at once"
    assert (start["recipient_user_id"], start["recipient_team_id"]) == ("U0ASKER01", slack.team_id)
    [reply] = bot_replies(slack, target)
    assert reply["text"] == TEXT and reply["ts"] != target.placeholder_ts, "the placeholder gave way to the stream"
    blocks = reply["blocks"]
    assert blocks[0]["type"] == "context" and "docs.example.com/keys" in blocks[0]["elements"][1]["text"]
    buttons = blocks[1]["elements"][0]
    assert blocks[1]["type"] == "context_actions" and buttons["type"] == "feedback_buttons"
    assert feedback_from_action({"action_id": FEEDBACK_BUTTONS, "value": buttons["positive_button"]["value"]}) == (42, 1)
    assert feedback_from_action({"action_id": FEEDBACK_BUTTONS, "value": buttons["negative_button"]["value"]}) == (42, -1)
    assert not slack.is_streaming(CHANNEL, reply["ts"])


def test_pieces_are_coalesced_into_few_calls(slack, client, target):
    streamer = SlackStreamer(client, target, interval_s=3600)  # everything after the first words waits for the stop

    streamer.deliver(written(PIECES))

    assert len(slack.calls_to("chat.startStream")) == 1 and slack.calls_to("chat.appendStream") == []
    assert len(slack.calls_to("chat.stopStream")) == 1
    assert bot_replies(slack, target)[0]["text"] == TEXT


def test_a_workspace_without_streaming_gets_post_then_replace(slack, client, target):
    slack.fail_next("chat.startStream", status=200, error="not_allowed_token_type")

    SlackStreamer(client, target, interval_s=0).deliver(written(PIECES))

    assert len(slack.calls_to("chat.startStream")) == 1, "no second try, no appends"
    assert slack.calls_to("chat.appendStream") == [] and slack.calls_to("chat.stopStream") == []
    [reply] = bot_replies(slack, target)
    assert reply["ts"] == target.placeholder_ts and "24 hours" in reply["text"]


@pytest.mark.parametrize("error", ["message_not_in_streaming_state", "msg_too_long"])
def test_a_stream_refused_midway_is_replaced_by_the_whole_answer_once(slack, client, target, error):
    slack.fail_next("chat.appendStream", n=1, status=200, error=error)

    SlackStreamer(client, target, interval_s=0).deliver(written(PIECES))

    assert len(slack.calls_to("chat.appendStream")) == 1, "no appends after the refusal"
    [reply] = bot_replies(slack, target)
    assert reply["text"].count("24 hours") == 1 and "edited" in reply, "one complete answer, no doubled text"


def test_a_stream_that_expired_on_slacks_side_still_ends_complete(slack, client, target):
    pieces = iter(PIECES)

    def expiring() -> Generator[str, None, Answer]:
        yield next(pieces)
        ts = slack.last_call("chat.startStream").response["ts"]
        slack.end_stream(CHANNEL, ts)  # Slack closed it
        yield from pieces
        return ANSWER

    SlackStreamer(client, target, interval_s=0).deliver(expiring())

    assert not slack.last_call("chat.appendStream").ok
    [reply] = bot_replies(slack, target)
    assert "24 hours" in reply["text"] and reply["text"].count("rotate") == 1


def test_a_refused_append_keeps_its_text_for_the_next_call(slack, client, target):
    slack.fail_next("chat.appendStream", n=1, status=200, error="internal_error")

    SlackStreamer(client, target, interval_s=0).deliver(written(PIECES))

    [reply] = bot_replies(slack, target)
    assert reply["text"] == TEXT and "edited" not in reply, "nothing lost, nothing doubled, still streamed"


def test_a_model_failure_mid_answer_leaves_the_apology_not_half_an_answer(slack, client, target):
    with pytest.raises(UpstreamUnavailable):
        SlackStreamer(client, target, interval_s=0).deliver(written(PIECES[:4], None, then_fail=True))

    [reply] = bot_replies(slack, target)
    assert "Sorry, I couldn't answer this" in reply["text"] and "rotate" not in reply["text"]
    assert not slack.is_streaming(CHANNEL, reply["ts"])


def test_a_final_text_that_differs_from_the_streamed_one_replaces_it(slack, client, target):
    SlackStreamer(client, target, interval_s=0).deliver(written(["A first draft that", " was retried"]))

    [reply] = bot_replies(slack, target)
    assert "24 hours" in reply["text"] and "first draft" not in reply["text"]


def test_a_user_who_pressed_stop_is_respected(slack, client, target):
    def stopped_by_user() -> Generator[str, None, Answer]:
        yield PIECES[0]
        slack.end_stream(CHANNEL, slack.last_call("chat.startStream").response["ts"], by_user=True)
        yield from PIECES[1:]
        return ANSWER

    SlackStreamer(client, target, interval_s=0).deliver(stopped_by_user())

    [reply] = bot_replies(slack, target)
    assert reply["text"] == PIECES[0] and slack.calls_to("chat.update") == []


def test_an_answer_ready_at_once_is_posted_as_today(slack, client, target):
    SlackStreamer(client, target).deliver(written([]))

    assert slack.calls_to("chat.startStream") == []
    [reply] = bot_replies(slack, target)
    assert reply["ts"] == target.placeholder_ts and "24 hours" in reply["text"]
