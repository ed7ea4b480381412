"""Flask blueprint: ``POST /slack/events`` (events, commands, interactivity) and the OAuth pages."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Request, Response, request
from slack_bolt import App, BoltContext
from slack_bolt.adapter.flask.handler import to_flask_response
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context

from adapters.slack.bodies import FORM, malformed_reason

log = logging.getLogger(__name__)


def slack_blueprint(bolt: App) -> Blueprint:
    blueprint = Blueprint("slack", __name__)

    @blueprint.post("/slack/events")
    def events() -> Response:
        reason = malformed_reason(request.get_data(as_text=True), request.content_type)
        if reason is not None:  # Bolt's parser would raise (a 500 and a traceback): say what is wrong
            log.info("slack.malformed_request reason=%s", reason)
            return Response(f"Bad request: {reason}.\n", status=400, mimetype="text/plain")
        return to_flask_response(bolt.dispatch(to_bolt_request(request)))

    flow = bolt.oauth_flow
    if flow is not None:

        @blueprint.get(flow.install_path)
        def install() -> Response:
            return to_flask_response(flow.handle_installation(to_bolt_request(request)))

        @blueprint.get(flow.redirect_uri_path)
        def oauth_redirect() -> Response:
            return to_flask_response(flow.handle_callback(to_bolt_request(request)))

    return blueprint


def to_bolt_request(req: Request) -> BoltRequest:
    """Flask request -> BoltRequest, with the raw body untouched so the signature still verifies.

    Bolt takes any form body containing the substring "payload" for an interactivity post, so
    ``/ask what is the payload format`` would arrive empty (and get a 404). A form that has a
    ``command`` field and no ``payload`` field is a slash command: parse it as one.
    """
    raw = req.get_data(as_text=True)
    bolt_request = BoltRequest(body=raw, query=req.query_string.decode("utf-8"), headers=req.headers)  # type: ignore[arg-type]
    form = _slash_command_form(raw, bolt_request.content_type)
    if form is not None:
        bolt_request.body = form
        bolt_request.context = build_context(BoltContext(), form)
    return bolt_request


def _slash_command_form(raw: str, content_type: str | None) -> dict[str, Any] | None:
    if content_type != FORM or "payload" not in raw:
        return None
    form = dict(parse_qsl(raw, keep_blank_values=True))
    return form if "command" in form and "payload" not in form else None
