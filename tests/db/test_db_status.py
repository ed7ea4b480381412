"""`docrag db status`, as an operator runs it: server, schema, DocRag's connections, largest relations."""
import json

from click.testing import CliRunner

from bots.cli import main
from core.storage.db import ConnectionProfile, connect


def test_db_status_shows_server_schema_connections_and_largest_relations(database, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Pools\n\nEach process sizes its pool from its threads.\n")
    assert CliRunner().invoke(main, ["ingest", str(docs)]).exit_code == 0
    web = connect(database_url, profile=ConnectionProfile(application_name="docrag-web"))
    held = web.engine.connect()  # a web process holding one connection
    try:
        result = CliRunner().invoke(main, ["db", "status", "--json"])
        text = CliRunner().invoke(main, ["db", "status"])
    finally:
        held.close()
        web.dispose()
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["server_version"].split(".")[0].isdigit()
    assert status["schema_current"] is True and status["schema_revision"] == status["code_revision"]
    by_name = {p["application_name"]: p for p in status["processes"]}
    assert by_name["docrag-web"]["total"] >= 1
    assert "docrag-cli" in by_name  # the status command's own connection
    tables = [t["name"] for t in status["tables"]]
    assert "document_chunks" in tables
    assert all(i["table"] for i in status["indexes"]) and status["indexes"]
    assert text.exit_code == 0, text.output
    assert "PostgreSQL" in text.output and "docrag-web" in text.output and "document_chunks" in text.output
    assert "up to date" in text.output
    assert status["planned_connections"]["web"] > 0  # the deployment's worst case, as docs/database.md computes it
