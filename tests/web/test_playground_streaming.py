"""The playground shows an answer while the model writes it: the page streams in, no script, same CSP."""
from __future__ import annotations

import threading
from typing import Iterator

import pytest
from werkzeug.serving import make_server

from adapters.web.playground import CONTENT_SECURITY_POLICY
from tests.fakes.openai_server import FakeOpenAI
from tests.web.cdp import Browser, chromium_binary
from tests.web.test_playground import ask, open_page

WRITTEN = "To rotate your key open Settings and click Rotate [1]. The old key keeps working for 24 hours [1][6]."
QUESTION = "how do I rotate my API key?"
CHROMIUM = chromium_binary()


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.chat_responder = lambda body: WRITTEN
        yield fake


@pytest.fixture
def llm_web(make_web, fake_llm):
    return make_web(llm="openai", openai_base_url=fake_llm.base_url, llm_max_retries=0, llm_timeout_s=5.0)


def test_the_answer_streams_into_the_page_then_the_finished_answer_follows(llm_web):
    response = ask(llm_web.client, QUESTION)

    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    chunks = [c.decode() for c in response.response]
    html = "".join(chunks)
    assert len(chunks) > 2, "the page arrives in pieces"
    assert "<script" not in html
    draft = html.split('<div class="answer draft">', 1)[1].split("</div>", 1)[0]
    assert draft == "To rotate your key open Settings and click Rotate [1]. The old key keeps working for 24 hours [1]."
    assert 'href="https://docs.example.com/keys.md#rotating-your-api-key"' in html, "the sources follow"
    assert html.rstrip().endswith("</html>")
    assert "24 hours" in open_page(llm_web.client), "the answer is part of the conversation"


def test_a_model_failure_mid_answer_ends_the_page_with_the_apology(llm_web, fake_llm):
    fake_llm.break_next_stream(after=4)

    html = ask(llm_web.client, QUESTION).get_data(as_text=True)

    assert "To rotate your key" in html
    assert "Sorry, I couldn&#39;t answer this one" in html or "Sorry, I couldn't answer this one" in html
    assert html.rstrip().endswith("</html>"), "the page (and its form) is complete"


def test_without_a_model_the_answer_is_immediate_and_the_page_redirects(web):
    response = ask(web.client, QUESTION)
    assert response.status_code == 303


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_chromium_shows_the_first_words_before_the_model_has_finished(llm_web, fake_llm):
    server = make_server("127.0.0.1", 0, llm_web.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    release = fake_llm.pause_next_stream(after=5)
    try:
        with Browser(CHROMIUM) as browser:
            browser.open(f"http://127.0.0.1:{server.server_port}/")
            browser.type_into("#question", QUESTION)
            browser.press_enter()

            draft = browser.wait_until("document.querySelector('.live .draft')?.textContent")
            assert not release.is_set()
            assert draft.startswith("To rotate") and "24 hours" not in draft
            assert browser.evaluate("document.querySelector('.live .sources')") is None

            release.set()
            browser.wait_for("Page.loadEventFired")
            assert browser.texts(".live .answer:not(.draft)")[0].strip().startswith("To rotate your key")
            assert browser.evaluate("getComputedStyle(document.querySelector('.live .draft')).display") == "none"
            assert browser.evaluate("document.querySelectorAll('.live .sources a').length") == 1
            assert browser.evaluate("location.pathname") == "/ask"
    finally:
        release.set()
        server.shutdown()
