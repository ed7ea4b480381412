"""The sign-in service one web process holds: providers, sessions, and the playground's access rule.

bots/web.py builds it from settings; the sign-in blueprint registers it on the app
(``app.extensions[EXTENSION]``), where :func:`current_viewer` finds it.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Mapping

from flask import request
from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy.orm import Session, sessionmaker

from adapters.web.signin.access import PlaygroundAccess
from adapters.web.signin.providers import Provider
from adapters.web.signin.viewer import ANONYMOUS, SESSION_COOKIE, Viewer
from core.tenancy.collections import collection_name_for
from core.tenancy.viewer_access import readable_collections
from core.tenancy.web_sessions import StoredSession, WebSessions

log = logging.getLogger(__name__)

# The public playground answers from the web door's mapping (`docrag workspace map --platform web
# playground C`), else the default collection: what adapters/web/playground.py serves.
PUBLIC_PLATFORM, PUBLIC_WORKSPACE = "web", "playground"


@dataclass
class SignIn:
    sessions: WebSessions
    database: sessionmaker[Session]
    providers: Mapping[str, Provider]
    states: OAuthStateStore  # one-time, expiring `state` values (slack_sdk's SQLAlchemy store)
    access: PlaygroundAccess
    default_collection: str
    public_url: str | None = None  # DOCRAG_PUBLIC_URL: the base of redirect URLs

    def viewer(self) -> Viewer | None:
        """The signed-in viewer of this request, else an anonymous one on a public playground, else None."""
        token = request.cookies.get(SESSION_COOKIE, "")
        stored = self.sessions.find(token) if token else None
        if stored is not None:
            viewer = self._signed_in(stored, token)
            if viewer is not None:
                return viewer
        if self.access.public:
            return Viewer(id=ANONYMOUS, name="", provider="", workspaces=(), collections=(self._public_collection(),))
        return None

    def _signed_in(self, stored: StoredSession, token: str) -> Viewer | None:
        identity = stored.identity
        with self.database() as session:
            collections = readable_collections(session, identity.provider, identity.workspaces, self.default_collection)
        if not collections:  # every workspace unmapped (or uninstalled) since sign-in
            return None
        return Viewer(
            id=viewer_id(identity.provider, identity.workspaces, identity.user_id),
            name=identity.name, provider=identity.provider, workspaces=identity.workspaces,
            collections=collections, csrf=csrf_token_for(token),
        )

    def _public_collection(self) -> str:
        with self.database() as session:
            return collection_name_for(session, PUBLIC_PLATFORM, PUBLIC_WORKSPACE, self.default_collection)

    def secure_cookies(self) -> bool:
        """Secure cookies unless the process listens on loopback only (plain-HTTP `make run`)."""
        return request.is_secure or not self.access.loopback

    def redirect_uri(self, provider: str) -> str:
        base = (self.public_url or request.host_url).rstrip("/")
        return f"{base}/signin/{provider}/callback"


def viewer_id(provider: str, workspaces: tuple[str, ...], user: str) -> str:
    """Slack user ids are per workspace ("slack:T0123:U0456"); Discord ids are global ("discord:8123")."""
    return f"slack:{workspaces[0]}:{user}" if provider == "slack" else f"{provider}:{user}"


def csrf_token_for(session_token: str) -> str:
    """The session's CSRF token: derived from its secret token, so nothing more is stored, and a
    page's token is worthless with any other session."""
    return hmac.new(session_token.encode(), b"docrag-csrf", hashlib.sha256).hexdigest()[:43]
