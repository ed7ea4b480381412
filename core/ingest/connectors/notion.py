"""Notion pages through the official API, with the kept client ``notion-client``.

Each sync lists the pages shared with the integration (``search``, 100 a request; the client
retries 429s as their Retry-After asks), keeps those under the chosen root page (or all of them),
and fetches a page's blocks only when its ``last_edited_time`` is not the stored one. Parent pages
become the heading path; citations link to the page in Notion.

Notion rounds ``last_edited_time`` down to the minute, so an edit made in the same minute as a
sync would keep the old time: a page edited in the last two minutes has no version, and is
fetched and compared by content on the next sync too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import httpx
from notion_client import Client
from notion_client.errors import NotionClientErrorBase
from notion_client.helpers import collect_paginated_api, iterate_paginated_api

from core.errors import DocumentError
from core.ingest.connectors.notion_blocks import blocks_to_markdown
from core.ingest.sources import SourceItem

SETTLED_AFTER = timedelta(minutes=2)
_NOTION_ERRORS = (NotionClientErrorBase, httpx.HTTPError)


@dataclass(frozen=True)
class NotionPages:
    token: str = field(repr=False)
    root_page: str | None = None  # a page id: that page and everything under it; None: every shared page
    base_url: str = "https://api.notion.com"

    @property
    def root(self) -> str:
        return f"notion://page/{_bare(self.root_page)}" if self.root_page else "notion://workspace"


def notion_items(source: NotionPages, *, http_timeout_s: float = 20) -> Iterator[SourceItem]:
    client = Client(auth=source.token, base_url=source.base_url, timeout_ms=int(http_timeout_s * 1000))
    pages = _shared_pages(client)
    root = _bare(source.root_page) if source.root_page else None
    if root and root not in pages:
        raise DocumentError(f"Notion page {source.root_page} is not shared with the integration")
    now = datetime.now(timezone.utc)
    for page_id, page in pages.items():
        chain = _ancestors(page_id, pages)
        if root and root != page_id and root not in chain:
            continue
        yield _item(client, source, page, [pages[a] for a in reversed(chain)], now)


def _shared_pages(client: Client) -> dict[str, dict[str, Any]]:
    try:
        found = iterate_paginated_api(client.search, filter={"property": "object", "value": "page"}, page_size=100)
        return {_bare(p["id"]): p for p in found if not p.get("archived") and not p.get("in_trash")}
    except _NOTION_ERRORS as exc:
        raise DocumentError(f"cannot list Notion pages: {_reason(exc)}") from None


def _ancestors(page_id: str, pages: dict[str, dict[str, Any]]) -> list[str]:
    """Parent page ids, nearest first, as far as they are pages shared with the integration."""
    chain: list[str] = []
    current = pages[page_id]
    while (current.get("parent") or {}).get("type") == "page_id":
        parent = _bare(current["parent"]["page_id"])
        if parent not in pages or parent in chain:
            break
        chain.append(parent)
        current = pages[parent]
    return chain


def _item(
    client: Client, source: NotionPages, page: dict[str, Any], parents: list[dict[str, Any]], now: datetime
) -> SourceItem:
    page_id = _bare(page["id"])
    title = page_title(page)

    def children(block_id: str) -> list[dict[str, Any]]:
        return collect_paginated_api(client.blocks.children.list, block_id=block_id, page_size=100)

    def fetch() -> tuple[bytes, str | None]:
        try:
            body = blocks_to_markdown(children(page["id"]), children)
        except _NOTION_ERRORS as exc:
            raise DocumentError(f"cannot read Notion page {title!r}: {_reason(exc)}") from None
        return f"# {title}\n\n{body}\n".encode(), "text/markdown; charset=utf-8"

    edited = page.get("last_edited_time")
    return SourceItem(
        uri=f"notion://page/{page_id}",
        name=f"{page_id}.md",
        link=page.get("url") or f"https://www.notion.so/{page_id}",
        fetch=fetch,
        root=source.root,
        version=edited if edited and _settled(edited, now) else None,
        heading_prefix=tuple(page_title(p) for p in parents),
    )


def page_title(page: dict[str, Any]) -> str:
    for prop in (page.get("properties") or {}).values():
        if prop.get("type") == "title":
            text = "".join(t.get("plain_text", "") for t in prop.get("title") or [])
            if text.strip():
                return text.strip()
    return "Untitled"


def _settled(edited: str, now: datetime) -> bool:
    try:
        return now - datetime.fromisoformat(edited.replace("Z", "+00:00")) >= SETTLED_AFTER
    except ValueError:
        return False


def _bare(notion_id: str | None) -> str:
    return (notion_id or "").replace("-", "").lower()


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if status in (401, 403):
        return f"access refused (HTTP {status}); check the integration token and what is shared with it"
    return f"HTTP {status} {code or ''}".strip() if status else type(exc).__name__
