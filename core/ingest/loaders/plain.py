"""Plain text: one section, titled after the file."""
from __future__ import annotations

from core.ingest.loaders.cleaning import normalise
from core.ingest.loaders.document import LoadedDocument, Section, title_from_name


def load_text(text: str, name: str) -> LoadedDocument:
    body = normalise(text)
    first = body.split("\n", 1)[0].strip() if body else ""
    title = first if first and len(first) < 100 else title_from_name(name)
    sections = [Section((), None, body)] if body else []
    return LoadedDocument(title, sections)


