"""A documentation site on 127.0.0.1 that answers conditional requests, for URL source syncs.

    with FakeSite() as site:
        site.pages["/guide.html"] = "<h1>Guide</h1><p>Text.</p>"
        site.publish_sitemap()                      # /sitemap.xml lists every page
        site.robots = "User-agent: *\\nDisallow: /private/"
        ... sync ...
        assert all(r.conditional for r in site.requests)

Every response carries an ETag (a hash of the body) and a Last-Modified; a request whose
If-None-Match matches gets 304. ``down = True`` answers 503 to everything (a site briefly down).
Every request is recorded. Only the standard library is used.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LAST_MODIFIED = "Mon, 07 Dec 2026 00:00:00 GMT"


@dataclass(frozen=True)
class Request:
    path: str
    conditional: bool  # sent If-None-Match or If-Modified-Since
    status: int


class FakeSite:
    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.robots: str | None = None
        self.down = False
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def publish_sitemap(self) -> str:
        entries = "".join(f"<url><loc>{self.base_url}{path}</loc></url>" for path in sorted(self.pages)
                          if path.endswith(".html"))
        self.pages["/sitemap.xml"] = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
        )
        return self.base_url + "/sitemap.xml"

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def __enter__(self) -> FakeSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
                status, body, content_type = site._answer(self.path, self.headers.get("If-None-Match"))
                with site._lock:
                    site.requests.append(Request(self.path, conditional, status))
                self.send_response(status)
                if body is not None and status in (200, 304):
                    self.send_header("ETag", _etag(body))
                    self.send_header("Last-Modified", LAST_MODIFIED)
                if status == 200 and body is not None:
                    data = body.encode()
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        return Handler

    def _answer(self, path: str, if_none_match: str | None) -> tuple[int, str | None, str]:
        if self.down:
            return 503, None, ""
        body = self.robots if path == "/robots.txt" else self.pages.get(path)
        if body is None:
            return 404, None, ""
        if if_none_match == _etag(body):
            return 304, body, ""
        if path.endswith(".xml"):
            return 200, body, "application/xml"
        return 200, body, "text/plain" if path == "/robots.txt" else "text/html; charset=utf-8"


def _etag(body: str) -> str:
    return '"' + hashlib.sha1(body.encode()).hexdigest()[:16] + '"'
