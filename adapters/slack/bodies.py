"""Is a request body shaped like something Slack sends? Checked before Bolt parses it.

Slack posts JSON objects (Events API) or url-encoded forms (slash commands; interactivity as a
form whose ``payload`` field is a JSON object). Anything else would make Bolt's body parser raise
(a 500 with a traceback); it gets a short 400 instead.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qsl

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def malformed_reason(raw: str, content_type: str | None) -> str | None:
    """Why this body is not one Slack sends, or None when it could be."""
    if not raw.strip():
        return "empty body"
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == JSON:
        return None if _is_json_object(raw) else "body is not a JSON object"
    if kind == FORM:
        return _form_reason(raw)
    return "unsupported content type (Slack sends application/json or application/x-www-form-urlencoded)"


def _form_reason(raw: str) -> str | None:
    try:
        form = dict(parse_qsl(raw, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        return "body is not a url-encoded form"
    if "payload" in form and not _is_json_object(form["payload"]):
        return "form field payload is not a JSON object"
    return None


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
