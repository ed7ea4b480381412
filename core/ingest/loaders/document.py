"""What every loader returns: a title and titled sections, and the helpers that build them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class Section:
    heading_path: tuple[str, ...]  # e.g. ("Configuration", "Rate limits")
    anchor: str | None  # fragment for a link to this section ("rate-limits"), None when the format has none
    text: str  # plain-text body of the section


@dataclass(frozen=True)
class LoadedDocument:
    title: str
    sections: list[Section]
    # Files the document includes that were not found inside the include root (Markdown snippets
    # and code includes): the ingest reports them, as a wider --include-root may read them.
    missing_includes: tuple[str, ...] = ()


def title_from_name(name: str) -> str:
    """``getting_started-guide.md`` -> ``Getting started guide``."""
    base = unquote(name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    stem = base
    if "." in base[1:]:
        stem = base.rsplit(".", 1)[0]
    words = " ".join(re.sub(r"[_\-]+", " ", stem).split())
    if not words:
        return "Untitled"
    return words[0].upper() + words[1:]


_SLUG_DROP = re.compile(r"[^\w\- ]")


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces -> '-'."""
    return _SLUG_DROP.sub("", text.lower()).replace(" ", "-")


class Slugger:
    """GitHub-style slugs made unique within one document: ``x``, ``x-1``, ``x-2``..."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def reserve(self, anchor: str) -> None:
        self._seen.setdefault(anchor, 0)

    def slug(self, text: str) -> str | None:
        base = github_slug(text)
        if not base:
            return None
        slug = base
        while slug in self._seen:
            self._seen[base] += 1
            slug = f"{base}-{self._seen[base]}"
        self._seen[slug] = 0
        return slug


class SectionBuilder:
    """Collects blocks of text under the current heading chain.

    Blocks are joined with a blank line, except consecutive blocks of the same ``group``
    (the items of one list, the rows of one table), which are joined with a line break."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._stack: list[tuple[int, str]] = []
        self._path: tuple[str, ...] = ()
        self._anchor: str | None = None
        self._blocks: list[tuple[str, object]] = []

    def heading(self, level: int, text: str, anchor: str | None) -> None:
        self.flush()
        stack = self._stack
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        self._path = tuple(h for _, h in stack)
        self._anchor = anchor

    def add(self, text: str, group: object = None) -> None:
        if text and not text.isspace():
            self._blocks.append((text, group))

    def discard(self) -> None:
        """Drop the blocks gathered under the current heading (a loader found them no content)."""
        self._blocks = []

    def flush(self) -> None:
        blocks = self._blocks
        if not blocks:
            return
        parts: list[str] = []
        prev_group: object = None
        for i, (text, group) in enumerate(blocks):
            if i:
                parts.append("\n" if group is not None and group == prev_group else "\n\n")
            parts.append(text)
            prev_group = group
        body = "".join(parts).strip("\n")
        if body.strip():
            self.sections.append(Section(self._path, self._anchor, body))
        self._blocks = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections


