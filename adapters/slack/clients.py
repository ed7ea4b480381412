"""Which bot token speaks for which workspace, and Web API clients that retry politely.

One workspace: the configured bot token. Many: the bot stored by the OAuth install. Neither
path calls ``auth.test``: Bolt learns nothing it needs from it, and a call per request (or at
start-up) would cost latency and an external dependency for no benefit.
"""
from __future__ import annotations

import threading
from typing import Protocol

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.context import BoltContext
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store import InstallationStore

from core.errors import NotFound

API_TIMEOUT_S = 15


def build_web_client(base_url: str, token: str | None = None) -> WebClient:
    """A WebClient for ``base_url`` that waits out HTTP 429 (Retry-After) and retries connection errors."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=API_TIMEOUT_S,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


class TokenSource(Protocol):
    def bot_token(self, team_id: str | None, enterprise_id: str | None = None) -> AuthorizeResult | None: ...


class SingleWorkspace:
    """The bot token from the settings answers for whichever workspace it was issued for."""

    def __init__(self, token: str) -> None:
        self._token = token

    def bot_token(self, team_id: str | None, enterprise_id: str | None = None) -> AuthorizeResult | None:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=self._token)


class InstalledWorkspaces:
    """Bots saved by the OAuth flow (slack_sdk's installation store), one per workspace."""

    def __init__(self, store: InstallationStore) -> None:
        self.store = store

    def bot_token(self, team_id: str | None, enterprise_id: str | None = None) -> AuthorizeResult | None:
        bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
        )


class TokenSourceAuthorize(Authorize):
    """Bolt's authorize step backed by a TokenSource (an ``Authorize`` subclass, so it also works with OAuth)."""

    def __init__(self, tokens: TokenSource) -> None:
        super().__init__()
        self.tokens = tokens

    def __call__(self, *, context: BoltContext, enterprise_id: str | None, team_id: str | None,
                 user_id: str | None, **_: object) -> AuthorizeResult | None:
        return self.tokens.bot_token(team_id, enterprise_id)


class SlackClients:
    """WebClients per workspace for background jobs (listeners use the client Bolt gives them)."""

    def __init__(self, tokens: TokenSource, base_url: str) -> None:
        self.tokens = tokens
        self.base_url = base_url
        self._by_token: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    def for_team(self, team_id: str, enterprise_id: str | None = None) -> WebClient:
        found = self.tokens.bot_token(team_id, enterprise_id)
        if found is None or not found.bot_token:
            raise NotFound(f"DocRag is not installed in Slack workspace {team_id}.")
        with self._lock:
            client = self._by_token.get(found.bot_token)
            if client is None:
                client = self._by_token[found.bot_token] = build_web_client(self.base_url, found.bot_token)
        return client
