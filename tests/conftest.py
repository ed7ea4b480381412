"""Shared fixtures: one fresh embedded PostgreSQL per test session, migrated to head.

Tests that need the database take ``database`` (clean tables for every test) and build
collaborators through ``make_container`` exactly as the processes do, with settings overrides.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
import sqlalchemy as sa

from bots.wiring import Container
from core.storage import schema
from core.config import Settings
from core.storage.db import Database, connect
from core.storage.embedded import start_embedded_postgres

# Settings must come from the test, never from a developer's .env or environment.
for _name in list(os.environ):
    if _name.startswith(("DOCRAG_", "OPENAI_", "SLACK_", "DISCORD_")) or _name == "DATABASE_URL":
        del os.environ[_name]

REPO = Path(__file__).resolve().parent.parent
APP_TABLES = (
    "collections",
    "documents",
    "document_chunks",
    "term_stats",
    "workspace_collections",
    "channel_settings",
    "conversations",
    "messages",
    "feedback",
    "rate_limits",
    "processed_events",
    "question_traces",
    "question_daily",
    "document_citations",
    "feedback_daily",
    "knowledge_gaps",
    "workspace_privacy",
    "digest_channels",
    "api_keys",
    "ingest_jobs",
    "sources",
    "slack_installations",
    "slack_bots",
    "slack_oauth_states",
    "web_sessions",
    "procrastinate_jobs",
    "procrastinate_workers",
    "procrastinate_periodic_defers",
    "procrastinate_events",
)


@pytest.fixture(scope="session")
def pg_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="docrag-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_dir: Path) -> str:
    url = start_embedded_postgres(pg_dir, cleanup_mode="delete")
    schema.upgrade(url)
    return url


@pytest.fixture(scope="session")
def _session_database(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def session_database(_session_database: Database) -> Database:
    """The shared Database without per-test truncation, for module-scoped bots and fakes."""
    return _session_database


@pytest.fixture
def empty_database(database_url: str) -> Iterator[Callable[[str], str]]:
    """Make an empty database of the given name on the session's server (its URL); each is
    dropped afterwards, connections and all."""
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make(name: str) -> str:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return sa.engine.make_url(database_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def truncate_all(database: Database) -> None:
    with database.engine.begin() as conn:
        existing = set(sa.inspect(conn).get_table_names())
        tables = [t for t in APP_TABLES if t in existing]
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        # Collection ids restart, so a per-collection vector index must go with its collection.
        for name in conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'document_chunks' AND indexname LIKE 'ix_chunk_vectors_c%'"
        )).scalars():
            conn.execute(sa.text(f'DROP INDEX "{name}"'))


@pytest.fixture
def database(_session_database: Database) -> Database:
    truncate_all(_session_database)
    return _session_database


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {"database_url": database_url, "data_dir": tmp_path / "data", "llm": "extractive"}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def make_container(database: Database, make_settings: Callable[..., Settings]) -> Callable[..., Container]:
    def make(**overrides: object) -> Container:
        return Container(settings=make_settings(**overrides), database=database)

    return make


@pytest.fixture
def container(make_container: Callable[..., Container]) -> Container:
    return make_container()


@pytest.fixture
def docs_dir() -> Path:
    return REPO / "docs"

