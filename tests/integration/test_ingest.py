"""Ingestion: every format, idempotent re-runs, atomic replacement, pruning, failures reported."""
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bots.cli import main
from core.errors import DocumentError, EmbedderMismatch
from core.ingest.pipeline import embedding_text
from core.storage.models import Document, DocumentChunk
from tests.builders import make_pdf


def write_corpus(root: Path) -> Path:
    (root / "guide").mkdir(parents=True)
    filler = " ".join(f"Sentence {i} about how keys are stored and audited." for i in range(20))
    (root / "guide" / "keys.md").write_text(
        f"# API keys\n\nKeys authenticate requests. {filler}\n\n"
        f"## Rotating keys\n\nRun `docrag apikey revoke` then create a new key. {filler}\n"
    )
    (root / "setup.rst").write_text("Setup\n=====\n\nInstall the package.\n\nProxies\n-------\n\nSet HTTPS_PROXY for proxies.\n")
    (root / "page.html").write_text(
        "<html><head><title>Webhooks</title><script>alert(1)</script></head>"
        "<body><nav>menu</nav><main><h1 id='webhooks'>Webhooks</h1><p>Webhooks retry five times.</p></main></body></html>"
    )
    (root / "notes.txt").write_text("Release notes\n\nVersion 2 adds sitemaps.")
    (root / "invoices.pdf").write_bytes(make_pdf(["Invoices are exported as CSV files."], title="Invoices"))
    return root


def count(database, model, **where):
    with database.sessions() as session:
        query = sa.select(sa.func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return session.scalar(query)


def test_every_format_is_ingested_with_titles_headings_and_links(container, database, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    report = container.ingestor.ingest([str(corpus)], collection="default")

    assert (report.added, report.failed) == (5, [])
    with database.sessions() as session:
        titles = set(session.scalars(sa.select(Document.title)))
        rotating = session.scalars(sa.select(DocumentChunk).where(DocumentChunk.text.contains("apikey revoke"))).one()
        html_text = " ".join(session.scalars(sa.select(DocumentChunk.text).where(DocumentChunk.title == "Webhooks")))
    assert {"API keys", "Setup", "Webhooks", "Release notes", "Invoices"} <= titles
    assert rotating.heading == "Rotating keys"
    assert rotating.link.endswith("guide/keys.md#rotating-keys")
    assert "retry five times" in html_text and "alert" not in html_text and "menu" not in html_text


def row_versions(database):
    """Every row's physical version: any insert, update or delete changes this set."""
    with database.engine.connect() as conn:
        return {
            table: set(conn.execute(sa.text(f"SELECT id, xmin::text FROM {table}")).all())
            for table in ("collections", "documents", "document_chunks")
        }


def test_reingesting_an_unchanged_corpus_writes_nothing(container, database, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    container.ingestor.ingest([str(corpus)], collection="default")
    before = row_versions(database)

    report = container.ingestor.ingest([str(corpus)], collection="default")

    assert (report.added, report.updated, report.unchanged, report.chunks) == (0, 0, 5, 0)
    assert row_versions(database) == before


def test_changed_document_is_replaced_atomically(container, database, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    container.ingestor.ingest([str(corpus)], collection="default")
    keys = corpus / "guide" / "keys.md"
    keys.write_text("# API keys\n\nKeys now expire after 90 days.\n")

    # A reader polling while the update commits must always see exactly one version.
    seen: list[tuple[bool, bool]] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            with database.engine.connect() as conn:
                texts = conn.execute(sa.text(
                    "SELECT c.text FROM document_chunks c JOIN documents d ON d.id = c.document_id "
                    "WHERE d.source_uri LIKE '%keys.md'")).scalars().all()
            joined = " ".join(texts)
            seen.append(("expire after 90 days" in joined, "apikey revoke" in joined))

    poller = threading.Thread(target=poll)
    poller.start()
    report = container.ingestor.ingest([str(corpus)], collection="default")
    stop.set()
    poller.join()

    assert (report.updated, report.unchanged) == (1, 4)
    assert seen and all(new != old for new, old in seen), "a reader saw no version or both versions"
    assert seen[-1] == (True, False)


def test_prune_removes_documents_whose_source_is_gone(container, database, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    container.ingestor.ingest([str(corpus)], collection="default")
    (corpus / "notes.txt").unlink()

    kept = container.ingestor.ingest([str(corpus)], collection="default")
    assert kept.removed == 0 and count(database, Document) == 5  # without --prune nothing is removed

    pruned = container.ingestor.ingest([str(corpus)], collection="default", prune=True)
    assert pruned.removed == 1
    assert count(database, Document) == 4


def test_broken_and_unreadable_files_are_reported_and_the_rest_ingested(container, database, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (corpus / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))

    report = container.ingestor.ingest([str(corpus)], collection="default")

    failed = {Path(f.source).name: f.reason for f in report.failed}
    assert set(failed) == {"broken.pdf", "latin1.txt"}
    assert all(reason for reason in failed.values())
    assert report.added == 5
    with database.sessions() as session:
        names = {Path(uri).name for uri in session.scalars(sa.select(Document.source_uri))}
    assert "broken.pdf" not in names and "latin1.txt" not in names


@pytest.fixture
def local_site(tmp_path):
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "a.html").write_text("<html><head><title>Alpha</title></head><body><h1>Alpha</h1><p>Alpha explains quotas.</p></body></html>")
    (site / "docs" / "b.html").write_text("<html><head><title>Beta</title></head><body><h1>Beta</h1><p>Beta explains billing.</p></body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: SimpleHTTPRequestHandler(*a, directory=str(site)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (site / "sitemap.xml").write_text(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}/docs/a.html</loc></url><url><loc>{base}/docs/b.html</loc></url></urlset>"
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def test_a_page_and_a_sitemap_are_ingested_over_http(container, database, local_site):
    page = container.ingestor.ingest([f"{local_site}/docs/a.html"], collection="web")
    assert page.added == 1

    report = container.ingestor.ingest([f"{local_site}/sitemap.xml"], collection="web")
    assert (report.added, report.unchanged) == (1, 1)
    with database.sessions() as session:
        links = set(session.scalars(sa.select(DocumentChunk.link)))
    assert any(link.startswith(f"{local_site}/docs/b.html") for link in links)


def test_another_embedder_is_refused_with_the_reindex_command(make_container, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    make_container().ingestor.ingest([str(corpus)], collection="default")
    other = make_container(hashing_dimension=512)

    with pytest.raises(EmbedderMismatch, match="docrag reindex --collection default"):
        other.ingestor.ingest([str(corpus)], collection="default")

    assert other.ingestor.reindex("default") > 0
    assert other.ingestor.ingest([str(corpus)], collection="default").unchanged == 5


def test_cli_ingest_prints_a_json_summary(container, tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    corpus = write_corpus(tmp_path / "docs")
    result = CliRunner().invoke(main, ["ingest", str(corpus), "--collection", "cli", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["added"] == 5 and summary["failed"] == [] and summary["chunks"] >= 5
    assert {"updated", "unchanged", "removed", "skipped", "seconds"} <= set(summary)


def test_cli_ingest_with_some_failed_documents_lists_them_and_exits_3(container, tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    corpus = write_corpus(tmp_path / "docs")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (corpus / "blank.md").write_text("\n")

    result = CliRunner().invoke(main, ["ingest", str(corpus), "--collection", "cli"])

    assert result.exit_code == 3
    assert "5 added" in result.output and "1 skipped, 1 failed" in result.output
    assert "failed: " in result.output and "broken.pdf" in result.output
    assert "Traceback" not in result.output


def test_prune_empties_a_collection_when_its_folder_is_emptied(container, database, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    container.ingestor.ingest([str(corpus)], collection="default")
    for path in sorted(corpus.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    corpus.mkdir(exist_ok=True)

    report = container.ingestor.ingest([str(corpus)], collection="default", prune=True)

    assert report.removed == 5
    assert count(database, Document) == 0 and count(database, DocumentChunk) == 0


def test_stored_chunks_keep_their_exact_text_and_vector(container, database, tmp_path):
    # Chunks are written in PostgreSQL's binary copy format: nothing may be escaped or rounded away.
    text = 'A back\\slash, "quotes", it\'s, naïve café ✓ and a\nsecond line.'
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "odd.txt").write_text(f"Odd characters\n\n{text}\n", encoding="utf-8")

    container.ingestor.ingest([str(tmp_path / "docs")], collection="default")

    with database.sessions() as session:
        chunk = session.scalars(sa.select(DocumentChunk)).one()
    assert text in chunk.text
    expected = container.ingestor.embedder.embed_documents(
        [embedding_text(chunk.title, heading=chunk.heading, text=chunk.text)]
    )[0]
    assert len(chunk.embedding) == len(expected)
    assert max(abs(a - b) for a, b in zip(chunk.embedding, expected)) < 1e-6  # float4, as pgvector stores it


def failing_store(monkeypatch, error):
    """Make storing the "Setup" document raise ``error``, as a refused value or a lost server would."""
    from core.ingest import pipeline

    real_copy = pipeline.copy_chunks

    def failing_copy(session, rows):
        rows = list(rows)
        if rows[0].title == "Setup":
            raise error
        real_copy(session, rows)

    monkeypatch.setattr(pipeline, "copy_chunks", failing_copy)


def stored_titles_and_orphans(database):
    with database.sessions() as session:
        titles = set(session.scalars(sa.select(Document.title)))
        orphans = session.scalar(sa.select(sa.func.count()).select_from(Document).where(~Document.chunks.any()))
    return titles, orphans


def test_a_document_that_cannot_be_stored_is_reported_and_the_others_land(container, database, tmp_path, monkeypatch):
    # Storing runs in writer threads; one document's failure is that document's, rolled back whole
    # (its row and its chunks are one transaction), and named in the report.
    failing_store(monkeypatch, ValueError("value out of range"))

    report = container.ingestor.ingest([str(write_corpus(tmp_path / "docs"))], collection="default")

    assert [(Path(f.source).name, f.reason) for f in report.failed] == [
        ("setup.rst", "could not be stored: value out of range")
    ]
    assert report.added == 4
    titles, orphans = stored_titles_and_orphans(database)
    assert "Setup" not in titles and "Webhooks" in titles and orphans == 0


def test_losing_the_database_while_storing_ends_the_ingest_with_nothing_half_written(
    container, database, tmp_path, monkeypatch
):
    failing_store(monkeypatch, sa.exc.OperationalError("COPY", {}, Exception("server closed the connection")))

    with pytest.raises(sa.exc.OperationalError):
        container.ingestor.ingest([str(write_corpus(tmp_path / "docs"))], collection="default")

    titles, orphans = stored_titles_and_orphans(database)
    assert "Setup" not in titles and orphans == 0


def test_odd_content_never_stops_a_run_and_empty_files_are_skipped_not_failed(container, database, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "groups.rst").write_text("Groups\n======\n\nCollect `Group`\\s of `Item`\\s.\n")  # NULs inside docutils
    (docs / "empty.md").write_text("")
    (docs / "index.rst").write_text(".. include:: ../CHANGES.rst\n")  # nothing of its own to index
    (docs / "guide.md").write_text("# Guide\n\nRead the guide.\n")

    report = container.ingestor.ingest([str(docs)], collection="default")

    assert (report.added, report.failed) == (2, [])
    assert sorted(Path(s.source).name for s in report.skipped) == ["empty.md", "index.rst"]
    with database.sessions() as session:
        texts = set(session.scalars(sa.select(DocumentChunk.text)))
    assert "Collect `Group`s of `Item`s." in texts


def test_a_page_made_of_includes_is_indexed_with_the_included_text(container, database, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "_usage.rst").write_text("Usage\n-----\n\nCall ``frobnicate()`` twice.\n")
    (docs / "usage.rst").write_text("Usage guide\n===========\n\n.. include:: _usage.rst\n")

    report = container.ingestor.ingest([str(docs)], collection="default")

    assert (report.added, report.skipped, report.failed) == (2, [], [])
    with database.sessions() as session:
        texts = list(session.scalars(sa.select(DocumentChunk.text)))
    assert sum("Call `frobnicate()` twice." in t for t in texts) == 2  # the fragment, and the page that includes it


def test_changing_an_included_fragment_updates_the_page_that_includes_it(container, database, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "_limits.rst").write_text("The upload limit is 10 MB.\n")
    (docs / "limits.rst").write_text("Limits\n======\n\n.. include:: _limits.rst\n")
    container.ingestor.ingest([str(docs)], collection="default")

    (docs / "_limits.rst").write_text("The upload limit is 25 MB.\n")
    report = container.ingestor.ingest([str(docs)], collection="default")

    assert (report.updated, report.unchanged) == (2, 0)
    with database.sessions() as session:
        texts = " ".join(session.scalars(sa.select(DocumentChunk.text)))
    assert "25 MB" in texts and "10 MB" not in texts


def test_pages_include_examples_from_beside_the_docs_folder_and_follow_their_changes(container, database, tmp_path):
    # FastAPI keeps its examples in docs_src/, beside docs/en/docs; ingesting the docs folder with
    # the repository as include root shows them, and a changed example updates its page.
    docs = tmp_path / "docs" / "en" / "docs"
    docs.mkdir(parents=True)
    (tmp_path / "docs_src").mkdir()
    (tmp_path / "docs_src" / "upload.py").write_text("async def create_upload_file(file: UploadFile):\n    return file\n")
    (docs / "files.md").write_text("# Request Files\n\nUse `UploadFile`:\n\n{* ../../docs_src/upload.py *}\n")
    container.ingestor.ingest([str(docs)], collection="default", include_root=str(tmp_path))

    (tmp_path / "docs_src" / "upload.py").write_text("async def create_upload_file(file: UploadFile):\n    return file.filename\n")
    report = container.ingestor.ingest([str(docs)], collection="default", include_root=str(tmp_path))

    assert (report.updated, report.unchanged, report.failed) == (1, 0, [])
    with database.sessions() as session:
        text = " ".join(session.scalars(sa.select(DocumentChunk.text)))
    assert "```python\nasync def create_upload_file(file: UploadFile):\n    return file.filename\n```" in text


def test_an_include_root_that_does_not_hold_the_folder_is_refused(container, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nText.\n")
    (tmp_path / "elsewhere").mkdir()

    with pytest.raises(DocumentError, match="does not hold"):
        container.ingestor.ingest([str(tmp_path / "docs")], collection="default", include_root=str(tmp_path / "elsewhere"))


def test_cli_include_root_is_kept_for_the_folders_next_syncs(container, database, tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "retry.py").write_text("app.conf.task_acks_late = True\n")
    (docs / "retry.md").write_text("# Retries\n\nAcknowledge late:\n\n```python\n--8<-- \"examples/retry.py\"\n```\n")

    result = CliRunner().invoke(main, ["ingest", str(docs), "--collection", "cli", "--include-root", str(tmp_path)])
    (tmp_path / "examples" / "retry.py").write_text("app.conf.task_acks_late = False\n")
    source = next(s for s in container.sources.list(["cli"]) if s.target == str(docs))
    container.syncer.sync(source.id)

    assert result.exit_code == 0, result.output
    with database.sessions() as session:
        text = " ".join(session.scalars(sa.select(DocumentChunk.text)))
    assert "```python\napp.conf.task_acks_late = False\n```" in text


def test_cli_ingest_says_which_includes_it_could_not_read_and_how_to_read_them(container, tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    docs = tmp_path / "docs" / "en" / "docs"
    docs.mkdir(parents=True)
    (tmp_path / "docs_src").mkdir()
    (tmp_path / "docs_src" / "app.py").write_text("app = FastAPI()\n")
    (docs / "first-steps.md").write_text("# First Steps\n\nThe simplest file:\n\n{* ../../docs_src/app.py *}\n")
    (docs / "other.md").write_text("# Other\n\nNo includes here.\n")

    result = CliRunner().invoke(main, ["ingest", str(docs), "--collection", "cli", "--json"])
    plain = CliRunner().invoke(main, ["ingest", str(docs), "--collection", "cli2"])

    assert result.exit_code == 0 and plain.exit_code == 0, result.output
    missing = json.loads(result.output)["includes_not_found"]
    assert missing == [{"source": str(docs / "first-steps.md"), "reason": "not found: ../../docs_src/app.py"}]
    assert "1 page(s) include files not found inside the ingested folder" in plain.stderr
    assert "--include-root" in plain.stderr
