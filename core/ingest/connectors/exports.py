"""Export files, read offline: a Confluence space's HTML export and a Notion Markdown export (zip).

* Confluence (Space tools -> Export -> HTML): one ``Title_123456.html`` per page, with the page's
  breadcrumbs and its ``main-content``. The breadcrumbs below the space become the heading path;
  the space's ``index.html`` (a list of pages) is left out.
* Notion (Export -> Markdown & CSV): ``Title <32 hex id>.md`` per page, sub-pages in a folder of the
  same name. The folders become the heading path, without their ids; CSV database views are left out.
* Any other zip is read like a folder of documents.

A member's identity is ``<zip path>!/<member>``; its link is its path inside the zip (the
playground serves it at /docs/<collection>/<path>, like a file of an ingested folder).
"""
from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import quote

from core.errors import DocumentError
from core.ingest.loaders import SUPPORTED_SUFFIXES
from core.ingest.sources import MAX_DOCUMENT_BYTES, SourceItem

_NOTION_ID = re.compile(r"\s+[0-9a-f]{32}$")
_CONFLUENCE_PAGE = re.compile(rb'id="main-content"')


def export_items(path: Path, *, base_url: str | None = None) -> Iterator[SourceItem]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DocumentError(f"cannot read {path.name} as a zip file: {exc}") from None
    members = sorted(
        info.filename
        for info in archive.infolist()
        if not info.is_dir() and PurePosixPath(info.filename).suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(info.filename).parts)
    )
    if any(_NOTION_ID.search(PurePosixPath(m).stem) for m in members):
        kind = "notion"
    elif any(m.endswith(".html") and _CONFLUENCE_PAGE.search(_read(archive, m, path)) for m in members[:20]):
        kind = "confluence"
    else:
        kind = "files"
    root = path.as_posix()
    for member in members:
        if kind == "confluence" and PurePosixPath(member).name == "index.html":
            continue
        yield _member_item(archive, path, member, kind, root, base_url)


def _member_item(
    archive: zipfile.ZipFile, path: Path, member: str, kind: str, root: str, base_url: str | None
) -> SourceItem:
    link = quote(member, safe="/")
    if base_url:
        link = base_url.rstrip("/") + "/" + link
    prefix: tuple[str, ...] = ()
    if kind == "notion":
        prefix = tuple(_NOTION_ID.sub("", part) for part in PurePosixPath(member).parts[:-1] if _NOTION_ID.search(part))
    elif kind == "confluence":
        prefix = _confluence_breadcrumbs(_read(archive, member, path))

    def fetch() -> tuple[bytes, str | None]:
        data = _read(archive, member, path)
        return (_confluence_page(data) if kind == "confluence" else data), None

    return SourceItem(
        uri=f"{path.as_posix()}!/{member}",
        name=_NOTION_ID.sub("", PurePosixPath(member).stem) + PurePosixPath(member).suffix if kind == "notion" else member,
        link=link,
        fetch=fetch,
        root=root,
        heading_prefix=prefix,
    )


def _read(archive: zipfile.ZipFile, member: str, path: Path) -> bytes:
    info = archive.getinfo(member)
    if info.file_size > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{member} in {path.name} is too large ({info.file_size // (1024 * 1024)} MiB)")
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # RuntimeError: encrypted member
        raise DocumentError(f"cannot read {member} in {path.name}: {exc}") from None


def _confluence_breadcrumbs(data: bytes) -> tuple[str, ...]:
    """The page's parents below the space's home page, outermost first."""
    crumbs = _soup(data).find(id="breadcrumbs")
    if crumbs is None:
        return ()
    titles = [li.get_text(" ", strip=True) for li in crumbs.find_all("li")]
    return tuple(t for t in titles[1:] if t)


def _confluence_page(data: bytes) -> bytes:
    """The page's title and its main content, without the export's navigation and footer."""
    soup = _soup(data)
    title_node = soup.find(id="title-text")
    title = title_node.get_text(" ", strip=True) if title_node else (soup.title.get_text(strip=True) if soup.title else "")
    title = title.split(" : ", 1)[-1].strip()  # "Space name : Page title"
    content = soup.find(id="main-content")
    body = content.decode_contents() if content else ""
    return f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>".encode()


def _soup(data: bytes):  # noqa: ANN202 - bs4 is imported on use: most ingests read no export
    from bs4 import BeautifulSoup

    return BeautifulSoup(data, "html.parser")
