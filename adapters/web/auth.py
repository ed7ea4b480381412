"""API keys on requests: ``Authorization: Bearer <key>``, verified once per request.

A key sees only its collections. Any other collection, existing or not, is reported exactly like a
missing one (same status, same message), so a key cannot probe which collections exist.
"""
from __future__ import annotations

from typing import Callable

from flask import Response, g, request

from adapters.web.errors import error_response
from core.errors import NotFound
from core.tenancy.apikeys import ApiKeys, KeyInfo

_CHALLENGE = 'Bearer realm="docrag"'


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def key_checker(keys: ApiKeys, *, public_endpoints: set[str]) -> Callable[[], Response | None]:
    """A ``before_request`` hook: 401 without a valid key, except on ``public_endpoints``."""

    def check() -> Response | None:
        if request.endpoint in public_endpoints:
            return None
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return _unauthorized("Missing API key: send it as 'Authorization: Bearer <key>'.")
        info = keys.verify(token)
        if info is None:
            return _unauthorized("Invalid or revoked API key.", error="invalid_token")
        g.api_key = info
        return None

    return check


def current_key() -> KeyInfo:
    return g.api_key


def visible_collection(name: str) -> str:
    """``name`` when the request's key may use it, else the same 404 as for a collection that does not exist."""
    if not current_key().can_see(name):
        raise collection_not_found(name)
    return name


def collection_not_found(name: str) -> NotFound:
    return NotFound(f"No collection named {name!r}.")


def _unauthorized(message: str, *, error: str | None = None) -> Response:
    response = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = _CHALLENGE + (f', error="{error}"' if error else "")
    return response
