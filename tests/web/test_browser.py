"""The playground in a real headless Chromium: ask, follow up, start over; hostile documents stay text.

Skipped only where Debian's chromium is not installed (CI installs it: apt-get install -y chromium).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator

import pytest
from werkzeug.serving import make_server

from tests.web.cdp import Browser, chromium_binary
from tests.web.conftest import COLLECTION

CHROMIUM = chromium_binary()
# Set to a folder to keep screenshots of the pages the test saw (to look at them, not to compare).
SCREENSHOTS = Path(os.environ["PLAYGROUND_SCREENSHOTS"]) if os.environ.get("PLAYGROUND_SCREENSHOTS") else None
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)

HOSTILE = (
    "<b>Hostile</b> manual\n\nThe safety switch payloads <script>window.pwned = 'script'</script> and "
    "<img src=x onerror=\"window.pwned = 'onerror'\"> show up as plain text in the safety switch answer.\n"
)


@pytest.fixture
def site(web) -> Iterator[str]:
    """The web door on a real HTTP server on 127.0.0.1."""
    server = make_server("127.0.0.1", 0, web.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as running:
        yield running


def ask(browser: Browser, question: str) -> None:
    browser.type_into("#question", question)
    browser.press_enter_and_wait()


def test_ask_follow_up_and_start_a_new_conversation_in_chromium(site, browser):
    browser.open(site + "/")
    assert browser.evaluate("document.title") == "DocRag"

    ask(browser, "how do I rotate my API key?")
    answers = browser.texts(".turn.assistant .answer")
    assert len(answers) == 1 and "Rotate" in answers[0]
    sources = browser.evaluate("[...document.querySelectorAll('.sources a')].map(a => a.href)")
    assert sources[0] == "https://docs.example.com/keys.md#rotating-your-api-key"

    ask(browser, "how long does the old one keep working?")
    answers = browser.texts(".turn.assistant .answer")
    assert len(answers) == 2 and "24 hours" in answers[1]
    assert browser.texts(".turn.user .question") == [
        "how do I rotate my API key?", "how long does the old one keep working?"
    ]

    if SCREENSHOTS:
        browser.screenshot(SCREENSHOTS / "playground-follow-up.png")
    browser.click_and_wait("form.new button")
    assert browser.texts(".turn") == []


def test_script_and_onerror_payloads_in_a_document_are_shown_and_never_run(web, site, browser, tmp_path):
    (tmp_path / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    web.container.ingestor.ingest([str(tmp_path / "hostile.txt")], collection=COLLECTION)

    browser.open(site + "/")
    ask(browser, "what happens to the safety switch payloads?")

    shown = " ".join(browser.texts(".turn.assistant"))
    assert "<script>window.pwned = 'script'</script>" in shown
    assert "<img src=x onerror=\"window.pwned = 'onerror'\">" in shown
    assert "<b>Hostile</b> manual" in shown  # the document's title, in the sources list
    assert browser.evaluate("typeof window.pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('main script, main img').length") == 0
    assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
    if SCREENSHOTS:
        browser.screenshot(SCREENSHOTS / "playground-hostile.png")
