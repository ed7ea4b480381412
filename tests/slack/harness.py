"""Slack test harness: the real Flask app and Bolt, a fake Slack Web API, a job worker.

Requests are signed exactly as Slack signs them and go through Flask's test client of
``create_app``; replies are whatever the fake Slack on 127.0.0.1 received. Fixtures that build
it are in conftest.py.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from bots.web import WebRuntime, runtime_of
from bots.wiring import Container
from tests.builders import SAMPLE_DOCS
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_signing import (
    block_action_body,
    event_body,
    signed_headers,
    slash_command_body,
)

SECRET = "test-signing-secret"
CHANNEL = "C0CHAN0001"
DM = "D0DM000001"
USER = "U0USER0001"
BASE_URL = "https://docs.example.com/"

DOCS = SAMPLE_DOCS
QUESTION = "how do I rotate my API key?"
_ids = itertools.count(1)


@dataclass
class SlackHarness:
    app: Flask
    client: FlaskClient
    slack: FakeSlack
    container: Container

    @property
    def runtime(self) -> WebRuntime:
        return runtime_of(self.app)

    # -- sending, signed as Slack does ------------------------------------------------------------
    def send(self, body: str, *, timestamp: int | None = None, retry_num: int | None = None,
             headers: dict[str, str] | None = None):
        signed = signed_headers(SECRET, body, timestamp, retry_num=retry_num)
        signed.update(headers or {})
        return self.client.post("/slack/events", data=body.encode("utf-8"), headers=signed)

    def event(self, event: dict[str, Any], *, team_id: str | None = None, event_id: str | None = None,
              retry_num: int | None = None, bot_user_id: str | None = None):
        body = event_body(event, team_id=team_id or self.slack.team_id, event_id=event_id or f"Ev{next(_ids):08d}",
                          bot_user_id=bot_user_id or self.slack.bot_user_id)
        return self.send(body, retry_num=retry_num)

    def command(self, text: str, *, channel: str = CHANNEL, user: str = USER, team_id: str | None = None,
                response_name: str = "cmd"):
        return self.send(slash_command_body(text, team_id=team_id or self.slack.team_id, channel_id=channel,
                                            user_id=user, response_url=self.slack.response_url(response_name),
                                            trigger_id=f"{next(_ids)}.2222222222.abcdef"))

    def click(self, action_id: str, value: str, *, message_ts: str, channel: str = CHANNEL, user: str = USER,
              response_name: str = "click"):
        return self.send(block_action_body(action_id, value, team_id=self.slack.team_id, channel_id=channel,
                                           user_id=user, message_ts=message_ts,
                                           response_url=self.slack.response_url(response_name)))

    # -- building events ----------------------------------------------------------------------------
    def user_message(self, text: str, *, channel: str = CHANNEL, user: str = USER, thread_ts: str | None = None,
                     event_type: str = "message", **extra: Any) -> dict[str, Any]:
        """A message the user wrote (seeded in the fake so threads read naturally), as an event."""
        ts = self.slack.add_message(channel, text, user=user, thread_ts=thread_ts)
        event: dict[str, Any] = {"type": event_type, "user": user, "text": text, "ts": ts, "channel": channel,
                                 "channel_type": "im" if channel.startswith("D") else "channel"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        event.update(extra)
        if event_type == "app_mention":
            event.pop("channel_type")
        return event

    def mention(self, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.user_message(f"<@{self.slack.bot_user_id}> {text}", event_type="app_mention", **kwargs)

    # -- waiting and reading ---------------------------------------------------------------------------
    def settle(self, timeout: float = 20) -> None:
        """Wait until after-ack work and every queued answer job are done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.runtime.slack is not None
            self.runtime.slack.after_ack.wait_idle(timeout)
            if self.pending_jobs() == 0 and self.runtime.slack.after_ack.wait_idle(0):
                return
            time.sleep(0.05)
        raise AssertionError(f"answer jobs still pending after {timeout}s")

    def pending_jobs(self) -> int:
        """Answer and intake jobs that are due and not finished (backstops wait 30 s: not due)."""
        with self.container.database.engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name IN ('questions.answer', 'slack.intake') "
                "AND status IN ('todo', 'doing') AND (scheduled_at IS NULL OR scheduled_at <= now())"
            )).scalar_one()

    def answer_jobs(self) -> int:
        return self.jobs_of("questions.answer")

    def intake_jobs(self) -> int:
        """Backstop jobs holding deliveries (one per message taken in hand)."""
        return self.jobs_of("slack.intake")

    def jobs_of(self, task_name: str) -> int:
        with self.container.database.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"),
                                {"name": task_name}).scalar_one()

    def bot_replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's messages in a thread (placeholders already replaced), oldest first."""
        return [m for m in self.slack.thread(channel, thread_ts)
                if m.get("bot_id") and m.get("ts") != thread_ts]

    def answers(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Bot replies in the thread that are answers (they carry the feedback buttons)."""
        return [m for m in self.bot_replies(channel, thread_ts) if feedback_value(m) is not None]


def feedback_value(message: dict[str, Any]) -> str | None:
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            return block["elements"][0]["value"]
        if block.get("type") == "context_actions":  # Slack's feedback_buttons under a streamed answer
            return block["elements"][0]["positive_button"]["value"].partition(":")[2]
    return None


def block_text(message: dict[str, Any]) -> str:
    parts = []
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for element in block.get("elements") or []:
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


def assert_within_slack_limits(message: dict[str, Any]) -> None:
    """What Slack would refuse: no fallback text, > 50 blocks, a section over 3000, > 12k in total."""
    assert message.get("text", "").strip(), "a plain text fallback is always set"
    blocks = message.get("blocks") or []
    assert 0 < len(blocks) <= 50
    total = 0
    for block in blocks:
        if block["type"] == "section":
            assert 1 <= len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
        total += len(block_text({"blocks": [block]}))
    assert total <= 12_000


