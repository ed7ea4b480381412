"""Posting the weekly digest (core/console/digest.py) to Slack and Discord with the bots' tokens."""
from __future__ import annotations

import httpx
import sqlalchemy as sa

from adapters.slack.app import oauth_enabled, token_source
from adapters.slack.clients import build_web_client
from core.config import Settings
from core.console.digest import Sender
from core.errors import ConfigurationError

DISCORD_TIMEOUT_S = 15


def digest_sender(settings: Settings, database: sa.Engine) -> Sender:
    """A sender for whichever platforms are configured; a channel of another platform fails loudly
    (and is retried next run once the platform is configured)."""

    def send(platform: str, workspace: str, channel: str, text: str) -> None:
        if platform == "slack" and (settings.slack_bot_token is not None or oauth_enabled(settings)):
            found = token_source(settings, database).bot_token(workspace)
            if found is None or not found.bot_token:
                raise ConfigurationError(f"No Slack bot is installed in workspace {workspace}.")
            build_web_client(settings.slack_api_url, found.bot_token).chat_postMessage(channel=channel, text=text)
        elif platform == "discord" and settings.discord_token is not None:
            response = httpx.post(
                f"{settings.discord_api_base_url.rstrip('/')}/channels/{channel}/messages",
                headers={"Authorization": f"Bot {settings.discord_token.get_secret_value()}"},
                json={"content": text[:2000], "allowed_mentions": {"parse": []}},
                timeout=DISCORD_TIMEOUT_S,
            )
            response.raise_for_status()
        else:
            raise ConfigurationError(f"The weekly digest cannot post to {platform}: it is not configured.")

    return send
