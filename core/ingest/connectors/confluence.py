"""A Confluence space through its REST API (Cloud and Data Center: ``/rest/api/content``).

Each sync lists the space's current pages with their version and ancestors, 100 a request,
following ``_links.next``. A page's body (``export_view``: macros rendered, code blocks as
``<pre>``) is fetched only when its version number is not the stored one. The parent pages
become the heading path; citations link to the page in Confluence. A page's identity is its id,
so a renamed or moved page keeps its document.

Authentication: Cloud takes an account e-mail and an API token (HTTP basic); Data Center a
personal access token (bearer), given without an e-mail.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urljoin

import httpx

from core.ingest.connectors.http_retry import get_json
from core.ingest.sources import USER_AGENT, SourceItem

PAGE_SIZE = 100


@dataclass(frozen=True)
class ConfluenceSpace:
    base_url: str  # the wiki's root: https://example.atlassian.net/wiki, or a Data Center URL
    space: str  # the space key, e.g. DOCS
    token: str = field(repr=False)
    email: str | None = None  # with an e-mail: Cloud basic auth; without: a Data Center bearer token

    @property
    def root(self) -> str:
        return f"{self.base_url.rstrip('/')}/spaces/{self.space}"


def confluence_items(
    space: ConfluenceSpace, *, http_timeout_s: float = 20, sleep: Callable[[float], None] | None = None
) -> Iterator[SourceItem]:
    """One item per current page of the space; bodies are fetched lazily, by ``fetch()``."""
    client = _client(space, http_timeout_s)
    base = space.base_url.rstrip("/")
    retry = {"sleep": sleep} if sleep else {}
    url: str | None = f"{base}/rest/api/content"
    params: dict[str, Any] | None = {
        "spaceKey": space.space,
        "type": "page",
        "status": "current",
        "expand": "version,ancestors",
        "limit": PAGE_SIZE,
    }
    while url:
        listing = get_json(client, url, params=params, what=f"Confluence space {space.space}", **retry)
        for page in listing.get("results", []):
            yield _item(client, space, page, retry)
        url = _next_url(base, listing)
        params = None  # the next link carries them


def _client(space: ConfluenceSpace, timeout_s: float) -> httpx.Client:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if space.email:
        return httpx.Client(auth=(space.email, space.token), headers=headers, timeout=timeout_s)
    headers["Authorization"] = f"Bearer {space.token}"
    return httpx.Client(headers=headers, timeout=timeout_s)


def _next_url(base: str, listing: dict[str, Any]) -> str | None:
    links = listing.get("_links") or {}
    following = links.get("next")
    if not following:
        return None
    # Confluence gives it relative to the wiki's base (".../wiki" on Cloud).
    return urljoin((links.get("base") or base).rstrip("/") + "/", following.lstrip("/"))


def _item(client: httpx.Client, space: ConfluenceSpace, page: dict[str, Any], retry: dict) -> SourceItem:
    base = space.base_url.rstrip("/")
    page_id = str(page["id"])
    title = page.get("title") or f"Page {page_id}"
    webui = (page.get("_links") or {}).get("webui") or f"/pages/viewpage.action?pageId={page_id}"

    def fetch() -> tuple[bytes, str | None]:
        found = get_json(
            client,
            f"{base}/rest/api/content/{page_id}",
            params={"expand": "body.export_view"},
            what=f"Confluence page {title!r}",
            **retry,
        )
        body = ((found.get("body") or {}).get("export_view") or {}).get("value") or ""
        document = f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
        return document.encode(), "text/html; charset=utf-8"

    return SourceItem(
        uri=f"{base}/pages/{page_id}",
        name=f"{page_id}.html",
        link=urljoin(base + "/", webui.lstrip("/")),
        fetch=fetch,
        root=space.root,
        version=str((page.get("version") or {}).get("number") or "") or None,
        heading_prefix=tuple(a.get("title", "") for a in page.get("ancestors") or [] if a.get("title")),
    )
