"""Reading request fields; every complaint names the field (``question: is required``)."""
from __future__ import annotations

import re
from typing import Any

from flask import request
from werkzeug.exceptions import UnsupportedMediaType

from adapters.web.errors import FieldError
from adapters.web.openapi import MAX_URL_CHARS, URL_PATTERN

MAX_DB_INT = 2**31 - 1  # ids are PostgreSQL integers: a bigger number can only be "not found"
_URL = re.compile(URL_PATTERN)


def json_object(allowed: set[str]) -> dict[str, Any]:
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json).")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise FieldError("body", "must be a JSON object")
    for name in body:
        if name not in allowed:
            raise FieldError(str(name), f"is not a known field (known: {', '.join(sorted(allowed))})")
    return body


def text(body: dict[str, Any], name: str, *, required: bool = False, max_chars: int = 10_000) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise FieldError(name, "is required")
        return None
    if not isinstance(value, str):
        raise FieldError(name, "must be a string")
    return plain_text(name, value, max_chars=max_chars)


def plain_text(name: str, value: str, *, max_chars: int) -> str:
    """Text PostgreSQL can store: valid Unicode without NUL; long text is refused rather than cut."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(name, "must be valid Unicode text") from None
    if "\x00" in value:
        raise FieldError(name, "must not contain NUL characters")
    if len(value) > max_chars:
        raise FieldError(name, f"is longer than {max_chars} characters")
    return value


def matching(name: str, value: str | None, pattern: re.Pattern[str], rule: str) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        raise FieldError(name, rule)
    return value


def web_url(name: str, value: str) -> str:
    """An http(s) URL as the OpenAPI description defines it: ASCII, no spaces, a host."""
    value = plain_text(name, value, max_chars=MAX_URL_CHARS)
    if not _URL.fullmatch(value):
        raise FieldError(name, "must be an http:// or https:// URL (ASCII, no spaces)")
    return value


def int_arg(name: str, *, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise FieldError(name, f"must be a whole number from {low} to {high}")
    return int(raw)
