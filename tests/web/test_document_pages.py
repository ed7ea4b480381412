"""Sources of a folder ingested without --base-url: relative links that open from the playground,
and no server path in any answer, on any door that shows one."""
from __future__ import annotations

import json
import re
from html import unescape

import pytest

from adapters.web.document_page import document_href
from adapters.web.playground import CONTENT_SECURITY_POLICY
from tests.builders import write_docs
from tests.web.conftest import COLLECTION
from tests.web.test_playground import ask, open_page

LONG_SECTION = "\n\n".join(
    f"Paragraph {n} of the upgrade guide says to back up volume {n} before running the upgrade." for n in range(30)
)
DOCS = {
    "keys.md": "# API keys\n\n## Rotating your API key\n\n"
    "To rotate your API key, open Settings, choose API keys and click Rotate.\n",
    "notes.txt": 'The safety switch <script>window.pwned=1</script> is red & <img src=x onerror="alert(1)">.\n',
    "guide/upgrade notes.md": f"# Upgrading\n\n## Before you upgrade\n\n{LONG_SECTION}\n",
}


@pytest.fixture
def local(make_web, tmp_path):
    """The playground over a folder ingested with no --base-url (as `make run` ingests docs/)."""
    web = make_web(ingest=False)
    (tmp_path / "srv" / "handbook" / "guide").mkdir(parents=True)
    folder = write_docs(tmp_path / "srv" / "handbook", DOCS)
    report = web.container.ingestor.ingest([str(folder)], collection=COLLECTION)
    assert not report.failed
    web.extra["folder"] = str(folder)
    return web


def source_links(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'<ol class="sources">.*?</ol>', page, re.S) for h in
            re.findall(r'href="([^"]+)"', h)]


def test_sources_link_relative_to_the_ingested_folder_and_open_from_the_playground(local):
    assert ask(local.client, "how do I rotate my API key?").status_code == 303
    page = open_page(local.client)

    (href,) = [h for h in source_links(page) if "keys" in h]
    assert href == f"/docs/{COLLECTION}/keys.md#rotating-your-api-key"
    assert local.extra["folder"] not in page and "file://" not in page

    document = local.client.get(href)
    assert document.status_code == 200
    assert document.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    html = document.get_data(as_text=True)
    assert 'id="rotating-your-api-key"' in html  # the link's anchor lands on its section
    assert "open Settings, choose API keys and click Rotate" in html
    assert local.extra["folder"] not in html


def test_document_text_is_shown_as_text_never_as_markup(local):
    html = local.client.get(f"/docs/{COLLECTION}/notes.txt").get_data(as_text=True)
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt; is red &amp; &lt;img src=x" in html
    assert "<script" not in html and "<img" not in html


def test_a_document_page_shows_a_long_section_once_without_the_chunk_overlap(local):
    path = document_href(COLLECTION, "guide/upgrade%20notes.md")
    assert path == f"/docs/{COLLECTION}/guide/upgrade%20notes.md"
    html = local.client.get(path).get_data(as_text=True)
    for n in range(30):
        assert html.count(f"Paragraph {n} of the upgrade guide") == 1


def test_only_the_playgrounds_collection_and_its_documents_are_served(local):
    local.container.ingestor.ingest([local.extra["folder"]], collection="private")
    assert local.client.get("/docs/private/keys.md").status_code == 404
    assert local.client.get(f"/docs/{COLLECTION}/missing.md").status_code == 404
    assert local.client.get(f"/docs/{COLLECTION}/../../etc/passwd").status_code == 404


def test_no_door_shows_the_server_path(local, database_url, monkeypatch):
    from click.testing import CliRunner

    from adapters.discord.render import sources_embed
    from adapters.slack.render import render_answer as slack_answer
    from bots.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOCRAG_DEFAULT_COLLECTION", COLLECTION)
    monkeypatch.setenv("DOCRAG_LLM", "extractive")
    question = "how do I rotate my API key?"
    api = local.ask(question)
    assert api.status_code == 200
    answer = local.container.engine.ask(local_session(), question)
    search = local.container.engine.search(question, collection=COLLECTION)

    rendered = {
        "api": json.dumps(api.get_json()),
        "engine": json.dumps([c.__dict__ for c in answer.citations]),
        "search": json.dumps([p.source for p in search]),
        "slack": json.dumps(slack_answer(answer).blocks),
        "discord": json.dumps(sources_embed(answer.citations).to_dict()),
        "cli ask": CliRunner().invoke(main, ["ask", question]).output,
        "cli search": CliRunner().invoke(main, ["search", question]).output,
        "documents": json.dumps(local.get(f"/api/v1/collections/{COLLECTION}/documents").get_json()["documents"]
                                [0]["link"]),
    }
    assert answer.citations and answer.citations[0].source == "keys.md#rotating-your-api-key"
    assert "keys.md#rotating-your-api-key" in rendered["cli ask"]
    for door, text in rendered.items():
        assert local.extra["folder"] not in text and "file://" not in text, door


def local_session():
    from core.types import SessionKey

    return SessionKey(platform="web", workspace="playground", channel="playground", thread="t1", user="u1")


def test_document_links_of_uploads_and_web_pages():
    assert document_href("docs", "upload:notes.md") == "/docs/docs/upload%3Anotes.md"
    assert document_href("docs", "https://example.com/a.md") is None
    assert document_href("docs", "file:///srv/a.md") is None
    assert document_href("docs", "/srv/a.md") is None
