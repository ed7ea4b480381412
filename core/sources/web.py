"""Planners of folder and URL sources; for the web: conditional requests, robots.txt, politeness.

A URL source (a page or a sitemap) keeps the ETag/Last-Modified of every response in its state,
so a re-sync sends conditional requests only: a sitemap answered 304 is read from the copy kept,
a page answered 304 is not downloaded, parsed or embedded. Validators are used only for pages
whose document is stored and did not fail last time, so a page is never skipped because it was
fetched once but never landed.

robots.txt is honoured (the rules for DocRag's user agent, or ``*``): disallowed pages are not
fetched, and count as unlisted for the removal rule. Requests to one host are spaced by the
politeness delay (the source's ``delay_s`` option, else the setting), or the robots.txt
Crawl-delay if that is longer. A robots.txt that cannot be fetched (a 5xx, a network error) fails
the sync rather than guessing: the index stays as it was.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from core.errors import DocumentError
from core.sources.sync import SyncContext, SyncPlan

if TYPE_CHECKING:
    from core.ingest.sources import HttpCache
    from core.storage.models import Source


def plan_folder(source: Source, ctx: SyncContext) -> SyncPlan:
    from core.ingest.sources import discover

    options = source.options or {}
    items = list(discover([source.target], base_url=options.get("base_url"), include_root=options.get("include_root"),
                          http_timeout_s=ctx.options.http_timeout_s))
    return SyncPlan(root=source.target, items=items, complete=True)


def plan_url(source: Source, ctx: SyncContext) -> SyncPlan:
    from core.ingest.sources import HttpCache, discover

    options, state = source.options or {}, source.state or {}
    retry = set(state.get("retry") or [])
    cache = HttpCache({
        url: entry for url, entry in (state.get("http") or {}).items()
        if "body" in entry or (url in ctx.stored_uris and url not in retry)
    })
    delay = float(options["delay_s"]) if options.get("delay_s") is not None else ctx.options.politeness_s
    polite = Politeness(delay)
    guard = _guard(polite, public_only=options.get("added_by") == "api")
    robots = Robots(cache, polite, guard, timeout_s=ctx.options.http_timeout_s)
    robots.check_reachable(source.target)
    items = [
        item for item in discover(
            [source.target], http_timeout_s=ctx.options.http_timeout_s, url_guard=guard, http_cache=cache,
            max_pages=int(options.get("max_pages") or 5000),
        )
        if robots.allowed(item.uri)
    ]

    def counts() -> dict[str, Any]:
        return {"conditional_requests": cache.conditional, "not_modified": cache.not_modified,
                "pages_not_modified": cache.pages_not_modified,
                "robots_disallowed": robots.disallowed}

    return SyncPlan(root=source.target, items=items, complete=True, state={"http": cache.entries},
                    late_counts=counts, close=robots.close)


def _guard(polite: Politeness, *, public_only: bool) -> Callable[[str], None]:
    from core.ingest.public_urls import check_public_url

    def guard(url: str) -> None:
        if public_only:  # a source an API key holder added must not reach intranet addresses
            check_public_url(url)
        polite.wait(url)

    return guard


class Politeness:
    """Spaces requests to one host by ``delay_s`` (raised by a robots.txt Crawl-delay)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = max(delay_s, 0.0)
        self._next: dict[str, float] = {}
        self._host_delay: dict[str, float] = {}
        self._lock = threading.Lock()

    def set_host_delay(self, host: str, delay_s: float) -> None:
        self._host_delay[host] = max(delay_s, self.delay_s)

    def wait(self, url: str) -> None:
        host = urlsplit(url).netloc.lower()
        delay = self._host_delay.get(host, self.delay_s)
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + delay
        if start > now:
            time.sleep(start - now)


class Robots:
    """robots.txt per host, fetched (conditionally) once per sync."""

    def __init__(self, cache: HttpCache, polite: Politeness, guard: Callable[[str], None], *, timeout_s: float) -> None:
        import httpx

        from core.ingest.sources import USER_AGENT

        self.cache, self.polite, self.guard = cache, polite, guard
        self.user_agent = USER_AGENT
        self._client = httpx.Client(timeout=timeout_s, headers={"User-Agent": USER_AGENT}, follow_redirects=True)
        self._parsers: dict[str, RobotFileParser | None] = {}
        self.disallowed = 0

    def close(self) -> None:
        self._client.close()

    def check_reachable(self, url: str) -> None:
        self._parser(url)

    def allowed(self, url: str) -> bool:
        parser = self._parser(url)
        if parser is None or parser.can_fetch(self.user_agent, url):
            return True
        self.disallowed += 1
        return False

    def _parser(self, url: str) -> RobotFileParser | None:
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc}"
        if host not in self._parsers:
            self._parsers[host] = self._fetch(host)
            parser = self._parsers[host]
            delay = parser.crawl_delay(self.user_agent) if parser is not None else None
            if delay:
                self.polite.set_host_delay(parts.netloc.lower(), float(delay))
        return self._parsers[host]

    def _fetch(self, host: str) -> RobotFileParser | None:
        import httpx

        url = host + "/robots.txt"
        headers = self.cache.request_headers(url, need_body=True)
        try:
            self.guard(url)
            response = self._client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise DocumentError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None
        if response.status_code == 304 and headers:
            self.cache.not_modified += 1
            body = self.cache.body(url)[0]
        elif response.status_code >= 500:
            raise DocumentError(f"HTTP {response.status_code} for {url}: not syncing until it answers")
        elif response.status_code >= 400:  # no robots.txt: everything is allowed
            return None
        else:
            body = response.content
            self.cache.remember(url, response.headers, body)
        parser = RobotFileParser(url)
        parser.parse(body.decode("utf-8", "replace").splitlines())
        return parser
