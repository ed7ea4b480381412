"""Fake sign-in providers on 127.0.0.1: "Sign in with Slack" (OpenID Connect) and Discord OAuth2.

Both speak the real wire shapes, so the production clients (slack_sdk's WebClient, Authlib's
OAuth2Client) talk to them unchanged:

* the browser page ``GET /openid/connect/authorize`` (Slack) or ``GET /oauth2/authorize`` (Discord)
  approves at once as the person set with :meth:`sign_in_as`, redirecting to ``redirect_uri`` with
  a one-time ``code`` and the ``state`` it was given;
* Slack: ``POST /api/openid.connect.token`` (HTTP Basic client credentials, form ``code`` and
  ``redirect_uri``) -> ``{"ok": true, "access_token", "token_type", "id_token"}``, and
  ``POST /api/openid.connect.userInfo`` (Bearer) -> the OIDC claims with Slack's
  ``https://slack.com/team_id`` and ``https://slack.com/user_id``;
* Discord: ``POST /api/v10/oauth2/token`` -> an OAuth2 token, ``GET /api/v10/users/@me`` and
  ``GET /api/v10/users/@me/guilds`` (Bearer).

Usage::

    with FakeSlackSignIn(client_id="c", client_secret="s") as slack:
        slack.sign_in_as(team="T1", user="U1", name="Ada")
        ...settings.slack_api_url = slack.api_url
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["FakeDiscordOAuth", "FakeSlackSignIn", "Person"]


@dataclass(frozen=True)
class Person:
    user: str
    name: str
    workspaces: tuple[str, ...]  # Slack: one team id; Discord: guild ids


@dataclass
class _Grant:
    person: Person
    redirect_uri: str
    used: bool = False


@dataclass
class _FakeProvider:
    client_id: str = "signin-client"
    client_secret: str = "signin-secret"
    person: Person | None = None
    grants: dict[str, _Grant] = field(default_factory=dict)  # code -> grant
    tokens: dict[str, Person] = field(default_factory=dict)  # access token -> person
    calls: list[str] = field(default_factory=list)  # request paths, in order

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._serve(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._serve(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what a test scripts -----------------------------------------------------------------
    def approve(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """The authorization page: approve as ``person`` at once."""
        if query.get("client_id") != self.client_id or self.person is None or not query.get("redirect_uri"):
            return 400, {}, {"error": "invalid_request"}
        code = secrets.token_urlsafe(12)
        self.grants[code] = _Grant(self.person, query["redirect_uri"])
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": location}, ""

    def redeem(self, code: str, redirect_uri: str, basic: tuple[str, str] | None) -> str | None:
        """An access token for a valid, unused code and the right client; None otherwise."""
        grant = self.grants.get(code)
        if basic != (self.client_id, self.client_secret) or grant is None or grant.used:
            return None
        if grant.redirect_uri != redirect_uri:
            return None
        grant.used = True
        token = secrets.token_urlsafe(16)
        self.tokens[token] = grant.person
        return token

    # -- HTTP ----------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, verb: str) -> None:
        parts = urlsplit(handler.path)
        self.calls.append(parts.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(parts.query))
        if handler.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body))
        status, headers, payload = self.route(verb, parts.path, params, _basic(handler), _bearer(handler))
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def route(self, verb: str, path: str, params: dict[str, str], basic: tuple[str, str] | None,
              bearer: str | None) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError


class FakeSlackSignIn(_FakeProvider):
    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def sign_in_as(self, *, team: str, user: str, name: str = "Ada Lovelace") -> None:
        self.person = Person(user, name, (team,))

    def route(self, verb, path, params, basic, bearer):
        if path == "/openid/connect/authorize":
            return self.approve(params)
        if path == "/api/openid.connect.token":
            token = self.redeem(params.get("code", ""), params.get("redirect_uri", ""), basic)
            if token is None:
                return 200, {}, {"ok": False, "error": "invalid_code"}
            return 200, {}, {"ok": True, "access_token": token, "token_type": "Bearer", "id_token": "not.checked.here"}
        if path == "/api/openid.connect.userInfo":
            person = self.tokens.get(bearer or "")
            if person is None:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            team = person.workspaces[0]
            return 200, {}, {
                "ok": True, "sub": person.user, "https://slack.com/user_id": person.user,
                "https://slack.com/team_id": team, "https://slack.com/team_name": f"Team {team}",
                "name": person.name, "email_verified": False,
            }
        return 404, {}, {"ok": False, "error": "unknown_method"}


class FakeDiscordOAuth(_FakeProvider):
    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v10"

    def sign_in_as(self, *, user: str, guilds: tuple[str, ...], name: str = "grace") -> None:
        self.person = Person(user, name, guilds)

    def route(self, verb, path, params, basic, bearer):
        if path == "/oauth2/authorize":
            return self.approve(params)
        if path == "/api/v10/oauth2/token" and verb == "POST":
            if params.get("grant_type") != "authorization_code":
                return 400, {}, {"error": "unsupported_grant_type"}
            token = self.redeem(params.get("code", ""), params.get("redirect_uri", ""), basic)
            if token is None:
                return 400, {}, {"error": "invalid_grant"}
            return 200, {}, {"access_token": token, "token_type": "Bearer", "expires_in": 604800,
                             "refresh_token": secrets.token_urlsafe(8), "scope": "identify guilds"}
        person = self.tokens.get(bearer or "")
        if path.startswith("/api/v10/users/@me") and person is None:
            return 401, {}, {"message": "401: Unauthorized", "code": 0}
        if path == "/api/v10/users/@me":
            return 200, {}, {"id": person.user, "username": person.name, "global_name": person.name.title(),
                             "discriminator": "0", "avatar": None}
        if path == "/api/v10/users/@me/guilds":
            return 200, {}, [{"id": g, "name": f"Guild {g}", "owner": False, "permissions": "0"} for g in person.workspaces]
        return 404, {}, {"message": "404: Not Found", "code": 0}


def _basic(handler: BaseHTTPRequestHandler) -> tuple[str, str] | None:
    scheme, _, value = (handler.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user, password


def _bearer(handler: BaseHTTPRequestHandler) -> str | None:
    scheme, _, value = (handler.headers.get("Authorization") or "").partition(" ")
    return value if scheme.lower() == "bearer" else None
