"""Privacy controls: retention with its purge job, a workspace's opt-out from stored question text,
and one user's data exported or deleted from the command line."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bots.cli import main
from bots.worker import build_worker_app
from core.console.jobs import PURGE_TASK
from core.console.privacy import set_question_text_storage
from core.types import SessionKey
from tests.builders import SAMPLE_DOCS, write_docs

QUESTION = "How do I rotate my API key?"


@pytest.fixture
def asked(container, tmp_path):
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", SAMPLE_DOCS))], collection="default")
    return container


def key(user: str, workspace: str = "T1", thread: str = "t") -> SessionKey:
    return SessionKey("slack", workspace, "C1", f"{thread}-{user}", user)


def count(container, sql: str) -> int:
    with container.database.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def age(container, days: int) -> None:
    with container.database.engine.begin() as conn:
        for table, column in (("messages", "created_at"), ("question_traces", "asked_at"), ("conversations", "updated_at")):
            conn.execute(sa.text(f"UPDATE {table} SET {column} = {column} - make_interval(days => :d)"), {"d": days})


def test_the_daily_purge_job_removes_questions_past_retention_and_keeps_the_counts(asked, make_container):
    asked.engine.ask(key("old"), QUESTION)
    age(asked, 100)
    asked.engine.ask(key("new"), QUESTION)
    container = make_container(question_retention_days=90)
    worker_app = build_worker_app(container, container.lifecycle(None), None)  # no opened job app: the purge defers nothing

    worker_app.tasks[PURGE_TASK](timestamp=0)

    assert count(asked, "SELECT count(*) FROM messages WHERE user_id = 'old'") == 0
    assert count(asked, "SELECT count(*) FROM question_traces") == 1
    assert count(asked, "SELECT count(*) FROM conversations") == 1
    assert count(asked, "SELECT sum(count) FROM question_daily") == 2  # the charts keep their history
    assert any(p.task.name == PURGE_TASK for p in worker_app.periodic_registry.periodic_tasks.values())


def test_retention_zero_keeps_everything(asked, make_container):
    asked.engine.ask(key("old"), QUESTION)
    age(asked, 4000)
    container = make_container(question_retention_days=0)
    build_worker_app(container, container.lifecycle(None), None).tasks[PURGE_TASK](timestamp=0)
    assert count(asked, "SELECT count(*) FROM question_traces") == 1


def test_an_opted_out_workspace_keeps_counts_only(asked):
    asked.engine.ask(key("alice", workspace="T1"), QUESTION)
    set_question_text_storage(asked.database.sessions, "slack", "T1", store=False)
    asked.engine.ask(key("bob", workspace="T1"), QUESTION)
    asked.engine.ask(key("carol", workspace="T2"), QUESTION)

    assert count(asked, "SELECT count(*) FROM question_traces WHERE workspace = 'T1' AND question IS NOT NULL") == 0
    assert count(asked, "SELECT count(*) FROM messages WHERE user_id = 'bob' AND text <> ''") == 0
    assert count(asked, "SELECT count(*) FROM question_traces WHERE workspace = 'T2' AND question IS NOT NULL") == 1
    assert count(asked, "SELECT sum(count) FROM question_daily") == 3


@pytest.fixture
def cli(asked, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*args):
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_export_and_delete_one_users_data(asked, cli):
    answer = asked.engine.ask(key("alice"), QUESTION)
    asked.engine.ask(key("bob"), QUESTION)
    asked.engine.record_feedback(answer.message_id, platform="slack", user_id="alice", score=1)

    exported = json.loads(cli("export", "--platform", "slack", "--user", "alice"))
    assert [q["question"] for q in exported["questions"]] == [QUESTION]
    assert "Rotate" in exported["questions"][0]["answer"]
    assert exported["feedback"][0]["score"] == 1

    assert "Deleted 1 questions" in cli("delete", "--platform", "slack", "--user", "alice", "--yes")
    assert json.loads(cli("export", "--platform", "slack", "--user", "alice"))["questions"] == []
    assert count(asked, "SELECT count(*) FROM messages WHERE user_id = 'bob'") == 1
    assert count(asked, "SELECT count(*) FROM question_traces WHERE user_id = 'alice'") == 0
    assert count(asked, "SELECT count(*) FROM feedback") == 0


def test_the_privacy_command_forgets_stored_text(asked, cli):
    asked.engine.ask(key("alice"), QUESTION)
    assert "no longer stored" in cli("privacy", "text", "forget", "--platform", "slack", "--workspace", "T1")
    assert count(asked, "SELECT count(*) FROM question_traces WHERE question IS NOT NULL") == 0
