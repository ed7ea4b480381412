"""Sign-in pages: ``/signin`` (choose Slack or Discord), each provider's redirect and callback, and
``POST /signout``.

The flow: ``/signin/<provider>`` issues a one-time ``state`` (stored with an expiry by slack_sdk's
state store) and binds it to this browser in a short-lived cookie; the provider sends the browser
back to ``/signin/<provider>/callback`` with a code and that state. A state that is not this
browser's, already used or expired is refused (a forged or replayed callback), and so is a person
whose workspace DocRag does not know. Then a new session (a fresh token: no fixation) replaces any
previous one in this browser.

The session cookie is HttpOnly, SameSite=Lax (Strict would be dropped on the provider's redirect
back, a cross-site navigation) and Secure unless the process listens on loopback only. Lax keeps it
off cross-site POSTs; every POST also needs the session's CSRF token.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Flask, Response, abort, make_response, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from adapters.web import playground  # its security headers; a module import, since it imports us too
from adapters.web.signin.providers import SignInFailed
from adapters.web.signin.service import SignIn
from adapters.web.signin.viewer import EXTENSION, SESSION_COOKIE, csrf_refusal, current_viewer, safe_next
from core.errors import new_reference
from core.tenancy.viewer_access import known_workspaces
from core.tenancy.web_sessions import Identity

log = logging.getLogger(__name__)

STATE_COOKIE, NEXT_COOKIE = "docrag_signin_state", "docrag_signin_next"
STATE_TTL_S = 600


def signin_blueprint(signin: SignIn) -> Blueprint:
    blueprint = Blueprint("signin", __name__, template_folder="../templates")
    blueprint.record_once(lambda state: _install(state.app, signin))
    blueprint.after_request(_secure)
    blueprint.register_error_handler(HTTPException, _http_error_page)
    blueprint.register_error_handler(Exception, _unexpected_error_page)

    @blueprint.get("/signin")
    def choose() -> Response:
        viewer = current_viewer(public_ok=False)
        next_path = safe_next(request.args.get("next"))
        if viewer is not None:
            return redirect(next_path, code=303)
        return make_response(render_template("signin.html", providers=list(signin.providers.values()), next=next_path,
                                             public=signin.access.public))

    @blueprint.get("/signin/<provider>")
    def start(provider: str) -> Response:
        chosen = signin.providers.get(provider) or abort(404, description="No such way to sign in.")
        state = signin.states.issue()
        response = redirect(chosen.authorization_url(state=state, redirect_uri=signin.redirect_uri(provider)))
        options = _cookie_options(signin, max_age=STATE_TTL_S, path="/signin")
        response.set_cookie(STATE_COOKIE, state, **options)
        response.set_cookie(NEXT_COOKIE, safe_next(request.args.get("next")), **options)
        return response

    @blueprint.get("/signin/<provider>/callback")
    def finish(provider: str) -> Response:
        chosen = signin.providers.get(provider) or abort(404, description="No such way to sign in.")
        state = request.args.get("state", "")
        expected = request.cookies.get(STATE_COOKIE, "")
        if not (state and expected and hmac.compare_digest(state, expected) and signin.states.consume(state)):
            log.warning("signin.refused provider=%s reason=state", provider)
            return _refused("This sign-in link expired or did not start here. Please sign in again.", 400)
        if request.args.get("error") or not request.args.get("code"):
            return _refused(f"{chosen.label} did not sign you in. You can try again.", 400)
        try:
            identity = chosen.identity(code=request.args["code"], redirect_uri=signin.redirect_uri(provider))
        except SignInFailed as exc:
            return _refused(str(exc), 502)
        allowed = _allowed(signin, identity)
        if allowed is None:
            log.warning("signin.refused provider=%s reason=unknown_workspace", provider)
            whose = "Your Slack workspace has no" if provider == "slack" else f"None of your {chosen.label} servers has"
            return _refused(f"{whose} access to this DocRag. Ask its operator to connect it.", 403)
        return _signed_in(signin, allowed, safe_next(request.cookies.get(NEXT_COOKIE)))

    @blueprint.post("/signout")
    def sign_out() -> Response:
        refusal = csrf_refusal()
        if refusal is not None:
            return refusal
        signin.sessions.close(request.cookies.get(SESSION_COOKIE, ""))
        response = redirect("/signin", code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return blueprint


def _install(app: Flask, signin: SignIn) -> None:
    app.extensions[EXTENSION] = signin
    app.context_processor(lambda: {"viewer": current_viewer()})


def _allowed(signin: SignIn, identity: Identity) -> Identity | None:
    """The identity keeping only the workspaces DocRag knows; None when it knows none of them."""
    with signin.database() as session:
        known = known_workspaces(session, identity.provider, identity.workspaces)
    if not known:
        return None
    return Identity(identity.provider, identity.user_id, identity.name, known)


def _signed_in(signin: SignIn, identity: Identity, next_path: str) -> Response:
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        signin.sessions.close(previous)
    signin.sessions.purge_expired()  # expired rows open nothing; a sign-in is a rare enough moment to sweep them
    token = signin.sessions.open(identity)
    log.info("signin.signed_in provider=%s workspaces=%d", identity.provider, len(identity.workspaces))
    response = redirect(next_path, code=303)
    response.set_cookie(SESSION_COOKIE, token, **_cookie_options(signin, max_age=int(signin.sessions.lifetime.total_seconds())))
    response.delete_cookie(STATE_COOKIE, path="/signin")
    response.delete_cookie(NEXT_COOKIE, path="/signin")
    return response


def _cookie_options(signin: SignIn, *, max_age: int, path: str = "/") -> dict[str, Any]:
    return {"max_age": max_age, "httponly": True, "samesite": "Lax", "secure": signin.secure_cookies(), "path": path}


def _refused(message: str, status: int) -> Response:
    return make_response(render_template("signin_refused.html", message=message), status)


def _http_error_page(exc: HTTPException) -> Response:
    return make_response(render_template("playground_error.html", message=exc.description), exc.code or 500)


def _unexpected_error_page(exc: Exception) -> Response:
    reference = new_reference()
    log.exception("signin.unhandled_error reference=%s", reference)
    message = f"Something went wrong on our side (reference {reference}). Please try again."
    return make_response(render_template("playground_error.html", message=message), 500)


def _secure(response: Response) -> Response:
    for name, value in playground.SECURITY_HEADERS.items():
        response.headers[name] = value
    return response
