"""Sign-in for the web process, built from settings (docs/signing-in.md).

One rule decides whether the playground is public (adapters/web/signin/access.py); `docrag serve`
applies it before starting, to warn, and each web process logs it at start-up.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from adapters.web.signin import PlaygroundAccess, SignIn, decide_playground_access
from adapters.web.signin.access import listen_addresses
from adapters.web.signin.providers import DiscordSignIn, Provider, SlackSignIn
from bots.wiring import Container
from core.config import Settings
from core.tenancy.web_sessions import WebSessions

log = logging.getLogger(__name__)

STATE_TTL_S = 600  # a sign-in must come back from Slack or Discord within 10 minutes


def sign_in_providers(settings: Settings) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    if settings.signin_slack_client_id and settings.signin_slack_client_secret:
        providers["slack"] = SlackSignIn(settings.signin_slack_client_id,
                                         settings.signin_slack_client_secret.get_secret_value(), settings.slack_api_url)
    if settings.signin_discord_client_id and settings.signin_discord_client_secret:
        providers["discord"] = DiscordSignIn(settings.signin_discord_client_id,
                                             settings.signin_discord_client_secret.get_secret_value(),
                                             settings.discord_api_base_url)
    return providers


def playground_access(settings: Settings, listen: tuple[str, ...] | None = None) -> PlaygroundAccess:
    """``listen``: the addresses about to be bound (`docrag serve`); default: DOCRAG_WEB_LISTEN,
    which bots/gunicorn_conf.py sets for the worker processes."""
    return decide_playground_access(
        settings.playground_public,
        listen=listen if listen is not None else listen_addresses(settings.web_listen),
        providers=list(sign_in_providers(settings)),
        trusted_proxies=settings.trusted_proxies,
    )


def build_signin(container: Container) -> SignIn:
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    settings = container.settings
    access = playground_access(settings)
    providers = sign_in_providers(settings)
    log.info("web.playground access=%s reason=%r signin=%s", "public" if access.public else "signed-in",
             access.reason, ",".join(providers) or "none")
    if not access.public and not providers:
        log.warning("web.playground_closed reason=no sign-in provider: set DOCRAG_SIGNIN_SLACK_CLIENT_ID/_SECRET "
                    "or DOCRAG_SIGNIN_DISCORD_CLIENT_ID/_SECRET, or DOCRAG_PLAYGROUND_PUBLIC=true (docs/signing-in.md)")
    database = container.database
    return SignIn(
        sessions=WebSessions(database.sessions, lifetime=timedelta(hours=settings.session_hours)),
        database=database.sessions,
        providers=providers,
        states=SQLAlchemyOAuthStateStore(expiration_seconds=STATE_TTL_S, engine=database.engine),
        access=access,
        default_collection=settings.default_collection,
        public_url=settings.public_url,
    )
