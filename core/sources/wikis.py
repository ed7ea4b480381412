"""Confluence spaces and Notion page trees as sources: targets, credentials, and the sync plan.

The connectors (core/ingest/connectors/) list every page with its version on each sync, so a plan
is always complete: the removal rule (docs/sources.md) applies to pages gone from a listing.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.errors import DocumentError, InvalidInput

if TYPE_CHECKING:
    from core.sources.sync import SyncContext, SyncPlan
    from core.storage.models import Source

_SPACE = re.compile(r"^(?P<base>https?://[^?#]+?)/spaces/(?P<key>[^/?#]+)")
_NOTION_ID = re.compile(r"([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:[?#].*)?$", re.I)


def normalised_wiki_target(kind: str, target: str) -> str:
    """Confluence: the space's URL (``<wiki base>/spaces/<KEY>``). Notion: ``workspace`` or a page id."""
    if kind == "confluence":
        found = _SPACE.match(target.strip())
        if not found or not urlsplit(found["base"]).hostname:
            raise InvalidInput(f"not a Confluence space URL: {target} (e.g. https://acme.atlassian.net/wiki/spaces/DOCS)")
        return f"{found['base']}/spaces/{found['key']}"
    if target.strip().lower() == "workspace":
        return "workspace"
    found = _NOTION_ID.search(target.strip())
    if not found:
        raise InvalidInput(f"not a Notion page URL or id: {target} (or `workspace` for every shared page)")
    return found.group(1).replace("-", "").lower()


def plan_confluence(source: Source, ctx: SyncContext) -> SyncPlan:
    from core.ingest.connectors.confluence import ConfluenceSpace, confluence_items
    from core.sources.sync import SyncPlan

    found = _SPACE.match(source.target)
    assert found is not None  # validated when the source was added
    space = ConfluenceSpace(
        base_url=found["base"], space=found["key"], token=_secret(source, ctx, "token"),
        email=_secret(source, ctx, "email", required=False),
    )
    items = list(confluence_items(space, http_timeout_s=ctx.options.http_timeout_s))
    return SyncPlan(root=space.root, items=items, complete=True, counts={"pages": len(items)})


def plan_notion(source: Source, ctx: SyncContext) -> SyncPlan:
    from core.ingest.connectors.notion import NotionPages, notion_items
    from core.sources.sync import SyncPlan

    options = source.options or {}
    pages = NotionPages(
        token=_secret(source, ctx, "token"),
        root_page=None if source.target == "workspace" else source.target,
        base_url=options.get("api_url") or "https://api.notion.com",
    )
    items = list(notion_items(pages, http_timeout_s=ctx.options.http_timeout_s))
    return SyncPlan(root=pages.root, items=items, complete=True, counts={"pages": len(items)})


def _secret(source: Source, ctx: SyncContext, role: str, *, required: bool = True) -> str | None:
    variable = (source.credentials or {}).get(role)
    value = ctx.secret(variable) if variable else None
    if required and not value:
        where = f"environment variable {variable} is not set" if variable else f"add --credential {role}=ENV_VAR"
        raise DocumentError(f"credential {role}: {where}")
    return value
