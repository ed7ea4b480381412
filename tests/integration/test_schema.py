"""The schema only changes through Alembic, and processes refuse a schema the code does not match."""
import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bots.cli import main
from bots.wiring import open_database
from core.storage import schema
from core.storage.db import check_pgvector
from core.errors import ConfigurationError, SchemaOutOfDate


@pytest.fixture
def scratch_database(empty_database):
    """A second, empty database on the session's server, dropped afterwards."""
    return empty_database("scratch")


def tables(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_go_up_and_down_cleanly(scratch_database):
    schema.upgrade(scratch_database)
    created = tables(scratch_database)
    assert {"collections", "documents", "document_chunks", "conversations", "messages", "feedback",
            "rate_limits", "processed_events", "procrastinate_jobs"} <= created

    schema.downgrade(scratch_database, "base")
    assert tables(scratch_database) <= {"alembic_version"}

    schema.upgrade(scratch_database)  # and up again, as after a rollback
    assert tables(scratch_database) == created


def test_first_migration_creates_the_vector_extension(scratch_database):
    schema.upgrade(scratch_database, "0001")
    engine = sa.create_engine(scratch_database)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).scalar() == 1
    engine.dispose()


def test_out_of_date_schema_is_refused_with_the_command_to_run(scratch_database, make_settings):
    schema.upgrade(scratch_database, "0001")
    with pytest.raises(SchemaOutOfDate, match="docrag db upgrade"):
        open_database(make_settings(database_url=scratch_database))


def test_cli_refuses_to_ingest_before_upgrade_and_names_the_command(scratch_database, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", scratch_database)
    (tmp_path / "a.md").write_text("# A\n\nText.")
    result = CliRunner().invoke(main, ["ingest", str(tmp_path)])
    assert result.exit_code != 0
    assert "docrag db upgrade" in result.output
    assert "Traceback" not in result.output

    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "collections" in tables(scratch_database)


def test_a_server_without_pgvector_is_named_in_one_line(scratch_database):
    # A server without pgvector lists no 'vector' among its available extensions. This one has it,
    # so a view that shadows pg_catalog's (search_path puts it first) plays a server without it.
    setup = sa.create_engine(scratch_database)
    with setup.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA plain_server"))
        conn.execute(sa.text("CREATE VIEW plain_server.pg_available_extensions AS "
                             "SELECT name FROM pg_catalog.pg_available_extensions WHERE name <> 'vector'"))
    setup.dispose()
    engine = sa.create_engine(scratch_database, connect_args={"options": "-c search_path=plain_server,pg_catalog"})
    try:
        with pytest.raises(ConfigurationError) as refused:
            check_pgvector(engine)
    finally:
        engine.dispose()
    message = str(refused.value)
    assert "has no pgvector extension" in message and "unset DATABASE_URL" in message
    assert "\n" not in message


def test_an_unreachable_server_is_named_without_its_password():
    engine = sa.create_engine("postgresql+psycopg2://docrag:s3cret-pw@127.0.0.1:1/docrag")
    with pytest.raises(ConfigurationError) as refused:
        check_pgvector(engine)
    message = str(refused.value)
    assert message.startswith("Cannot connect to PostgreSQL at postgresql+psycopg2://docrag:***@127.0.0.1:1/docrag")
    assert "s3cret-pw" not in message


def test_the_start_up_check_reads_revisions_as_alembic_does(database):
    """ensure_current does without Alembic (start-up time); its answers must be Alembic's."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    alembic_head = ScriptDirectory.from_config(schema.alembic_config("postgresql://")).get_current_head()
    with database.engine.connect() as conn:
        alembic_current = MigrationContext.configure(conn).get_current_revision()

    assert schema.head_revision() == alembic_head
    assert schema.current_revision(database.engine) == alembic_current == alembic_head


def test_upgrading_turns_stored_file_links_into_links_relative_to_the_ingested_folder(scratch_database):
    """Collections ingested before 0010 linked to file:///server/paths; after it nothing shows them."""
    schema.upgrade(scratch_database, "0009")
    engine = sa.create_engine(scratch_database)
    old = "file:///srv/team%20docs/guide/install.md"
    with engine.begin() as conn:
        coll = conn.execute(sa.text(
            "INSERT INTO collections (name, embedder, dimension) VALUES ('c', 'hashing', 3) RETURNING id"
        )).scalar()
        doc = conn.execute(sa.text(
            "INSERT INTO documents (collection_id, source_uri, link, title, content_hash, metadata) "
            "VALUES (:c, '/srv/team docs/guide/install.md', :link, 'Install', 'h', "
            "CAST('{\"root\": \"/srv/team docs\"}' AS jsonb)) RETURNING id"
        ), {"c": coll, "link": old}).scalar()
        conn.execute(sa.text(
            "INSERT INTO document_chunks (document_id, collection_id, position, title, heading, link, text, "
            "token_count, embedding) VALUES (:d, :c, 0, 'Install', 'Steps', :link, 'Run it.', 2, '[1,0,0]')"
        ), {"d": doc, "c": coll, "link": old + "#steps"})
        conv = conn.execute(sa.text(
            "INSERT INTO conversations (platform, workspace, channel, thread, collection_id) "
            "VALUES ('web', 'playground', 'playground', 't', :c) RETURNING id"
        ), {"c": coll}).scalar()
        conn.execute(sa.text(
            "INSERT INTO messages (conversation_id, role, user_id, text, citations) VALUES (:conv, 'assistant', '', 'Run it [1] [2].', "
            "CAST(:citations AS jsonb))"
        ), {"conv": conv, "citations": json.dumps([
            {"n": 1, "title": "Install", "source": old + "#steps", "heading": "Steps"},
            {"n": 2, "title": "Gone", "source": "file:///srv/other/place/notes.md", "heading": ""},
        ])})

    schema.upgrade(scratch_database)

    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT link FROM documents")).scalar() == "guide/install.md"
        assert conn.execute(sa.text("SELECT link FROM document_chunks")).scalar() == "guide/install.md#steps"
        citations = conn.execute(sa.text("SELECT citations FROM messages")).scalar()
    engine.dispose()
    assert [c["source"] for c in citations] == ["guide/install.md#steps", "notes.md"]
    assert "/srv" not in json.dumps(citations)
