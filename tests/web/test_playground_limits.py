"""The playground's rate limit holds per client address as well as per cookie: dropping cookies
gains nothing, and X-Forwarded-For counts only when it comes from a trusted proxy."""
from __future__ import annotations

from typing import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

import bots.web
from core.tenancy.ratelimit import address_block
from tests.web.conftest import COLLECTION
from tests.web.test_playground import csrf_token

CLIENT, OTHER_CLIENT, PROXY = "203.0.113.7", "198.51.100.9", "10.0.0.2"


@pytest.fixture
def make_app(make_container, docs_folder) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        container = make_container(default_collection=COLLECTION, rate_user_per_min=2, playground_public=True,
                                   **overrides)
        container.ingestor.ingest([str(docs_folder)], collection=COLLECTION, base_url="https://docs.example.com/")
        app = bots.web.create_app(container=container, start_worker=False)
        apps.append(app)
        return app

    yield make
    for app in apps:
        bots.web.shutdown(app)


def fresh_browser(app: Flask, remote_addr: str, forwarded_for: str | None = None) -> FlaskClient:
    """A client with no cookies at all: what a client that drops its cookies looks like each time."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def ask_once(client: FlaskClient, question: str = "how do I rotate my API key?") -> int:
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/ask", data={"question": question, "csrf_token": token})
    return response.status_code


def test_dropping_cookies_does_not_reset_the_allowance(make_app):
    app = make_app()
    assert [ask_once(fresh_browser(app, CLIENT)) for _ in range(2)] == [303, 303]
    limited = fresh_browser(app, CLIENT)
    token = csrf_token(limited.get("/").get_data(as_text=True))
    response = limited.post("/ask", data={"question": "how do I ingest a folder?", "csrf_token": token})
    assert response.status_code == 429
    assert "Too many questions from your network address" in response.get_data(as_text=True)
    assert ask_once(fresh_browser(app, OTHER_CLIENT)) == 303, "another address keeps its own allowance"


def test_the_cookie_limit_still_holds_for_one_browser(make_app):
    app = make_app(rate_address_per_min=100)  # e.g. an office behind one NAT address
    browser = fresh_browser(app, CLIENT)
    assert [ask_once(browser) for _ in range(3)] == [303, 303, 429]
    assert ask_once(fresh_browser(app, CLIENT)) == 303, "a colleague at the same address is not refused"


def test_a_spoofed_forwarded_for_is_ignored_without_a_trusted_proxy(make_app):
    app = make_app()
    spoofed = [ask_once(fresh_browser(app, CLIENT, forwarded_for=f"192.0.2.{n}")) for n in range(3)]
    assert spoofed == [303, 303, 429]


def test_a_trusted_proxy_names_the_client(make_app):
    app = make_app(trusted_proxies=1)
    # Two clients behind the same proxy have their own allowances...
    assert [ask_once(fresh_browser(app, PROXY, forwarded_for=CLIENT)) for _ in range(2)] == [303, 303]
    assert ask_once(fresh_browser(app, PROXY, forwarded_for=OTHER_CLIENT)) == 303
    # ...and a client cannot shed its own by prefixing the header: the proxy appends the real address.
    assert ask_once(fresh_browser(app, PROXY, forwarded_for=f"192.0.2.1, {CLIENT}")) == 429


def test_an_ipv6_client_cannot_rotate_through_its_own_64():
    assert address_block("2001:db8:1:2::1") == address_block("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_block("2001:db8:1:3::1") != address_block("2001:db8:1:2::1")
    assert address_block("::ffff:203.0.113.7") == address_block("203.0.113.7") == "203.0.113.7"
