"""Build the Bolt app: one workspace (bot token) or many (OAuth installs stored in PostgreSQL)."""
from __future__ import annotations

import logging

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from sqlalchemy.engine import Engine as DatabaseEngine

from adapters.slack.clients import (
    InstalledWorkspaces,
    SingleWorkspace,
    TokenSource,
    TokenSourceAuthorize,
    build_web_client,
)
from adapters.slack.assistant import build_assistant
from adapters.slack.intake import Intake
from adapters.slack.learning import register_learning
from adapters.slack.listeners import register_listeners
from adapters.slack.services import SlackServices
from core.config import Settings
from core.errors import ConfigurationError

log = logging.getLogger(__name__)

# Kept in step with slack-manifest.yml.
BOT_SCOPES = ["app_mentions:read", "assistant:write", "channels:history", "chat:write", "commands", "groups:history",
              "im:history",
              # learning from resolved threads (adapters/slack/learning.py): reactions, privacy, names
              "reactions:read", "channels:read", "groups:read", "im:read", "mpim:read", "users:read"]
OAUTH_STATE_TTL_S = 600


def oauth_enabled(settings: Settings) -> bool:
    return bool(settings.slack_client_id and settings.slack_client_secret)


def slack_configured(settings: Settings) -> bool:
    """Enough settings to receive Slack requests over HTTP."""
    has_tokens = oauth_enabled(settings) or settings.slack_bot_token is not None
    return settings.slack_signing_secret is not None and has_tokens


def token_source(settings: Settings, database: DatabaseEngine) -> TokenSource:
    if oauth_enabled(settings):
        # Imported here: slack_sdk's SQLAlchemy stores need greenlet, which only OAuth installs use.
        from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

        store = SQLAlchemyInstallationStore(client_id=str(settings.slack_client_id), engine=database)
        return InstalledWorkspaces(store)
    if settings.slack_bot_token is not None:
        return SingleWorkspace(settings.slack_bot_token.get_secret_value())
    raise ConfigurationError(
        "Slack is not configured: set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and "
        "SLACK_CLIENT_SECRET (OAuth installs), plus SLACK_SIGNING_SECRET."
    )


def build_bolt_app(
    settings: Settings, services: SlackServices, database: DatabaseEngine, *, socket_mode: bool = False
) -> App:
    """The Bolt app with DocRag's listeners.

    ``process_before_response``: listeners finish their database work (claim, accept) before
    Slack is acknowledged, so an acknowledged question is always on disk; they hand every Slack
    API call to ``services.after_ack``, so the ack stays fast.
    """
    if not socket_mode and settings.slack_signing_secret is None:
        raise ConfigurationError("SLACK_SIGNING_SECRET is required to verify requests from Slack.")
    tokens = services.clients.tokens
    app = App(
        name="docrag",
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        client=build_web_client(settings.slack_api_url),  # no token: the authorize step supplies one per request
        authorize=TokenSourceAuthorize(tokens),
        oauth_settings=_oauth_settings(settings, tokens, database),
        process_before_response=True,
        request_verification_enabled=not socket_mode,  # a Socket Mode connection is authenticated itself
        token_verification_enabled=False,
    )
    if isinstance(tokens, InstalledWorkspaces):
        app.enable_token_revocation_listeners()
    intake = Intake(services)
    register_learning(app, services)  # first: Bolt runs the first listener that matches
    # The Assistant middleware takes the AI-app container's events (and DM thread messages) before
    # the listeners; everything else passes through it to them.
    app.use(build_assistant(intake, services.prompts_for))
    register_listeners(app, intake)
    return app


def _oauth_settings(settings: Settings, tokens: TokenSource, database: DatabaseEngine) -> OAuthSettings | None:
    if not isinstance(tokens, InstalledWorkspaces):
        return None
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    return OAuthSettings(
        client_id=str(settings.slack_client_id),
        client_secret=settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else "",
        scopes=BOT_SCOPES,
        installation_store=tokens.store,
        installation_store_bot_only=True,
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=OAUTH_STATE_TTL_S, engine=database),
        state_expiration_seconds=OAUTH_STATE_TTL_S,
    )
