"""Who is looking at a web page, for every blueprint that needs to know: :func:`require_viewer`.

    from adapters.web.signin import current_viewer, require_viewer

    @blueprint.get("/console/")
    @require_viewer
    def overview():
        viewer = current_viewer()          # never None inside a require_viewer view
        ...viewer.collections...           # the only collections this person may see

A viewer is a signed-in person (a live server-side session), or, where an operator made the
playground public and the view allows it (``require_viewer(public_ok=True)``), an anonymous
visitor who sees the public playground's collection. Without a viewer a GET is sent to the sign-in
page (and back afterwards); any other method gets a 401 page.
"""
from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from typing import Any, Callable, TypeVar, overload
from urllib.parse import quote, urlsplit

from flask import Response, current_app, g, make_response, redirect, render_template, request

EXTENSION = "docrag_signin"  # app.extensions key of the SignIn service (adapters/web/signin/service.py)
SESSION_COOKIE = "docrag_session"
ANONYMOUS = "public"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Viewer:
    id: str  # "slack:T0123:U0456", "discord:8123...", or "public" for an anonymous visitor
    name: str
    provider: str  # "slack", "discord"; "" for an anonymous visitor
    workspaces: tuple[str, ...]  # Slack team ids or Discord guild ids that granted access
    collections: tuple[str, ...]  # what this person may read; the first is their home collection
    csrf: str = ""  # the token forms must send as csrf_token (signed-in viewers only)

    @property
    def signed_in(self) -> bool:
        return bool(self.provider)

    @property
    def home_collection(self) -> str:
        return self.collections[0]

    def can_see(self, collection: str) -> bool:
        return collection in self.collections


def current_viewer(*, public_ok: bool = True) -> Viewer | None:
    """The request's viewer (loaded once per request), or None. ``public_ok=False``: signed-in only."""
    if "docrag_viewer" not in g:
        service = current_app.extensions.get(EXTENSION)
        g.docrag_viewer = service.viewer() if service is not None else None
    viewer: Viewer | None = g.docrag_viewer
    if viewer is not None and not viewer.signed_in and not public_ok:
        return None
    return viewer


def viewer_collections() -> tuple[str, ...]:
    """The collections the current viewer may see (none without a viewer)."""
    viewer = current_viewer()
    return viewer.collections if viewer else ()


@overload
def require_viewer(view: View) -> View: ...
@overload
def require_viewer(*, public_ok: bool = False) -> Callable[[View], View]: ...


def require_viewer(view: Any = None, *, public_ok: bool = False) -> Any:
    """Decorate a view that needs a viewer; see the module docstring."""

    def decorate(function: View) -> View:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = viewer_refusal(public_ok=public_ok)
            return refusal if refusal is not None else function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


def viewer_refusal(*, public_ok: bool = False) -> Response | None:
    """None when the request has a viewer; else the sign-in redirect (GET) or a 401 page.
    Usable as a ``before_request`` hook for a whole blueprint."""
    if current_viewer(public_ok=public_ok) is not None:
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(f"/signin?next={_quote_next(request.full_path)}", code=303)
    message = "Sign in first: your session ended or you have not signed in yet."
    return make_response(render_template("playground_error.html", message=message), 401)


def csrf_refusal() -> Response | None:
    """403 unless the form's csrf_token is the signed-in viewer's and the request comes from this site."""
    viewer = current_viewer(public_ok=False)
    sent = request.form.get("csrf_token", "")
    same_token = viewer is not None and bool(viewer.csrf) and hmac.compare_digest(sent.encode(), viewer.csrf.encode())
    if same_token and same_origin():
        return None
    message = "This form expired or came from another site. Reload the page and try again."
    return make_response(render_template("playground_error.html", message=message), 403)


def same_origin() -> bool:
    origin = request.headers.get("Origin")
    return origin is None or _origin(origin) == _origin(request.host_url)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _quote_next(path: str) -> str:
    return quote(path.rstrip("?"), safe="")


def safe_next(value: str | None) -> str:
    """A local path to return to after signing in; anything else (another site, ``//host``) -> "/"."""
    value = value or "/"
    if not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n"):
        return "/"
    return value
