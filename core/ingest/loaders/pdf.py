"""PDF text layers, one section per page (pypdf)."""
from __future__ import annotations

import io
import logging

from core.errors import DocumentError
from core.ingest.loaders.cleaning import INVISIBLE, collapse, normalise
from core.ingest.loaders.document import LoadedDocument, Section, title_from_name
from core.ingest.loaders.pdf_layout import (
    join_broken_urls,
    join_hyphenated,
    known_words,
    outline_starts,
    split_at_headings,
    strip_page_furniture,
)


def load_pdf(data: bytes, name: str) -> LoadedDocument:
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency
        raise DocumentError(f"PDF support is not installed ({exc})") from None
    # pypdf warns once per glyph run about fonts it reads anyway ("fontTools is required to fully
    # parse..."): thousands of lines for one manual, nothing a person ingesting it can act on.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if b"%PDF-" not in data[:1024]:
        raise DocumentError("not a PDF file (it does not start with %PDF-)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (DependencyError, NotImplementedError):
                ok = 0
            if not ok:
                raise DocumentError("the PDF is encrypted (password protected)")
        pages = list(reader.pages)
    except DocumentError:
        raise
    except (FileNotDecryptedError, DependencyError):
        raise DocumentError("the PDF is encrypted (password protected)") from None
    except Exception as exc:
        raise DocumentError(f"broken PDF: {short_reason(exc)}") from None
    if not pages:
        raise DocumentError("the PDF has no pages")

    title = ""
    try:
        meta = reader.metadata
        if meta is not None and meta.title:
            title = collapse(str(meta.title))
    except Exception:
        title = ""

    texts: list[str] = []
    failures = 0
    for page in pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception:
            failures += 1
            texts.append("")
    texts = strip_page_furniture([t.replace("\x00", "") for t in texts])
    words = known_words(texts)
    starts = outline_starts(reader)
    current: tuple[str, ...] = ()
    sections: list[Section] = []
    for number, raw in enumerate(texts, start=1):
        body = normalise(join_broken_urls(join_hyphenated(raw, words)).translate(INVISIBLE), keep_indent=False)
        parts, current = split_at_headings(body, starts.get(number - 1, []), current)
        for path, text in parts:
            # before the outline's first entry (title page, copyright) a page is its number
            sections.append(Section(path or (f"Page {number}",), f"page={number}", text))
    if not sections:
        if failures == len(pages):
            raise DocumentError("broken PDF: no page could be read")
        raise DocumentError("no text found in the PDF (scanned images? text recognition is not supported)")
    return LoadedDocument(title or title_from_name(name), sections)


def short_reason(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."
