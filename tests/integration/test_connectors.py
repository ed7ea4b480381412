"""Confluence and Notion: live APIs (fake servers on loopback, real HTTP clients) and export zips."""
import zipfile

import pytest
import sqlalchemy as sa

from core.errors import DocumentError
from core.ingest.connectors import confluence
from core.ingest.connectors.confluence import ConfluenceSpace, confluence_items
from core.ingest.connectors.notion import NotionPages, notion_items
from core.storage.models import Document, DocumentChunk
from tests.fakes.wiki_servers import FakeConfluence, FakeNotion, block

EMAIL, TOKEN = "writer@example.com", "confluence-token"


def chunks_of(database, collection_like=None):
    with database.sessions() as session:
        rows = session.execute(
            sa.select(Document.title, Document.link, DocumentChunk.heading, DocumentChunk.text).join(
                DocumentChunk, DocumentChunk.document_id == Document.id
            )
        ).all()
    return {title: (link, heading, text) for title, link, heading, text in rows}


def sync_confluence(container, wiki, **space):
    source = ConfluenceSpace(base_url=wiki.base_url, space="DOCS", token=TOKEN, email=EMAIL, **space)
    items = list(confluence_items(source, sleep=lambda s: None))
    return container.ingestor.ingest_items(items, collection="wiki", prune_roots={source.root})


@pytest.fixture
def wiki(monkeypatch):
    monkeypatch.setattr(confluence, "PAGE_SIZE", 2)  # three pages: the listing takes two requests
    with FakeConfluence(email=EMAIL, token=TOKEN) as fake:
        fake.add_page("1", "Handbook", "<p>Welcome to the engineering handbook.</p>")
        fake.add_page("2", "Deploys", "<p>Deploys run from the release branch.</p>", parent="1")
        fake.add_page(
            "3",
            "Rollbacks",
            "<h2>Rolling back</h2><p>Roll back a release with:</p><pre>make rollback VERSION=1.2</pre>",
            parent="2",
        )
        yield fake


def test_a_confluence_space_is_ingested_with_its_hierarchy_code_and_page_links(container, database, wiki):
    report = sync_confluence(container, wiki)
    assert report.added == 3 and not report.failed
    link, heading, text = chunks_of(database)["Rollbacks"]
    assert heading.startswith("Handbook > Deploys > Rollbacks")
    assert "make rollback VERSION=1.2" in text
    assert link == f"{wiki.base_url}/spaces/DOCS/pages/3/Rollbacks"


def test_an_unchanged_space_is_listed_but_no_page_body_is_fetched_again(container, wiki):
    sync_confluence(container, wiki)
    wiki.requests.clear()
    report = sync_confluence(container, wiki)
    assert report.unchanged == 3 and report.added == report.updated == 0
    assert wiki.body_requests() == []
    assert len(wiki.requests) == 2  # the two listing pages


def test_an_edited_page_is_re_read_and_a_deleted_page_removed(container, database, wiki):
    sync_confluence(container, wiki)
    wiki.edit("2", "<p>Deploys now run from tags, never from branches.</p>")
    del wiki.pages["3"]
    wiki.requests.clear()
    report = sync_confluence(container, wiki)
    assert (report.updated, report.removed, report.unchanged) == (1, 1, 1)
    assert len(wiki.body_requests()) == 1
    chunks = chunks_of(database)
    assert "Rollbacks" not in chunks and "run from tags" in chunks["Deploys"][2]


def test_confluence_rate_limits_are_waited_out_as_retry_after_asks(container, wiki):
    waits = []
    wiki.rate_limit_next(2)
    source = ConfluenceSpace(base_url=wiki.base_url, space="DOCS", token=TOKEN, email=EMAIL)
    items = list(confluence_items(source, sleep=waits.append))
    assert len(items) == 3 and waits == [0.0, 0.0]
    assert [method for method, _ in wiki.requests].count("GET") == 4  # two refused, two listing pages


def test_wrong_confluence_credentials_say_so_without_the_token(wiki):
    source = ConfluenceSpace(base_url=wiki.base_url, space="DOCS", token="wrong-secret", email=EMAIL)
    with pytest.raises(DocumentError, match="access refused") as raised:
        list(confluence_items(source))
    assert "wrong-secret" not in str(raised.value)


# --------------------------------------------------------------------------- Notion

ROOT, CHILD, OTHER = "1" * 32, "2" * 32, "3" * 32


@pytest.fixture
def notion():
    with FakeNotion(token="notion-secret", page_size_cap=2) as fake:
        fake.add_page(ROOT, "Runbooks", [block("paragraph", "How we run production.")])
        fake.add_page(
            CHILD,
            "Database failover",
            [
                block("heading_2", "Promote the replica"),
                block("bulleted_list_item", "Stop writes first", children=[block("paragraph", "Use the maintenance flag.")]),
                block("code", "pg_ctl promote -D /var/lib/postgresql", language="shell"),
                block("child_page", title="Ignored here"),
            ],
            parent=ROOT,
        )
        fake.add_page(OTHER, "Lunch menu", [block("paragraph", "Soup on Mondays.")])
        yield fake


def sync_notion(container, fake, root=ROOT):
    source = NotionPages(token="notion-secret", root_page=root, base_url=fake.base_url)
    return container.ingestor.ingest_items(list(notion_items(source)), collection="notion", prune_roots={source.root})


def test_a_notion_page_tree_is_ingested_with_parents_as_headings_and_code_kept(container, database, notion):
    notion.rate_limit_next(1)  # the client waits out a 429 as its Retry-After says
    report = sync_notion(container, notion)
    assert report.added == 2 and not report.failed
    chunks = chunks_of(database)
    assert "Lunch menu" not in chunks  # outside the chosen root page
    link, heading, text = chunks["Database failover"]
    assert heading.startswith("Runbooks > Database failover")
    assert "pg_ctl promote -D /var/lib/postgresql" in text and "Use the maintenance flag." in text
    assert link.startswith("https://www.notion.so/") and link.endswith(CHILD)


def test_an_unchanged_notion_tree_fetches_no_blocks_and_a_trashed_page_is_removed(container, database, notion):
    sync_notion(container, notion)
    notion.requests.clear()
    assert sync_notion(container, notion).unchanged == 2
    assert notion.block_requests() == []
    notion.pages[CHILD].in_trash = True
    assert sync_notion(container, notion).removed == 1
    assert "Database failover" not in chunks_of(database)


def test_a_root_page_not_shared_with_the_integration_is_a_clear_error(notion):
    source = NotionPages(token="notion-secret", root_page="9" * 32, base_url=notion.base_url)
    with pytest.raises(DocumentError, match="not shared with the integration"):
        list(notion_items(source))


# --------------------------------------------------------------------------- export files


def confluence_page_html(title, parents, body):
    crumbs = "".join(f'<li><span><a href="x.html">{p}</a></span></li>' for p in ["Engineering", *parents])
    return (
        f"<html><head><title>Engineering : {title}</title></head><body>"
        f'<div id="breadcrumb-section"><ol id="breadcrumbs">{crumbs}</ol></div>'
        f'<h1 id="title-heading" class="pagetitle"><span id="title-text"> Engineering : {title} </span></h1>'
        f'<div id="main-content" class="wiki-content group">{body}</div>'
        '<div id="footer">Document generated by Confluence</div></body></html>'
    )


def test_a_confluence_html_export_is_ingested_offline_without_its_index(container, database, tmp_path):
    export = tmp_path / "ENG.zip"
    with zipfile.ZipFile(export, "w") as z:
        z.writestr("ENG/index.html", '<html><body><div id="main-content">Available pages</div></body></html>')
        z.writestr("ENG/Handbook_65539.html", confluence_page_html("Handbook", [], "<p>Start here.</p>"))
        z.writestr("ENG/On-call_65541.html", confluence_page_html("On-call", ["Handbook"], "<p>Pages go to the primary first.</p>"))
    report = container.ingestor.ingest([str(export)], collection="export")
    assert report.added == 2 and not report.failed
    link, heading, text = chunks_of(database)["On-call"]
    assert heading.startswith("Handbook > On-call") and "primary first" in text
    assert "generated by Confluence" not in text
    assert link == "ENG/On-call_65541.html"


def test_a_notion_markdown_export_is_ingested_with_folders_as_parents(container, database, tmp_path):
    export = tmp_path / "notion-export.zip"
    with zipfile.ZipFile(export, "w") as z:
        z.writestr(f"Runbooks {ROOT}.md", "# Runbooks\n\nHow we run production.\n")
        z.writestr(f"Runbooks {ROOT}/Failover {CHILD}.md", "# Failover\n\nPromote the replica with `pg_ctl promote`.\n")
        z.writestr(f"Runbooks {ROOT}/Oncall {OTHER}.csv", "Name,Phone\n")
    report = container.ingestor.ingest([str(export)], collection="export")
    assert report.added == 2
    _, heading, text = chunks_of(database)["Failover"]
    assert heading.startswith("Runbooks > Failover") and "pg_ctl promote" in text


# --------------------------------------------------------------------------- as sources kept in sync


def test_a_confluence_space_and_a_notion_tree_are_sources_synced_with_credentials_from_the_environment(
    container, database, wiki, notion, monkeypatch
):
    from core.errors import InvalidInput
    from core.sources.registry import SourceSpec

    monkeypatch.setenv("WIKI_EMAIL", EMAIL)
    monkeypatch.setenv("WIKI_TOKEN", TOKEN)
    monkeypatch.setenv("NOTION_TOKEN", "notion-secret")
    space = container.sources.add(SourceSpec(
        kind="confluence", target=f"{wiki.base_url}/spaces/DOCS/overview", collection="wiki",
        credentials={"token": "WIKI_TOKEN", "email": "WIKI_EMAIL"},
    ))
    tree = container.sources.add(SourceSpec(
        kind="notion", target=f"https://www.notion.so/Runbooks-{ROOT}", collection="wiki",
        credentials={"token": "NOTION_TOKEN"}, options={"api_url": notion.base_url},
    ))
    assert container.syncer.sync(space.id).counts["added"] == 3
    assert container.syncer.sync(tree.id).counts["added"] == 2
    assert {"Rollbacks", "Database failover"} <= set(chunks_of(database))
    container.sources.remove(tree.id)
    assert "Database failover" not in chunks_of(database) and "Rollbacks" in chunks_of(database)

    monkeypatch.delenv("WIKI_TOKEN")
    failed = container.syncer.sync(space.id)
    assert failed.status == "failed" and "WIKI_TOKEN is not set" in failed.error
    with pytest.raises(InvalidInput, match="Confluence space URL"):
        container.sources.add(SourceSpec(kind="confluence", target="https://example.com/wiki", collection="wiki"))
