"""Notion blocks to Markdown, which the Markdown loader then splits into sections.

Only the text a reader sees is kept: headings, paragraphs, list items, quotes, callouts, toggles,
code with its language, tables, captions and link targets. Child pages and databases are
documents of their own and are left out of their parent.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

Children = Callable[[str], list[dict[str, Any]]]  # block id -> its child blocks, in order

_LIST_MARKERS = {"bulleted_list_item": "- ", "numbered_list_item": "1. ", "to_do": "- "}
_SKIPPED = {"child_page", "child_database", "divider", "table_of_contents", "breadcrumb", "unsupported"}


def rich_text(items: Iterable[dict[str, Any]] | None) -> str:
    parts = []
    for item in items or []:
        text = item.get("plain_text", "")
        if (item.get("annotations") or {}).get("code") and text:
            text = f"`{text}`"
        href = item.get("href")
        if href and text and href != text:
            text = f"[{text}]({href})"
        parts.append(text)
    return "".join(parts)


def blocks_to_markdown(blocks: list[dict[str, Any]], children: Children, depth: int = 0) -> str:
    lines: list[str] = []
    for block in blocks:
        lines.extend(_block_lines(block, children, depth))
    return "\n".join(lines)


def _block_lines(block: dict[str, Any], children: Children, depth: int) -> list[str]:
    kind = block.get("type", "")
    if kind in _SKIPPED:
        return []
    value = block.get(kind) or {}
    indent = "  " * depth
    text = rich_text(value.get("rich_text"))
    nested = _nested(block, children, depth + 1) if kind not in ("table", "code") else ""
    if kind.startswith("heading_"):
        level = int(kind[-1]) + 1  # the page title is the only "#" heading
        return ["", "#" * level + " " + text, "", nested] if nested else ["", "#" * level + " " + text, ""]
    if kind in _LIST_MARKERS:
        marker = _LIST_MARKERS[kind]
        if kind == "to_do":
            marker += "[x] " if value.get("checked") else "[ ] "
        return [indent + marker + text] + ([nested] if nested else [])
    if kind == "code":
        language = (value.get("language") or "").replace("plain text", "")
        return ["", f"```{language}", text, "```", ""]
    if kind == "table":
        return ["", *_table(block, children), ""]
    if kind in ("quote", "callout"):
        return ["", *(f"> {line}" for line in text.splitlines() or [""]), *([nested] if nested else []), ""]
    if kind in ("image", "video", "file", "pdf"):
        caption = rich_text(value.get("caption"))
        return [caption, ""] if caption else []
    if kind in ("bookmark", "embed", "link_preview"):
        url = value.get("url", "")
        caption = rich_text(value.get("caption"))
        return [f"[{caption or url}]({url})", ""] if url else []
    if kind == "equation":
        return [f"`{value.get('expression', '')}`", ""]
    # paragraph, toggle, template, synced_block, column_list, column, ...: their text, then their children
    return [indent + text if depth else text, *([nested] if nested else []), ""]


def _nested(block: dict[str, Any], children: Children, depth: int) -> str:
    if not block.get("has_children"):
        return ""
    return blocks_to_markdown(children(block["id"]), children, depth)


def _table(block: dict[str, Any], children: Children) -> list[str]:
    rows = [
        [rich_text(cell).replace("|", "\\|") for cell in (row.get("table_row") or {}).get("cells", [])]
        for row in children(block["id"])
        if row.get("type") == "table_row"
    ]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
    lines.insert(1, "|" + " --- |" * width)
    return lines
