"""The URL guard sees every request: a public page redirecting inward, or a sitemap listing an
internal page, is refused like a private URL given directly."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from core.errors import DocumentError
from core.ingest.public_urls import check_public_url
from core.ingest.sources import discover

PAGE = b"<html><head><title>Page</title></head><body><p>Hello.</p></body></html>"


def serve(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status, headers, body = routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def sites() -> Iterator[tuple[str, str]]:
    """A 'public' site and an 'internal' one, both on loopback; the guard below tells them apart."""
    internal, internal_url = serve({"/secret.html": (200, {"Content-Type": "text/html"}, PAGE)})
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{{public}}/page.html</loc></url><url><loc>{internal_url}/secret.html</loc></url></urlset>"
    )
    routes = {"/page.html": (200, {"Content-Type": "text/html"}, PAGE),
              "/moved": (302, {"Location": f"{internal_url}/secret.html"}, b"")}
    public, public_url = serve(routes)
    routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml"}, sitemap.replace("{public}", public_url).encode())
    yield public_url, internal_url
    for server in (public, internal):
        server.shutdown()
        server.server_close()


def refuse(internal_url: str):
    def guard(url: str) -> None:
        if url.startswith(internal_url):
            raise DocumentError("internal address refused")
    return guard


def test_a_redirect_to_an_internal_address_is_refused(sites):
    public_url, internal_url = sites
    [item] = discover([f"{public_url}/moved"], url_guard=refuse(internal_url))
    with pytest.raises(DocumentError, match="internal address refused"):
        item.fetch()
    [unguarded] = discover([f"{public_url}/moved"])  # the same redirect is followed without a guard
    assert b"Hello" in unguarded.fetch()[0]


def test_a_sitemap_entry_on_an_internal_address_is_refused_and_the_rest_fetched(sites):
    public_url, internal_url = sites
    items = {item.uri: item for item in discover([f"{public_url}/sitemap.xml"], url_guard=refuse(internal_url))}
    assert b"Hello" in items[f"{public_url}/page.html"].fetch()[0]
    with pytest.raises(DocumentError, match="internal address refused"):
        items[f"{internal_url}/secret.html"].fetch()


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]:8080/", "http://192.168.0.10/docs"])
def test_private_and_local_addresses_are_refused(url):
    with pytest.raises(DocumentError, match="private or local address"):
        check_public_url(url)


def test_a_public_address_passes():
    check_public_url("http://93.184.215.14/docs")  # a literal address: no DNS lookup needed offline
