"""Build and sign HTTP requests the way Slack sends them to an app's request URL.

Bodies are returned as ``str``: sign and send exactly those bytes (UTF-8), e.g. with Flask's
test client::

    body = event_body({"type": "app_mention", ...}, team_id="T1", event_id="Ev1")
    resp = flask_client.post("/slack/events", data=body, headers=signed_headers(SECRET, body))

Signatures come from ``slack_sdk.signature.SignatureVerifier(secret).generate_signature``:
``v0=`` + HMAC-SHA256(secret, ``v0:{timestamp}:{body}``). Bolt rejects (401) a bad signature
or a timestamp more than 5 minutes away from now.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

__all__ = [
    "signed_headers",
    "sign",
    "event_body",
    "slash_command_body",
    "block_action_body",
    "url_verification_body",
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
]

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Slack's (deprecated) verification token, present in every payload; Bolt ignores it.
VERIFICATION_TOKEN = "verification-token"


def sign(secret: str, body: str | bytes, timestamp: int) -> str:
    """The ``X-Slack-Signature`` value (``v0=<hex>``) for ``body`` sent at ``timestamp``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)


def signed_headers(
    secret: str,
    body: str | bytes,
    timestamp: int | None = None,
    *,
    content_type: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
) -> dict[str, str]:
    """Headers Slack sends with ``body``: timestamp, signature and Content-Type.

    ``timestamp`` defaults to now (pass an old one, e.g. ``now - 600``, to test replay refusal).
    Content-Type is ``application/json`` for a JSON body (starts with ``{``), else
    ``application/x-www-form-urlencoded``; override with ``content_type``. ``retry_num`` adds
    ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` as on Slack's redeliveries.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if content_type is None:
        content_type = JSON_CONTENT_TYPE if text.lstrip().startswith("{") else FORM_CONTENT_TYPE
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(secret, text, ts),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def event_body(
    event: dict,
    *,
    team_id: str,
    event_id: str,
    api_app_id: str = "A1",
    event_time: int | None = None,
    bot_user_id: str = "U0BOT0001",
    enterprise_id: str | None = None,
) -> str:
    """An Events API ``event_callback`` envelope (JSON) around ``event``.

    Carries ``authorizations`` (one bot installation: ``team_id``/``bot_user_id``) and the legacy
    ``authed_users``. ``event_ts`` is filled from ``event["ts"]`` when missing. ``event`` is not
    modified.
    """
    ev = dict(event)
    if "ts" in ev and "event_ts" not in ev:
        ev["event_ts"] = ev["ts"]
    envelope: dict[str, Any] = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": ev,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()) if event_time is None else int(event_time),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "authed_users": [bot_user_id],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }
    if enterprise_id:
        envelope["enterprise_id"] = enterprise_id
    return json.dumps(envelope)


def slash_command_body(
    text: str,
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    command: str = "/ask",
    response_url: str,
    trigger_id: str = "1111111111.2222222222.abcdef",
    api_app_id: str = "A1",
    team_domain: str = "test-team",
    channel_name: str = "general",
    user_name: str = "user",
    enterprise_id: str | None = None,
) -> str:
    """A slash command invocation, form-encoded as Slack posts it.

    Caution (slack_bolt 1.30): Bolt parses any form body *containing the substring "payload"* as
    an interactivity ``payload=`` post, so a command whose text contains "payload" reaches Bolt
    as an empty body and is not dispatched to the command listener.
    """
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    if enterprise_id:
        fields["enterprise_id"] = enterprise_id
        fields["enterprise_name"] = "Enterprise"
    return urlencode(fields)


def block_action_body(
    action_id: str,
    value: str,
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    message_ts: str,
    response_url: str,
    block_id: str = "actions",
    action_type: str = "button",
    message_text: str = "",
    message_blocks: list | None = None,
    thread_ts: str | None = None,
    bot_id: str = "B0BOT0001",
    bot_user_id: str = "U0BOT0001",
    api_app_id: str = "A1",
    trigger_id: str = "1111111111.2222222222.abcdef",
    team_domain: str = "test-team",
    channel_name: str = "general",
    user_name: str = "user",
) -> str:
    """A ``block_actions`` interaction (a button click on a bot message), as the ``payload=``
    form field holding JSON, which is how Slack posts interactivity."""
    action_ts = f"{time.time():.6f}"
    message: dict[str, Any] = {
        "type": "message",
        "user": bot_user_id,
        "bot_id": bot_id,
        "app_id": api_app_id,
        "team": team_id,
        "text": message_text,
        "ts": message_ts,
        "blocks": message_blocks if message_blocks is not None else [],
    }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": False,
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
        container["thread_ts"] = thread_ts
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "value": value,
        "action_ts": action_ts,
    }
    if action_type == "button":
        action["text"] = {"type": "plain_text", "text": value, "emoji": True}
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload)})


def url_verification_body(challenge: str) -> str:
    """The ``url_verification`` handshake Slack sends when the request URL is configured (JSON)."""
    return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})
