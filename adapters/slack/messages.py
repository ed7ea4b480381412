"""Posting to Slack: new messages, replacing a placeholder, and notices for one user."""
from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from adapters.slack.render import Reply, render_placeholder

log = logging.getLogger(__name__)

# The message to replace is gone (deleted by someone): post a new one instead.
_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def post(client: WebClient, channel: str, reply: Reply, *, thread_ts: str | None = None) -> str:
    """Post ``reply``; returns the new message's ts."""
    response = client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False, **reply.as_kwargs())
    return str(response["ts"])


def replace(client: WebClient, channel: str, ts: str, reply: Reply) -> bool:
    """Replace message ``ts`` with ``reply``; False when that message no longer exists."""
    try:
        client.chat_update(channel=channel, ts=ts, **reply.as_kwargs())
    except SlackApiError as exc:
        if exc.response.get("error") in _GONE:
            return False
        raise
    return True


def post_placeholder(client: WebClient, channel: str, thread_ts: str) -> str | None:
    """Show at once that the question was heard; None when Slack refused (the answer is posted anyway)."""
    try:
        return post(client, channel, render_placeholder(), thread_ts=thread_ts)
    except SlackApiError as exc:
        log.warning("slack.placeholder_failed channel=%s error=%s", channel, exc.response.get("error"))
        return None


def tell_user(client: WebClient, *, channel: str, user: str, thread_ts: str, reply: Reply, is_dm: bool) -> None:
    """A notice meant for the asker alone (a limit, an invalid question): ephemeral in channels."""
    if not is_dm:
        try:
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **reply.as_kwargs())
            return
        except SlackApiError as exc:  # e.g. the user left the channel: still say it, in the thread
            log.info("slack.ephemeral_failed channel=%s error=%s", channel, exc.response.get("error"))
    post(client, channel, reply, thread_ts=thread_ts)


def respond(response_url: str, text: str) -> None:
    """A private reply through a command's or a click's ``response_url`` (valid for 30 minutes)."""
    if not response_url:
        log.warning("slack.respond_without_url")
        return
    result = WebhookClient(response_url, timeout=15).send(text=text, response_type="ephemeral", replace_original=False)
    if result.status_code != 200:
        log.warning("slack.respond_failed status=%s", result.status_code)
