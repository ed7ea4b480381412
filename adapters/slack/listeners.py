"""Bolt listeners: thin glue from Slack's request kinds to the Intake.

Every request Slack may send gets a listener, even the ones DocRag ignores: an unhandled request
is answered 404, and Slack retries what it thinks failed.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from adapters.slack.events import parse_event
from adapters.slack.intake import Intake
from adapters.slack.render import FEEDBACK_DOWN, FEEDBACK_UP
from adapters.slack.streaming import FEEDBACK_BUTTONS, feedback_from_action

ANY = re.compile(".*")


def register_listeners(app: App, intake: Intake) -> None:
    @app.command("/ask")
    def ask(ack: Callable[..., Any], body: dict[str, Any], client: WebClient) -> None:
        intake.ask_command(ack, body, client)

    @app.event("app_mention")
    @app.event("message")
    def message(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        intake.receive(parse_event(body, bot_user=context.bot_user_id), client)

    @app.action(FEEDBACK_UP)
    def helpful(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        intake.feedback(ack, body, action, 1)

    @app.action(FEEDBACK_DOWN)
    def not_helpful(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        intake.feedback(ack, body, action, -1)

    @app.action(FEEDBACK_BUTTONS)  # Slack's feedback_buttons under a streamed answer
    def feedback_buttons(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        vote = feedback_from_action(action)
        if vote is None:
            ack()
            return
        message_id, score = vote
        intake.feedback(ack, body, {**action, "value": str(message_id)}, score)

    _acknowledge_everything_else(app)


def _acknowledge_everything_else(app: App) -> None:
    def ignore(ack: Callable[..., Any]) -> None:
        ack()

    app.event(ANY)(ignore)
    app.action(ANY)(ignore)
    app.command(ANY)(ignore)
    app.shortcut(ANY)(ignore)
    app.view(ANY)(ignore)
    app.options(ANY)(lambda ack: ack(options=[]))
