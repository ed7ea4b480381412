"""Fake Confluence and Notion REST APIs on 127.0.0.1, in the shapes the real services send.

    with FakeConfluence(email="me@example.com", token="t") as wiki:
        wiki.add_page("1", "Handbook", "<p>Welcome</p>")
        wiki.add_page("2", "Deploys", "<p>Run make deploy.</p>", parent="1")
        ... ConfluenceSpace(base_url=wiki.base_url, space="DOCS", token="t", email="me@example.com")

    with FakeNotion(token="secret") as notion:
        notion.add_page("a" * 32, "Handbook", blocks=[paragraph("Welcome")])

Both record every request (``requests``: method and path with query) and can answer the next
requests with a 429 and ``Retry-After: 0`` (``rate_limit_next(n)``), as the services do when an
integration goes too fast. Only the standard library is used.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


class _FakeServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._rate_limited = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rate_limit_next(self, n: int) -> None:
        self._rate_limited = n

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self.requests.append((method, handler.path))
        with self._lock:
            limited = self._rate_limited > 0
            self._rate_limited -= limited
        if limited:
            self._reply(handler, 429, self.rate_limited_body(), {"Retry-After": "0"})
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}") if length else {}
        status, payload = self.route(method, urlsplit(handler.path), dict(handler.headers), body)
        self._reply(handler, status, payload)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def rate_limited_body(self) -> Any:
        return {"message": "Rate limit exceeded"}

    def route(self, method: str, url: Any, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        raise NotImplementedError


# --------------------------------------------------------------------------- Confluence


@dataclass
class ConfluencePage:
    id: str
    title: str
    body: str
    parent: str | None = None
    version: int = 1
    space: str = "DOCS"


class FakeConfluence(_FakeServer):
    """``GET /wiki/rest/api/content`` (paginated, ``_links.next``) and ``/wiki/rest/api/content/{id}``."""

    def __init__(self, *, email: str, token: str) -> None:
        super().__init__()
        self._auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self.pages: dict[str, ConfluencePage] = {}

    @property
    def base_url(self) -> str:
        return self.origin + "/wiki"

    def add_page(self, page_id: str, title: str, body: str, *, parent: str | None = None) -> ConfluencePage:
        self.pages[page_id] = ConfluencePage(page_id, title, body, parent)
        return self.pages[page_id]

    def edit(self, page_id: str, body: str) -> None:
        self.pages[page_id].body = body
        self.pages[page_id].version += 1

    def body_requests(self) -> list[str]:
        return [path for _, path in self.requests if "expand=body" in path]

    def route(self, method: str, url: Any, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if headers.get("Authorization") != self._auth:
            return 401, {"statusCode": 401, "message": "Client must be authenticated to access this resource."}
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/wiki/rest/api/content":
            return 200, self._listing(query)
        if url.path.startswith("/wiki/rest/api/content/"):
            page = self.pages.get(url.path.rsplit("/", 1)[1])
            if page is None:
                return 404, {"statusCode": 404, "message": "No content found with id"}
            return 200, self._page(page, with_body="body.export_view" in query.get("expand", ""))
        return 404, {"statusCode": 404, "message": "null for uri"}

    def _listing(self, query: dict[str, str]) -> dict[str, Any]:
        pages = [p for p in self.pages.values() if p.space == query.get("spaceKey")]
        start, limit = int(query.get("start", 0)), int(query.get("limit", 25))
        chunk = pages[start : start + limit]
        links: dict[str, str] = {"base": self.base_url, "context": "/wiki"}
        if start + limit < len(pages):
            links["next"] = "/rest/api/content?" + urlencode({**query, "start": start + limit})
        return {"results": [self._page(p) for p in chunk], "start": start, "limit": limit, "size": len(chunk), "_links": links}

    def _page(self, page: ConfluencePage, *, with_body: bool = False) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": page.id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "version": {"number": page.version, "when": "2026-11-30T10:00:00.000Z"},
            "ancestors": [{"id": a.id, "type": "page", "title": a.title} for a in self._ancestors(page)],
            "_links": {"webui": f"/spaces/{page.space}/pages/{page.id}/{page.title.replace(' ', '+')}"},
        }
        if with_body:
            found["body"] = {"export_view": {"value": page.body, "representation": "export_view"}}
        return found

    def _ancestors(self, page: ConfluencePage) -> list[ConfluencePage]:
        chain = []
        while page.parent:
            page = self.pages[page.parent]
            chain.insert(0, page)
        return chain


# --------------------------------------------------------------------------- Notion


def rich(text: str, *, code: bool = False, href: str | None = None) -> list[dict[str, Any]]:
    annotations = {"bold": False, "italic": False, "strikethrough": False, "underline": False, "code": code, "color": "default"}
    return [{"type": "text", "text": {"content": text, "link": href and {"url": href}}, "annotations": annotations, "plain_text": text, "href": href}]


def block(kind: str, text: str = "", *, children: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    value = {"rich_text": rich(text), **extra} if kind not in ("table_row", "child_page") else extra
    return {"object": "block", "type": kind, kind: value, "has_children": bool(children), "_children": children or []}


@dataclass
class NotionPage:
    id: str
    title: str
    blocks: list[dict[str, Any]]
    parent: str | None = None
    last_edited_time: str = "2026-11-01T09:00:00.000Z"
    in_trash: bool = False


@dataclass
class FakeNotion(_FakeServer):
    """``POST /v1/search`` (pages, cursor pagination) and ``GET /v1/blocks/{id}/children``."""

    token: str = "secret"
    page_size_cap: int = 100
    pages: dict[str, NotionPage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()
        self._blocks: dict[str, list[dict[str, Any]]] = {}

    @property
    def base_url(self) -> str:
        return self.origin

    def add_page(self, page_id: str, title: str, blocks: list[dict[str, Any]], *, parent: str | None = None) -> NotionPage:
        self.pages[page_id] = NotionPage(page_id, title, blocks, parent)
        return self.pages[page_id]

    def block_requests(self) -> list[str]:
        return [path for _, path in self.requests if path.startswith("/v1/blocks/")]

    def rate_limited_body(self) -> Any:
        return {"object": "error", "status": 429, "code": "rate_limited", "message": "You have been rate limited."}

    def route(self, method: str, url: Any, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"object": "error", "status": 401, "code": "unauthorized", "message": "API token is invalid."}
        if method == "POST" and url.path == "/v1/search":
            pages = [self._page_object(p) for p in self.pages.values()]
            return 200, self._paginate(pages, body.get("start_cursor"), body.get("page_size", 100))
        if method == "GET" and url.path.startswith("/v1/blocks/") and url.path.endswith("/children"):
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            block_id = url.path.split("/")[3]
            children = self._children(block_id)
            if children is None:
                return 404, {"object": "error", "status": 404, "code": "object_not_found", "message": "Could not find block."}
            return 200, self._paginate(children, query.get("start_cursor"), int(query.get("page_size", 100)))
        return 400, {"object": "error", "status": 400, "code": "invalid_request_url", "message": "Invalid request URL."}

    def _paginate(self, items: list[dict[str, Any]], cursor: str | None, size: int) -> dict[str, Any]:
        start = int(cursor or 0)
        size = min(size, self.page_size_cap)
        more = start + size < len(items)
        return {"object": "list", "results": items[start : start + size], "has_more": more, "next_cursor": str(start + size) if more else None, "type": "page_or_data_source"}

    def _children(self, block_id: str) -> list[dict[str, Any]] | None:
        bare = block_id.replace("-", "")
        if bare in self.pages:
            return self._register(bare, self.pages[bare].blocks)
        return self._blocks.get(bare)

    def _register(self, owner: str, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shown = []
        for index, b in enumerate(blocks):
            block_id = hashlib.md5(f"{owner}/{index}".encode()).hexdigest()
            if b["_children"]:
                self._register(block_id, b["_children"])
            shown.append({k: v for k, v in b.items() if k != "_children"} | {"id": block_id})
        self._blocks[owner] = shown
        return shown

    def _page_object(self, page: NotionPage) -> dict[str, Any]:
        parent = {"type": "page_id", "page_id": page.parent} if page.parent else {"type": "workspace", "workspace": True}
        return {
            "object": "page",
            "id": page.id,
            "created_time": "2026-01-01T00:00:00.000Z",
            "last_edited_time": page.last_edited_time,
            "archived": page.in_trash,
            "in_trash": page.in_trash,
            "parent": parent,
            "url": f"https://www.notion.so/{page.title.replace(' ', '-')}-{page.id}",
            "properties": {"title": {"id": "title", "type": "title", "title": rich(page.title)}},
        }
