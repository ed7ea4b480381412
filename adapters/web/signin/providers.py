"""The two ways to sign in: "Sign in with Slack" (OpenID Connect) and Discord (OAuth2).

Each provider turns a browser into an authorization URL, and the code it comes back with into an
:class:`Identity` listing the workspaces the person belongs to. Whether those workspaces may read
anything is the caller's business (core/tenancy/viewer_access.py). Both run the authorization-code flow
with a confidential client: the code is exchanged server-to-server over TLS, so the identity comes
straight from the provider's API (Slack's openid.connect.userInfo, Discord's /users/@me), and the
one-time ``state`` bound to the browser stops forged callbacks.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from authlib.integrations.httpx_client import OAuth2Client
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OpenIDConnectAuthorizeUrlGenerator

from core.tenancy.web_sessions import Identity

log = logging.getLogger(__name__)

SLACK_SCOPES = ["openid", "profile"]
DISCORD_SCOPES = "identify guilds"
HTTP_TIMEOUT_S = 10


class SignInFailed(Exception):
    """The provider refused or could not be reached; the message is safe to show."""


class Provider(Protocol):
    name: str
    label: str

    def authorization_url(self, *, state: str, redirect_uri: str) -> str: ...

    def identity(self, *, code: str, redirect_uri: str) -> Identity: ...


@dataclass(frozen=True)
class SlackSignIn:
    """Sign in with Slack. ``api_url``: the Web API (SLACK_API_URL); the browser page lives on its host."""

    client_id: str
    client_secret: str
    api_url: str = "https://slack.com/api/"
    name: str = "slack"
    label: str = "Slack"

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        generator = OpenIDConnectAuthorizeUrlGenerator(
            client_id=self.client_id, redirect_uri=redirect_uri, scopes=SLACK_SCOPES,
            authorization_url=urljoin(self.api_url, "/openid/connect/authorize"),
        )
        return generator.generate(state=state)

    def identity(self, *, code: str, redirect_uri: str) -> Identity:
        try:
            token = WebClient(base_url=self.api_url, timeout=HTTP_TIMEOUT_S).openid_connect_token(
                client_id=self.client_id, client_secret=self.client_secret, code=code, redirect_uri=redirect_uri
            )
            info = WebClient(token=str(token["access_token"]), base_url=self.api_url,
                             timeout=HTTP_TIMEOUT_S).openid_connect_userInfo()
        except SlackApiError as exc:
            log.warning("signin.slack_refused error=%s", exc.response.get("error"))
            raise SignInFailed("Slack did not confirm the sign-in. Please try again.") from None
        except OSError as exc:
            log.warning("signin.slack_unreachable error=%s", type(exc).__name__)
            raise SignInFailed("Slack could not be reached. Please try again in a moment.") from None
        team = str(info.get("https://slack.com/team_id") or "")
        user = str(info.get("https://slack.com/user_id") or info.get("sub") or "")
        if not team or not user:
            raise SignInFailed("Slack did not say who you are. Please try again.")
        return Identity("slack", user, str(info.get("name") or user), (team,))


@dataclass(frozen=True)
class DiscordSignIn:
    """Discord OAuth2 (scopes identify and guilds). ``api_url``: DISCORD_API_BASE_URL; the
    authorization page is /oauth2/authorize on the same host."""

    client_id: str
    client_secret: str
    api_url: str = "https://discord.com/api/v10"
    name: str = "discord"
    label: str = "Discord"

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(self.client_id, self.client_secret, scope=DISCORD_SCOPES, redirect_uri=redirect_uri,
                            timeout=HTTP_TIMEOUT_S)

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        parts = urlsplit(self.api_url)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(f"{parts.scheme}://{parts.netloc}/oauth2/authorize", state=state)
        return url

    def identity(self, *, code: str, redirect_uri: str) -> Identity:
        base = self.api_url.rstrip("/")
        try:
            with self._client(redirect_uri) as client:
                client.fetch_token(f"{base}/oauth2/token", code=code, grant_type="authorization_code")
                me = client.get(f"{base}/users/@me")
                guilds = client.get(f"{base}/users/@me/guilds")
                me.raise_for_status()
                guilds.raise_for_status()
        except Exception as exc:  # authlib's OAuthError, httpx errors: the details stay in the log
            log.warning("signin.discord_refused error=%s", type(exc).__name__)
            raise SignInFailed("Discord did not confirm the sign-in. Please try again.") from None
        user = me.json()
        name = str(user.get("global_name") or user.get("username") or user.get("id"))
        return Identity("discord", str(user["id"]), name, tuple(str(g["id"]) for g in guilds.json()))
