"""The upgrade window: the previous release keeps working on the new schema, and migrations wait
for their locks only briefly (docs/migrations.md).

"The previous release" is the code as it was just before the newest migration landed on main,
taken from git history (CI runs on a full clone) and run in a subprocess of its own: its real
ingestion and engine, not a model of them, on this checkout's installed libraries. A new
migration not committed yet makes HEAD the previous release. The script below uses only the
calls every release has had (build_container, ingestor.ingest, engine.ask); should one change,
the script changes with it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from io import BytesIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from bots.wiring import build_container, open_database
from core.storage import schema
from core.types import SessionKey
from tests.builders import SAMPLE_DOCS, write_docs
from tests.conftest import REPO

QUESTION = "how do I rotate my API key?"


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: git grep found nothing
        pytest.fail(f"git {' '.join(args)} failed ({done.stderr.strip()}); these tests need the repository's "
                    "full history (a full clone, or `git fetch --unshallow`)")
    return done.stdout


def revisions_at(commit: str) -> set[str]:
    found = git("grep", "-h", "-E", "^revision = ", commit, "--", "migrations/versions")
    return set(re.findall(r'^revision = "([^"]+)"', found, re.M))


def previous_release() -> str:
    """The newest commit on main's line whose migrations stop one before the current head."""
    head = schema.head_revision()
    if head not in revisions_at("HEAD"):
        return git("rev-parse", "HEAD").strip()
    for commit in git("log", "--first-parent", "--format=%H", "--", "migrations/versions").split():
        parent = git("rev-parse", f"{commit}^1").strip()
        if head not in revisions_at(parent):
            return parent
    pytest.fail(f"no commit in the history predates migration {head}")


def down_revision_of_head() -> str:
    script = ScriptDirectory.from_config(schema.alembic_config("postgresql://"))
    down = script.get_revision(script.get_current_head()).down_revision
    assert isinstance(down, str), "the newest migration follows exactly one other"
    return down


def checkout(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "core", "bots", "adapters", "migrations"],
                             capture_output=True, check=True).stdout
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.11.4+
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, **safe)  # our own repository's files
    return into


# What the previous release does in its own process: ingest a folder, answer from its own documents
# and from those the new release wrote; it prints what it saw.
PREVIOUS_RELEASE_SCRIPT = textwrap.dedent("""
    import json, sys
    from bots.wiring import build_container
    from core.config import Settings
    from core.types import SessionKey

    url, folder, phase, data_dir = sys.argv[1:5]
    settings = Settings(_env_file=None, database_url=url, llm="extractive", data_dir=data_dir)
    container = build_container(settings, check_schema=False)  # a process started before the upgrade
    container.ingestor.ingest([folder], collection=f"old-{phase}", base_url="https://docs.example.com/")
    seen = {}
    for collection in sys.argv[5:]:
        key = SessionKey("cli", "window", "terminal", f"{phase}-{collection}", "previous-release")
        answer = container.engine.ask(key, "how do I rotate my API key?", collection=collection)
        seen[collection] = [c.source for c in answer.citations]
    print(json.dumps(seen))
""")


def run_previous_release(code: Path, url: str, folder: Path, phase: str, *collections: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PREVIOUS_RELEASE_SCRIPT, url, str(folder), phase, str(code / ".docrag"), *collections],
        cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"the previous release failed on this schema:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def window_database(empty_database):
    """A database of its own on the session's server, dropped afterwards."""
    return empty_database("upgrade_window")


def test_the_previous_release_keeps_working_on_the_new_schema(window_database, make_settings, tmp_path):
    code = checkout(previous_release(), tmp_path / "previous-release")
    folder = write_docs(tmp_path / "docs", SAMPLE_DOCS)
    schema.upgrade(window_database, down_revision_of_head())
    before = run_previous_release(code, window_database, folder, "before", "old-before")
    assert any("keys.md" in s for s in before["old-before"]), "the previous release answers on its own schema"

    schema.upgrade(window_database, "head")  # the release phase of the new release
    new = build_container(make_settings(database_url=window_database))  # checks the schema, as processes do
    try:
        new.ingestor.ingest([str(folder)], collection="new", base_url="https://docs.example.com/")
        # The old processes go on (and restart) during the window: they write, and read old and new data.
        during = run_previous_release(code, window_database, folder, "during", "old-before", "old-during", "new")
        assert all(any("keys.md" in source for source in during[c]) for c in during), during
        # The new release reads what the previous one wrote during the window.
        key = SessionKey("cli", "window", "terminal", "new-reads-old", "new-release")
        answer = new.engine.ask(key, QUESTION, collection="old-during")
        assert any("keys.md" in c.source for c in answer.citations)
        with new.database.engine.connect() as conn:
            asked = conn.execute(sa.text("SELECT count(*) FROM messages WHERE role = 'user'")).scalar()
        assert asked == 1 + 3 + 1  # every question the two releases accepted is there, once
    finally:
        new.database.dispose()


def test_a_migration_waiting_for_a_lock_gives_up_instead_of_stalling_traffic(window_database):
    schema.upgrade(window_database, down_revision_of_head())
    blocker = sa.create_engine(window_database)
    with blocker.connect() as conn:
        # A long transaction holding a lock the migration needs (every migration updates alembic_version).
        # Should the lock timeout be missing, the blocker gives up after a minute and the test fails.
        conn.execute(sa.text("SET idle_in_transaction_session_timeout = '60s'"))
        conn.execute(sa.text("LOCK TABLE alembic_version IN SHARE MODE"))
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            schema.upgrade(window_database, "head")
        conn.rollback()
    blocker.dispose()

    engine = sa.create_engine(window_database)
    try:
        assert schema.current_revision(engine) == down_revision_of_head(), "the failed migration left nothing behind"
        schema.upgrade(window_database, "head")  # run again once the long transaction is gone
        assert schema.current_revision(engine) == schema.head_revision()
    finally:
        engine.dispose()


def test_a_process_of_the_previous_release_starts_on_a_newer_schema(window_database, make_settings):
    schema.upgrade(window_database, "head")
    engine = sa.create_engine(window_database)
    with engine.begin() as conn:  # as the next release's migration would leave it
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_next_release'"))
    engine.dispose()
    database = open_database(make_settings(database_url=window_database))
    database.dispose()
