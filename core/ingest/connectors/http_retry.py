"""GET with the patience an API asks for: Retry-After on 429 and 503, a short back-off on other 5xx.

Confluence has no kept Python client that fits (atlassian-python-api wraps every Atlassian product
over requests, a second HTTP stack); its REST API needs three GETs, so httpx and this loop do.
"""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import httpx

from core.errors import DocumentError

MAX_ATTEMPTS = 5
MAX_WAIT_S = 60.0


def get_json(
    client: httpx.Client,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """The JSON body of a GET, retried as the server asks; ``DocumentError`` naming ``what`` otherwise."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = client.get(url, params=params)
        except httpx.HTTPError as exc:
            if attempt == MAX_ATTEMPTS:
                raise DocumentError(f"cannot reach {what}: {type(exc).__name__}") from None
            sleep(min(2.0**attempt, MAX_WAIT_S))
            continue
        if response.status_code in (429, 503) or response.status_code >= 500:
            if attempt == MAX_ATTEMPTS:
                break
            sleep(_wait_s(response, attempt))
            continue
        if response.status_code in (401, 403):
            raise DocumentError(f"{what}: access refused (HTTP {response.status_code}); check the credentials")
        if response.status_code == 404:
            raise DocumentError(f"{what}: not found (HTTP 404)")
        if response.status_code >= 400:
            raise DocumentError(f"{what}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise DocumentError(f"{what}: the response is not JSON") from None
    raise DocumentError(f"{what}: still HTTP {response.status_code} after {MAX_ATTEMPTS} attempts")


def _wait_s(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after", "").strip()
    if header:
        try:
            return min(max(float(header), 0.0), MAX_WAIT_S)
        except ValueError:
            try:
                delta = parsedate_to_datetime(header).timestamp() - time.time()
                return min(max(delta, 0.0), MAX_WAIT_S)
            except (TypeError, ValueError):
                pass
    return min(2.0 ** (attempt - 1), MAX_WAIT_S)
