"""Sources as an operator uses them: `docrag ingest` records them, `docrag source` adds, lists, shows,
syncs and removes them, and a sync that fails leaves the index as it was."""
import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bots.cli import main
from core.storage.models import Document
from tests.builders import write_docs


@pytest.fixture
def cli(database, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOCRAG_LLM", "extractive")
    runner = CliRunner()

    def run(*args, code=0):
        result = runner.invoke(main, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, result.output
        return result.output

    return run


def documents(database, collection_id=None):
    with database.sessions() as session:
        return sorted(session.scalars(sa.select(Document.source_uri)).all())


def test_ingest_records_each_target_as_a_source_and_reuses_it(cli, tmp_path):
    guide = write_docs(tmp_path / "guide", {"a.md": "# A\n\nAlpha.\n", "b.md": "# B\n\nBeta.\n"})
    faq = write_docs(tmp_path / "faq", {"c.md": "# C\n\nGamma.\n"})

    cli("ingest", guide, faq, "--collection", "handbook")
    cli("ingest", guide, "--collection", "handbook")  # the same folder again: the same source

    rows = json.loads(cli("source", "list", "--json"))
    assert [(r["kind"], r["target"], r["documents"], r["collection"]) for r in rows] == [
        ("folder", guide.as_posix(), 2, "handbook"),
        ("folder", faq.as_posix(), 1, "handbook"),
    ]


def test_removing_a_source_removes_exactly_its_documents(cli, database, tmp_path):
    guide = write_docs(tmp_path / "guide", {"a.md": "# A\n\nAlpha.\n", "b.md": "# B\n\nBeta.\n"})
    faq = write_docs(tmp_path / "faq", {"c.md": "# C\n\nGamma shared words.\n"})
    cli("ingest", guide, faq)
    guide_id = next(r["id"] for r in json.loads(cli("source", "list", "--json")) if r["target"] == guide.as_posix())

    out = cli("source", "remove", guide_id, "--yes")

    assert "its 2 documents" in out
    assert documents(database) == [(faq / "c.md").as_posix()]
    assert "Gamma" in cli("search", "gamma")
    assert "Alpha" not in cli("search", "alpha")


def test_a_folder_source_syncs_changes_and_removes_a_file_only_after_confirming_it(cli, database, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCRAG_SYNC_CONFIRM_MISSING", "2")
    folder = write_docs(tmp_path / "docs", {"a.md": "# A\n\nAlpha.\n", "b.md": "# B\n\nBeta.\n"})
    added = json.loads(cli("source", "add", "folder", folder, "--name", "docs", "--json"))
    assert added["sync"]["counts"]["added"] == 2
    source_id = added["source"]["id"]

    (folder / "a.md").write_text("# A\n\nAlpha, revised.\n")
    (folder / "b.md").unlink()
    first = json.loads(cli("source", "sync", source_id, "--json"))
    assert (first["counts"]["updated"], first["counts"]["removed"], first["counts"]["pending_removal"]) == (1, 0, 1)
    assert len(documents(database)) == 2  # b.md is kept: one sync is not a confirmation

    second = json.loads(cli("source", "sync", source_id, "--json"))
    assert (second["counts"]["unchanged"], second["counts"]["removed"]) == (1, 1)
    assert documents(database) == [(folder / "a.md").as_posix()]


def test_a_failed_sync_keeps_the_index_and_records_the_error(cli, database, tmp_path):
    folder = write_docs(tmp_path / "docs", {"a.md": "# A\n\nAlpha.\n"})
    source_id = json.loads(cli("source", "add", "folder", folder, "--json"))["source"]["id"]
    (folder / "a.md").unlink()
    folder.rmdir()  # the folder is gone (an unmounted share): not a reason to empty the collection

    out = cli("source", "sync", source_id, code=3)

    assert "failed" in out and "no such file or folder" in out
    assert documents(database) == [(tmp_path / "docs" / "a.md").as_posix()]
    shown = json.loads(cli("source", "show", source_id, "--json"))
    assert shown["status"] == "failed" and shown["consecutive_failures"] == 1
    assert "no such file or folder" in shown["last_error"]
    assert "last error" in cli("source", "show", source_id)


def test_credentials_are_names_of_environment_variables_and_never_printed(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCS_REPO_TOKEN", "s3cr3t-t0ken-value")
    out = cli("source", "add", "git", "https://127.0.0.1:9/nothing/here.git", "--branch", "main",
              "--credential", "token=DOCS_REPO_TOKEN", code=3)  # nothing listens there: the sync fails
    source = json.loads(cli("source", "list", "--json"))[0]

    assert source["credentials"] == {"token": "DOCS_REPO_TOKEN"}
    shown = cli("source", "show", source["id"])
    assert "token from $DOCS_REPO_TOKEN" in shown
    for text in (out, shown, json.dumps(source)):
        assert "s3cr3t-t0ken-value" not in text


def test_bad_sources_are_refused_with_the_reason(cli, tmp_path):
    assert "no such file or folder" in cli("source", "add", "folder", tmp_path / "missing", code=1)
    assert "neither an interval" in cli("source", "add", "folder", tmp_path, "--every", "sometimes", code=1)
    assert "--branch" in cli("source", "add", "folder", tmp_path, "--branch", "main", code=2)
    assert "No source with id 42" in cli("source", "show", 42, code=1)
