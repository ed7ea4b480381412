"""JSON errors for the REST API: every failure is ``{"error": {"code", "message"}}``.

Flask hands 404 and 405 raised while *routing* only to application-wide handlers, never to a
blueprint's. So the API blueprint owns its URL space with a catch-all route that re-runs routing
over the API's own rules and answers 404 or 405 itself; the API then returns JSON errors whatever
the application around it does. :func:`install_json_errors` does the same for a whole app.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from core.errors import (
    ConfigurationError,
    DocRagError,
    EmbedderMismatch,
    InvalidInput,
    RateLimited,
    SchemaOutOfDate,
    UpstreamUnavailable,
    new_reference,
)
from core.errors import NotFound as Missing
from core.storage.faults import RETRY_AFTER_S, DatabaseUnavailable

log = logging.getLogger(__name__)

ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class FieldError(InvalidInput):
    """A request field is missing or wrong; the message starts with the field's name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify(error={"code": code, "message": message, **extra})
    response.status_code = status
    return response


def http_error(exc: HTTPException) -> Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(exc.code or 500, code, exc.description or exc.name or "error")
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


def docrag_error(exc: DocRagError) -> Response:
    if isinstance(exc, FieldError):
        return error_response(400, "invalid_field", str(exc), field=exc.field)
    if isinstance(exc, RateLimited):
        response = error_response(429, "rate_limited", str(exc))
        response.headers["Retry-After"] = str(int(exc.retry_after_s))
        return response
    if isinstance(exc, DatabaseUnavailable):
        response = error_response(503, "database_unavailable", str(exc), reference=exc.reference)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    if isinstance(exc, UpstreamUnavailable):
        return error_response(503, "upstream_unavailable", str(exc), reference=exc.reference)
    if isinstance(exc, (SchemaOutOfDate, ConfigurationError)):
        return error_response(503, "not_ready", str(exc))
    if isinstance(exc, EmbedderMismatch):
        return error_response(409, "embedder_mismatch", str(exc))
    if isinstance(exc, InvalidInput):
        return error_response(400, "invalid_input", str(exc))
    if isinstance(exc, Missing):
        return error_response(404, "not_found", str(exc))
    return error_response(400, "error", str(exc))


def unexpected_error(exc: Exception) -> Response:
    reference = new_reference()
    log.exception("web.unhandled_error path=%s reference=%s", request.path, reference)
    return error_response(500, "internal_error", f"Something went wrong on our side (reference {reference}).",
                          reference=reference)


def add_json_errors(blueprint: Blueprint) -> None:
    """JSON for every error raised inside the blueprint's views, and a catch-all for its URL space."""
    blueprint.register_error_handler(HTTPException, http_error)
    blueprint.register_error_handler(DocRagError, docrag_error)
    blueprint.register_error_handler(Exception, unexpected_error)

    @blueprint.route("/", methods=ANY_METHOD, endpoint="_unrouted_root")
    @blueprint.route("/<path:_rest>", methods=ANY_METHOD, endpoint="_unrouted")
    def unrouted(_rest: str = "") -> Response:
        raise _routing_error(blueprint.name)


def _routing_error(blueprint_name: str) -> HTTPException:
    """404 or 405 (with the allowed methods), as Flask's router would have said without the catch-all."""
    try:
        _own_rules(blueprint_name).bind("localhost").match(request.path, method=request.method)
    except (NotFound, MethodNotAllowed) as exc:
        return exc
    except RequestRedirect:  # a missing trailing slash: the API has no such URLs
        pass
    return NotFound()


def _own_rules(blueprint_name: str) -> Map:
    cache: dict[str, Map] = current_app.extensions.setdefault("docrag_api_rules", {})
    if blueprint_name not in cache:
        prefix = f"{blueprint_name}."
        rules = [
            Rule(rule.rule, methods=rule.methods, endpoint=rule.endpoint)
            for rule in current_app.url_map.iter_rules()
            if rule.endpoint.startswith(prefix) and not rule.endpoint.startswith(f"{prefix}_unrouted")
        ]
        cache[blueprint_name] = Map(rules)
    return cache[blueprint_name]


def install_json_errors(app: Flask) -> None:
    """Application-wide: every error, routing 404/405 and 413 included, as ``{"error": {...}}``."""
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(DocRagError, docrag_error)
    app.register_error_handler(Exception, unexpected_error)
