"""The playground page: chat with follow-ups, strict CSP, CSRF on POSTs, HTML shown as text, rate limits."""
from __future__ import annotations

import re

from adapters.web.playground import CONTENT_SECURITY_POLICY
from tests.web.conftest import COLLECTION

XSS = 'The safety switch <script>window.pwned=1</script> is red. <img src=x onerror="window.pwned=2">\n'


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def open_page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def ask(client, question: str, token: str | None = None):
    token = token or csrf_token(open_page(client))
    return client.post("/ask", data={"question": question, "csrf_token": token})


def test_the_page_is_served_with_a_strict_policy_and_no_api_key(make_web):
    web = make_web()
    response = web.client.get("/")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    assert "<script" not in html and "drk_" not in html and web.key.key not in html
    cookies = response.headers.getlist("Set-Cookie")
    assert all("HttpOnly" in c and "SameSite=Strict" in c for c in cookies)
    css = web.client.get("/playground/static/playground.css")
    assert css.status_code == 200 and css.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_ask_follow_up_and_start_a_new_conversation(web):
    response = ask(web.client, "how do I rotate my API key?")
    assert response.status_code == 303 and response.headers["Location"].endswith("/#latest")
    page = open_page(web.client)
    assert "how do I rotate my API key?" in page and "click Rotate" in page
    assert 'href="https://docs.example.com/keys.md#rotating-your-api-key"' in page
    assert re.search(r'<a class="cite" href="#m\d+-1">\[1\]</a>', page), "citations link to their source"

    assert ask(web.client, "how long does the old one keep working?").status_code == 303
    page = open_page(web.client)
    assert "24 hours" in page and page.count('class="turn user"') == 2

    new = web.client.post("/new", data={"csrf_token": csrf_token(page)})
    assert new.status_code == 303
    page = open_page(web.client)
    assert 'class="turn user"' not in page and "Follow-up questions keep the context" in page


def test_posts_without_the_right_csrf_token_are_refused(web):
    open_page(web.client)
    missing = web.client.post("/ask", data={"question": "how do I rotate my API key?"})
    wrong = web.client.post("/ask", data={"question": "how do I rotate my API key?", "csrf_token": "x" * 32})
    new = web.client.post("/new", data={})
    for response in (missing, wrong, new):
        assert response.status_code == 403
        assert "expired or came from another site" in response.get_data(as_text=True)

    token = csrf_token(open_page(web.client))
    cross_site = web.client.post("/ask", data={"question": "hi", "csrf_token": token},
                                 headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert "how do I rotate" not in open_page(web.client)  # nothing was asked


def test_a_fresh_browser_without_cookies_cannot_post(web):
    response = web.app.test_client().post("/ask", data={"question": "hi", "csrf_token": "a" * 32})
    assert response.status_code == 403


def test_html_in_documents_is_shown_as_text_never_as_markup(web, tmp_path):
    (tmp_path / "safety.txt").write_text(XSS, encoding="utf-8")
    web.container.ingestor.ingest([str(tmp_path / "safety.txt")], collection=COLLECTION)
    assert ask(web.client, "what colour is the safety switch?").status_code == 303
    page = open_page(web.client)
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page
    assert "<script" not in page and "<img" not in page


def test_a_question_over_the_rate_limit_gets_the_limit_message(make_web):
    web = make_web(rate_user_per_min=1)
    token = csrf_token(open_page(web.client))
    assert ask(web.client, "how do I rotate my API key?", token).status_code == 303
    limited = ask(web.client, "how do I ingest a folder?", token)
    assert limited.status_code == 429
    page = limited.get_data(as_text=True)
    assert "Too many questions" in page and 'value="how do I ingest a folder?"' in page


def test_bad_questions_and_an_empty_library_are_explained(make_web):
    web = make_web(ingest=False)
    page = ask(web.client, "   ")
    assert page.status_code == 400 and "The question is empty" in page.get_data(as_text=True)
    nothing = ask(web.client, "how do I rotate my API key?")
    assert nothing.status_code == 404 and "docrag ingest" in nothing.get_data(as_text=True)


def test_an_oversized_form_is_refused_with_a_page(web):
    token = csrf_token(open_page(web.client))
    response = web.client.post("/ask", data={"question": "x" * 100_000, "csrf_token": token})
    assert response.status_code == 413
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "<!doctype html>" in response.get_data(as_text=True)
