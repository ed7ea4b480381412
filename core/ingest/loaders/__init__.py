"""Turn one document's bytes into a title and titled sections.

``load_document`` picks a format from the content type (web pages) or the suffix of the
name (files), decodes and parses it, and returns a :class:`LoadedDocument` whose sections
each carry the chain of headings they sit under, an anchor for linking to them, and
their body as plain text. Paragraphs are separated by blank lines; list items and table
rows sit one per line; code blocks keep their text and indentation.

Every section's ``heading_path`` starts at the document's top heading when there is one
(Markdown/HTML ``h1``, the reStructuredText document title): ``("Guide", "Install")``.
Text before the first heading gets ``heading_path == ()``.

A document that cannot be read raises :class:`core.errors.DocumentError` with a reason a
person understands. Nothing here touches the network, the file system or a database.

Speed: Markdown is the bulk of most corpora, so it gets a fast path. markdown-it-py finds
the block structure (ATX/setext headings, fenced and indented code, HTML blocks,
paragraphs); its slow list/blockquote/table/inline rules are switched off and the inline
markup of each paragraph is removed with a few regular expressions instead. List markers
and table pipes therefore stay in the text as plain-text structure (``- item``,
``a | b``), which is what we want to index anyway.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from core.errors import DocumentError, NothingToIndex
from core.ingest.loaders.cleaning import decode
from core.ingest.loaders.document import LoadedDocument, Section, github_slug
from core.ingest.loaders.html import load_html
from core.ingest.loaders.includes import included_files as markdown_included_files
from core.ingest.loaders.markdown import load_markdown
from core.ingest.loaders.pdf import load_pdf
from core.ingest.loaders.plain import load_text
from core.ingest.loaders.rst import load_rst, rst_included_files

__all__ = [
    "LoadedDocument",
    "SUPPORTED_SUFFIXES",
    "Section",
    "load_document",
    "included_files",
    "github_slug",
]


_FORMAT_BY_SUFFIX = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",  # Docusaurus: Markdown with JSX components (their tags are dropped, their text kept)
    ".rst": "rst",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_FORMAT_BY_SUFFIX)

_FORMAT_BY_TYPE = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "text/x-rst": "rst",
    "text/prs.fallenstein.rst": "rst",
}


def load_document(
    data: bytes,
    *,
    name: str,
    content_type: str | None = None,
    source_path: Path | None = None,
    include_root: Path | None = None,
) -> LoadedDocument:
    """Parse one document.

    ``name`` is a file name or URL path; it chooses the format when ``content_type`` does
    not (absent, ``text/plain`` or generic such as ``application/octet-stream`` — servers
    often send Markdown as ``text/plain``) and gives the fallback title.
    ``source_path`` and ``include_root`` are given for files read from an ingested folder:
    reStructuredText ``.. include::`` and Markdown snippets are then read from files inside
    ``include_root`` only (anything else is left out, as for web pages).
    Raises ``DocumentError`` for unsupported types, undecodable or unparsable bytes and
    documents without any text.
    """
    fmt = _detect_format(data, name, content_type)
    if fmt == "pdf":
        doc = load_pdf(data, name)
    else:
        text = decode(data, content_type, sniff_html_meta=(fmt == "html"))
        if fmt == "rst":
            doc = load_rst(text, name, source_path=source_path, include_root=include_root)
        elif fmt == "markdown":
            doc = load_markdown(text, name, source_path=source_path, include_root=include_root)
        else:
            doc = _parse_text(fmt, text, name)
    if not doc.sections:
        raise NothingToIndex("no text to index")
    return _storable_document(doc)


def included_files(data: bytes, *, name: str, source_path: Path, include_root: Path) -> list[Path]:
    """The files a document of an ingested folder reads in (rST includes, Markdown snippets):
    a change to one of them changes the document, so re-ingest hashes them with it."""
    if b"include::" in data and _detect_format(data, name, None) == "rst":
        return rst_included_files(data, source_path, include_root)
    if (b"8<-" in data or b"{*" in data or b"include}" in data) and _detect_format(data, name, None) == "markdown":
        return markdown_included_files(decode(data, None), source_path, include_root)
    return []


def _parse_text(fmt: str, text: str, name: str) -> LoadedDocument:
    parse = {"markdown": load_markdown, "rst": load_rst, "html": load_html}.get(fmt, load_text)
    return parse(text, name)


# PostgreSQL text holds any Unicode but NUL, and UTF-8 cannot carry lone surrogates (from a bad
# decoder, a PDF's text layer or a parser's internal markers): whatever a parser produced, these
# never reach the database, so no document content can abort a store.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable(text: str) -> str:
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def _storable_document(doc: LoadedDocument) -> LoadedDocument:
    sections = [
        Section(tuple(_storable(h) for h in s.heading_path), s.anchor and _storable(s.anchor), _storable(s.text))
        for s in doc.sections
    ]
    return LoadedDocument(_storable(doc.title), sections, doc.missing_includes)


def _media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _suffix(name: str) -> str:
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return PurePosixPath(base).suffix.lower() if base else ""


def _detect_format(data: bytes, name: str, content_type: str | None) -> str:
    media = _media_type(content_type)
    by_type = _FORMAT_BY_TYPE.get(media)
    suffix = _suffix(name)
    by_suffix = _FORMAT_BY_SUFFIX.get(suffix)
    if by_type in (None, "text") and by_suffix:
        return by_suffix
    if by_type:
        return by_type
    if data[:5] == b"%PDF-":
        return "pdf"
    if media and media != "application/octet-stream":
        raise DocumentError(f"unsupported content type {media}")
    if suffix:
        raise DocumentError(f"unsupported file type {suffix}")
    raise DocumentError("unsupported file type (the name has no suffix)")


