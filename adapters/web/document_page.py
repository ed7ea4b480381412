"""Ingested documents as pages of the playground: what a source link opens when the document has
no web address of its own.

A folder ingested without --base-url links its documents relative to the folder
(``guide/install.md#steps``), and an API upload without a link as ``upload:name``. Neither opens
from a browser, so the playground links them to ``/docs/<collection>/<link>`` and serves the stored
text there: escaped (document text never becomes markup), one section per heading with the
section's anchor as its id, so ``#steps`` lands on it. Only the collection the playground answers
from is served: the page needs no key, and other collections may belong to API key holders.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote, unquote, urlsplit

from flask import Blueprint, abort, render_template

from core.questions.engine import Engine
from core.ingest import catalog

ROUTE_PREFIX = "/docs"
LOCAL_SCHEMES = ("", "upload")  # relative links (ingested folders) and API uploads


def document_href(collection: str, source: str) -> str | None:
    """Where the playground serves a source that has no web address, or None for any other source."""
    base, hash_, anchor = source.partition("#")
    if not base or urlsplit(base).scheme.lower() not in LOCAL_SCHEMES or base.startswith("/"):
        return None
    path = quote(unquote(base), safe="/")
    return f"{ROUTE_PREFIX}/{quote(collection, safe='')}/{path}{hash_}{quote(anchor, safe='')}"


@dataclass(frozen=True)
class Section:
    heading: str
    anchor: str | None
    paragraphs: list[str]


def sections(chunks: list[catalog.StoredChunk]) -> list[Section]:
    """Consecutive chunks of one section joined back together, without the overlap the chunker
    repeats at the start of a chunk (the previous chunk's last paragraphs)."""
    result: list[Section] = []
    for chunk in chunks:
        paragraphs = [p for p in chunk.text.split("\n\n") if p.strip()]
        previous = result[-1] if result else None
        if previous and (previous.heading, previous.anchor) == (chunk.heading, chunk.anchor):
            previous.paragraphs.extend(paragraphs[_overlap(previous.paragraphs, paragraphs) :])
        else:
            result.append(Section(chunk.heading, chunk.anchor, paragraphs))
    return result


def _overlap(before: list[str], after: list[str]) -> int:
    for size in range(min(len(before), len(after)), 0, -1):
        if before[-size:] == after[:size]:
            return size
    return 0


def add_document_page(blueprint: Blueprint, engine: Engine, served_collection: Callable[[], str]) -> None:
    """``/docs/<collection>/<link>`` on the playground's blueprint (its headers, CSP and error pages)."""

    @blueprint.get(f"{ROUTE_PREFIX}/<collection>/<path:link>")
    def document(collection: str, link: str):
        if collection != served_collection():
            abort(404, description="No such document here.")
        found = catalog.find_document(engine.sessions, collection, sorted({link, quote(link, safe="/")}))
        if found is None:
            abort(404, description="No such document here. It may have been removed since this answer was given.")
        return render_template(
            "playground_document.html",
            document=found,
            path=unquote(found.link),
            collection=collection,
            sections=sections(found.chunks),
        )
