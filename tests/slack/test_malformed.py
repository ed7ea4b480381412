"""Bodies Slack never sends get a short 400 through the real Flask app, and no traceback in the log."""
from __future__ import annotations

import logging

import pytest

from tests.slack.harness import QUESTION

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

MALFORMED = [
    pytest.param("", JSON, "empty body", id="empty"),
    pytest.param("{\"type\": \"event_callback\", ", JSON, "not a JSON object", id="broken-json"),
    pytest.param("[1, 2, 3]", JSON, "not a JSON object", id="json-array"),
    pytest.param("hello there", {"Content-Type": "text/plain"}, "unsupported content type", id="plain-text"),
    pytest.param("<event/>", {"Content-Type": "application/xml"}, "unsupported content type", id="xml"),
    pytest.param("payload=%7Bbroken", FORM, "payload is not a JSON object", id="form-broken-payload"),
    pytest.param("just words", FORM, "not a url-encoded form", id="not-a-form"),
    pytest.param("{\"a\": 1}", FORM, "not a url-encoded form", id="json-as-form"),
]


@pytest.mark.parametrize("body, headers, reason", MALFORMED)
def test_a_body_slack_never_sends_is_a_400_without_a_traceback(harness, caplog, body, headers, reason):
    caplog.set_level(logging.DEBUG)
    response = harness.send(body, headers=headers)

    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert reason in text and len(text) < 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    harness.settle()
    assert all(call.method != "chat.postMessage" for call in harness.slack.calls)


def test_a_well_formed_mention_is_still_answered_after_a_malformed_one(harness):
    assert harness.send("{broken", headers=JSON).status_code == 400
    mention = harness.mention(QUESTION)
    assert harness.event(mention).status_code == 200
    harness.settle()
    assert len(harness.answers(mention["channel"], mention["ts"])) == 1


def test_a_malformed_body_with_a_forged_signature_is_refused_too(harness):
    response = harness.client.post("/slack/events", data=b"{broken", headers={
        **JSON, "X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=forged"})
    assert response.status_code in (400, 401)
