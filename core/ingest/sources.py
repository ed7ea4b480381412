"""Enumerate what to ingest from command-line targets: local files and folders, http(s) pages and sitemaps.

``discover`` yields one :class:`SourceItem` per document. Nothing is downloaded or read
until an item's ``fetch()`` is called, except what discovery itself needs (a sitemap, or
the first response of a URL target to see whether it is one). No database, no output.

Identity and links:

* Files: ``uri`` is the absolute POSIX path (``os.path.abspath``: normalised, symlinks
  not resolved); ``root`` is the absolute path of the argument it came from, so every
  file's ``uri`` starts with its ``root``. ``uri`` and ``root`` are identities for
  re-ingesting and ``--prune``; they are never shown to a user. ``link`` is the path
  relative to the folder argument, percent-encoded and *keeping its suffix*
  (``guide/install.md``): a relative URL that every door shows as it is and the web
  playground serves at ``/docs/<collection>/guide/install.md``, so no server path ever
  reaches an answer. With ``base_url`` it is the base URL + ``/`` + that relative path
  (``https://example.com/docs/guide/install.md``). For a single-file argument the
  relative path is the file name.
* Web: ``uri`` and ``link`` are the URL without its fragment; ``root`` is the target URL
  as given (fragment dropped). ``name`` is the URL path (the host for ``/``).

Errors: a missing path, an unsupported URL scheme or a sitemap that cannot be fetched or
parsed raise :class:`DocumentError` from ``discover`` — before anything is yielded for
bad arguments, and mid-way for a broken sitemap, since a partial list would make
``--prune`` drop documents that still exist. A page that cannot be fetched raises
``DocumentError`` from its own ``fetch()``.

``http_cache``: ETag/Last-Modified of earlier responses (an :class:`HttpCache`); with it every
request is conditional. A page answered ``304 Not Modified`` raises :class:`NotModified` from its
``fetch()`` (the pipeline counts it unchanged); a sitemap or URL target answered 304 is read from
the body the cache kept. Source re-syncs (core/sources) use it.

``url_guard``: a check run on every request DocRag makes, redirects and sitemap entries included
(an httpx request hook), raising ``DocumentError`` to refuse one; the REST API uses it to keep API
key holders away from private and local addresses.
"""
from __future__ import annotations

import base64
import gzip
import io
import logging
import os
import re
import threading
import weakref
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import quote, unquote, urldefrag, urlsplit

import httpx

from core.errors import DocumentError
from core.ingest.loaders import SUPPORTED_SUFFIXES

__all__ = ["SourceItem", "discover", "target_root", "HttpCache", "NotModified", "USER_AGENT", "MAX_DOCUMENT_BYTES"]

USER_AGENT = "DocRag/0.1"
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024  # one file or response; larger ones are reported, not loaded
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__"})
_SPHINX_BUILD_MARK = "searchindex.js"  # in the root of every Sphinx HTML build
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceItem:
    uri: str  # canonical identity: absolute POSIX path, or URL without fragment
    name: str  # file name or URL path: suffix dispatch and fallback title
    link: str  # what a citation links to
    fetch: Callable[[], tuple[bytes, str | None]] = field(repr=False, compare=False)  # (data, content_type)
    root: str  # the (normalised) argument this item came from, for --prune
    folder: Path | None = field(default=None, compare=False)  # a file's ingested folder: bounds what it includes
    # The file on disk its includes are resolved from, when ``uri`` is not that path (a git source's
    # file, read from the checkout of its commit).
    local_file: Path | None = field(default=None, compare=False)
    # A token that changes whenever the document does (a wiki page's version, an edit time): an
    # item whose version is the stored one is unchanged without being fetched again.
    version: str | None = field(default=None, compare=False)
    # Where the document sits in its source's hierarchy (a wiki's parent pages, outermost first):
    # put before every section's heading path, so answers say where a passage comes from.
    heading_prefix: tuple[str, ...] = field(default=(), compare=False)
    # Facts about the document kept with it (e.g. when a learned answer expires).
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


class NotModified(Exception):
    """A conditional request was answered 304: what is stored is current."""


# Discovery responses (sitemaps, URL targets) are kept whole to be re-read after a 304 when this small.
_KEEP_BODY_BYTES = 2 * 1024 * 1024


@dataclass
class HttpCache:
    """Validators (ETag, Last-Modified) of earlier responses by URL, and the bodies of discovery
    responses. ``entries`` is plain JSON, for a source to keep between syncs."""

    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    conditional: int = 0  # requests sent with a validator, how many came back 304, how many of them pages
    not_modified: int = 0
    pages_not_modified: int = 0

    def request_headers(self, url: str, *, need_body: bool) -> dict[str, str]:
        entry = self.entries.get(url)
        if not entry or (need_body and "body" not in entry):
            return {}
        headers = {}
        if entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        if entry.get("last_modified"):
            headers["If-Modified-Since"] = entry["last_modified"]
        if headers:
            self.conditional += 1
        return headers

    def remember(self, url: str, headers: Any, body: bytes | None) -> None:
        entry = {"etag": headers.get("etag") or "", "last_modified": headers.get("last-modified") or ""}
        if not (entry["etag"] or entry["last_modified"]):
            self.entries.pop(url, None)
            return
        if body is not None and len(body) <= _KEEP_BODY_BYTES:
            entry["body"] = base64.b64encode(body).decode()
            entry["content_type"] = headers.get("content-type") or ""
        self.entries[url] = entry

    def body(self, url: str) -> tuple[bytes, str | None]:
        entry = self.entries[url]
        return base64.b64decode(entry["body"]), entry.get("content_type") or None


def discover(
    targets: Sequence[str],
    *,
    base_url: str | None = None,
    include_root: str | None = None,
    http_timeout_s: float = 20,
    max_pages: int = 5000,
    url_guard: Callable[[str], None] | None = None,
    http_cache: HttpCache | None = None,
) -> Iterator[SourceItem]:
    """Yield the documents named by ``targets`` (paths or http(s) URLs), each once.

    Folders are walked recursively in sorted order, keeping files with a supported suffix
    and skipping hidden files and folders (``.git``, ``.venv``...), ``node_modules``,
    ``__pycache__`` and the ``_sources`` copies of a Sphinx HTML build. A file argument is yielded whatever its suffix (the loader then
    reports an unsupported type). A URL whose path ends in ``.xml`` (or ``.xml.gz``), or
    whose response is a ``<urlset>``/``<sitemapindex>``, is read as a sitemap: every
    ``<loc>`` is yielded, following sitemap indexes, de-duplicated, at most ``max_pages``
    pages per target (past that a warning is logged and the rest is left out). Any other
    URL is a single page. ``base_url`` only changes the links of files. A file of a folder may
    include files (rST includes, Markdown snippets) from inside that folder, or from inside
    ``include_root`` when given (a folder holding the ingested one: a site's code examples often
    live beside its docs folder).
    """
    if isinstance(targets, str):
        targets = [targets]
    plan: list[tuple[str, Any]] = []
    for target in targets:  # validate every argument before yielding anything
        if _looks_like_url(target):
            scheme = urlsplit(target).scheme.lower()
            if scheme not in ("http", "https"):
                raise DocumentError(f"unsupported URL scheme {scheme} in {target} (only http and https)")
            url = urldefrag(target.strip())[0]
            if not urlsplit(url).hostname:
                raise DocumentError(f"not a valid URL: {target}")
            plan.append(("web", url))
        else:
            path = Path(os.path.abspath(os.path.expanduser(target)))
            if not path.exists():
                raise DocumentError(f"no such file or folder: {target}")
            plan.append(("path", path))
    widened = _include_root(include_root, [value for kind, value in plan if kind == "path"])

    seen: set[str] = set()
    web: _Web | None = None
    for kind, value in plan:
        if kind == "path":
            items: Iterator[SourceItem] = _discover_path(value, base_url, widened)
        else:
            if web is None:
                web = _Web(http_timeout_s, url_guard, http_cache)
            items = web.discover(value, max_pages)
        for item in items:
            if item.uri not in seen:
                seen.add(item.uri)
                yield item


def target_root(target: str) -> str:
    """The ``root`` that items discovered from ``target`` carry (absolute path, or URL
    without fragment), without touching the disk or the network. Use it to compare a
    command-line argument with stored roots, e.g. for ``--prune`` when a folder became empty."""
    if _looks_like_url(target):
        return urldefrag(target.strip())[0]
    return Path(os.path.abspath(os.path.expanduser(target))).as_posix()


def _looks_like_url(target: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target.strip()) is not None


# --------------------------------------------------------------------------- local files


def _include_root(include_root: str | None, paths: list[Path]) -> Path | None:
    if include_root is None:
        return None
    root = Path(os.path.abspath(os.path.expanduser(include_root)))
    if not root.is_dir():
        raise DocumentError(f"include root is not a folder: {include_root}")
    for path in paths:
        if not path.resolve().is_relative_to(root.resolve()):
            raise DocumentError(f"include root {include_root} does not hold {path}: it must be that folder or one above it")
    return root


def _discover_path(path: Path, base_url: str | None, include_root: Path | None = None) -> Iterator[SourceItem]:
    root = path.as_posix()
    if path.suffix.lower() == ".zip" and path.is_file():
        from core.ingest.connectors.exports import (
            export_items,  # a zip is an export (Confluence, Notion) or a folder
        )

        yield from export_items(path, base_url=base_url)
        return
    if not path.is_dir():
        yield _file_item(path, path.name, root, base_url, include_root)
        return
    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(path, onerror=_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS)
        if _SPHINX_BUILD_MARK in filenames:
            # A Sphinx HTML build: _sources/ holds copies of the sources its pages were built
            # from (page.rst.txt), which would index every page twice.
            dirnames[:] = [d for d in dirnames if d != "_sources"]
        base = Path(dirpath)
        for fname in filenames:
            if fname.startswith("."):
                continue
            if os.path.splitext(fname)[1].lower() not in SUPPORTED_SUFFIXES:
                continue
            full = base / fname
            rel = full.relative_to(path)
            found.append((rel.parts, full))
    found.sort(key=lambda t: t[0])
    for parts, full in found:
        if full.is_file():  # skips dangling symlinks, sockets...
            yield _file_item(full, "/".join(parts), root, base_url, include_root)


def _walk_error(exc: OSError) -> None:
    # Skipping an unreadable folder silently would let --prune delete its documents.
    raise DocumentError(f"cannot read folder {exc.filename}: {exc.strerror or exc}")


def _file_item(path: Path, rel: str, root: str, base_url: str | None, include_root: Path | None = None) -> SourceItem:
    link = quote(rel, safe="/")  # relative to the ingested folder: never the server's own path
    if base_url:
        link = base_url.rstrip("/") + "/" + link

    def fetch() -> tuple[bytes, str | None]:
        try:
            size = path.stat().st_size
            if size > MAX_DOCUMENT_BYTES:
                raise DocumentError(
                    f"file too large: {path} is {size // (1024 * 1024)} MiB "
                    f"(limit {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB)"
                )
            return path.read_bytes(), None
        except DocumentError:
            raise
        except OSError as exc:
            raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None

    folder = include_root or (Path(root) if Path(root).is_dir() else path.parent)
    return SourceItem(uri=path.as_posix(), name=path.name, link=link, fetch=fetch, root=root, folder=folder)


# --------------------------------------------------------------------------- web

_SITEMAP_SNIFF = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(urlset|sitemapindex)[\s>/]")


class _Web:
    """One HTTP client shared by discovery and every page's ``fetch``.

    The client is closed when the last ``fetch`` closure that uses it is garbage-collected."""

    def __init__(
        self, timeout_s: float, url_guard: Callable[[str], None] | None = None, cache: HttpCache | None = None
    ) -> None:
        self._timeout_s = timeout_s
        self._url_guard = url_guard
        self._cache = cache
        self._lock = threading.Lock()
        self._client: Any = None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    follow_redirects=True,
                    timeout=httpx.Timeout(self._timeout_s),
                    headers={"User-Agent": USER_AGENT},
                    event_hooks={"request": [self._guard]} if self._url_guard else None,
                )
                weakref.finalize(self, self._client.close)
            return self._client

    def _guard(self, request: httpx.Request) -> None:
        assert self._url_guard is not None
        self._url_guard(str(request.url))  # httpx runs request hooks for every redirect hop too

    def get(self, url: str, *, discovery: bool = False) -> tuple[bytes, str | None, str]:
        """Download ``url``: (body, content type, final URL). HTTP/network errors -> DocumentError.

        With a cache the request is conditional; a 304 raises NotModified, or for a ``discovery``
        request (a sitemap, a URL target) returns the body kept from last time."""
        headers = self._cache.request_headers(url, need_body=discovery) if self._cache else {}
        try:
            with self.client().stream("GET", url, headers=headers) as resp:
                if resp.status_code == 304 and headers and self._cache is not None:
                    self._cache.not_modified += 1
                    if not discovery:
                        self._cache.pages_not_modified += 1
                        raise NotModified(url)
                    data, content_type = self._cache.body(url)
                    return data, content_type, url
                if resp.status_code >= 400:
                    reason = f" {resp.reason_phrase}" if resp.reason_phrase else ""
                    raise DocumentError(f"HTTP {resp.status_code}{reason} for {url}")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
                    raise DocumentError(f"too large: {url} is {int(declared) // (1024 * 1024)} MiB")
                chunks: list[bytes] = []
                total = 0
                for chunk in resp.iter_bytes():
                    total += len(chunk)
                    if total > MAX_DOCUMENT_BYTES:
                        raise DocumentError(f"too large: {url} is over {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
                    chunks.append(chunk)
                body = b"".join(chunks)
                if self._cache is not None and resp.status_code == 200:
                    self._cache.remember(url, resp.headers, body if discovery else None)
                return body, resp.headers.get("content-type"), str(resp.url)
        except (DocumentError, NotModified):
            raise
        except httpx.TimeoutException:
            raise DocumentError(f"timed out after {self._timeout_s:g} s fetching {url}") from None
        except httpx.TooManyRedirects:
            raise DocumentError(f"too many redirects fetching {url}") from None
        except httpx.HTTPError as exc:
            raise DocumentError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None

    def page(self, url: str, root: str, first: tuple[bytes, str | None] | None = None) -> SourceItem:
        """An item for one page; ``first`` is a response already downloaded during discovery,
        handed out by the first ``fetch()`` call instead of downloading it again."""
        cache = [first] if first is not None else []
        lock = threading.Lock()

        def fetch() -> tuple[bytes, str | None]:
            with lock:
                if cache:
                    return cache.pop()
            data, content_type, _ = self.get(url)
            return data, content_type

        parts = urlsplit(url)
        name = unquote(parts.path) if parts.path not in ("", "/") else (parts.hostname or url)
        return SourceItem(uri=url, name=name, link=url, fetch=fetch, root=root)

    def discover(self, url: str, max_pages: int) -> Iterator[SourceItem]:
        root = url
        path = urlsplit(url).path.lower()
        if path.endswith((".xml", ".xml.gz")):
            data, ctype, _ = self.get(url, discovery=True)
            yield from self._sitemap_pages(url, data, root, max_pages)
            return
        try:
            data, ctype, final = self.get(url, discovery=True)
        except DocumentError as exc:
            # Not a sitemap we know of: the page's own fetch() will report the error.
            error = exc

            def failing() -> tuple[bytes, str | None]:
                raise error

            parts = urlsplit(url)
            name = unquote(parts.path) if parts.path not in ("", "/") else (parts.hostname or url)
            yield SourceItem(uri=url, name=name, link=url, fetch=failing, root=root)
            return
        if _is_sitemap(data, ctype):
            yield from self._sitemap_pages(url, data, root, max_pages)
        else:
            yield self.page(url, root, (data, ctype))

    def _sitemap_pages(self, url: str, data: bytes, root: str, max_pages: int) -> Iterator[SourceItem]:
        pages: set[str] = set()
        visited: set[str] = {url}
        queue: list[tuple[str, bytes]] = [(url, data)]
        while queue:
            sitemap_url, body = queue.pop(0)
            kind, locs = _parse_sitemap(sitemap_url, body)
            for loc in locs:
                loc = urldefrag(loc)[0]
                if urlsplit(loc).scheme.lower() not in ("http", "https"):
                    continue
                if kind == "sitemapindex":
                    if loc not in visited:
                        visited.add(loc)
                        child, _, _ = self.get(loc, discovery=True)
                        queue.append((loc, child))
                elif loc not in pages:
                    if len(pages) >= max_pages:
                        _log.warning("sitemap %s lists more than %d pages; only the first %d are used", root, max_pages, max_pages)
                        return
                    pages.add(loc)
                    yield self.page(loc, root)


def _is_sitemap(data: bytes, content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml", "application/pdf", "text/markdown", "text/plain"):
        return False
    head = data[:4096]
    if head[:2] == b"\x1f\x8b":
        return True  # gzip: only sitemaps are served compressed like this
    return _SITEMAP_SNIFF.search(head) is not None


def _parse_sitemap(url: str, data: bytes) -> tuple[str, list[str]]:
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_DOCUMENT_BYTES + 1)
        except (OSError, EOFError):
            raise DocumentError(f"broken gzip sitemap at {url}") from None
        if len(data) > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"sitemap too large at {url}")
    if b"<!DOCTYPE" in data[:2048].upper() or b"<!ENTITY" in data[:8192].upper():
        raise DocumentError(f"refusing a sitemap with a DOCTYPE/entities at {url}")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DocumentError(f"not a valid sitemap at {url}: {exc}") from None
    kind = root.tag.rsplit("}", 1)[-1]
    if kind not in ("urlset", "sitemapindex"):
        raise DocumentError(f"not a sitemap at {url} (root element <{kind}>)")
    locs: list[str] = []
    for entry in root:  # <url> or <sitemap>; their <image:loc> etc. are not pages
        if entry.tag.rsplit("}", 1)[-1] not in ("url", "sitemap"):
            continue
        for el in entry:
            if el.tag.rsplit("}", 1)[-1] == "loc" and el.text and el.text.strip():
                locs.append(el.text.strip())
                break
    return kind, locs
