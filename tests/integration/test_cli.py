"""The `docrag` command: search, ask with follow-ups, chat — as an operator uses them."""
import json

import pytest
from click.testing import CliRunner

from bots.cli import main


@pytest.fixture
def cli(database, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOCRAG_LLM", "extractive")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "limits.md").write_text("# Rate limits\n\nEach user may ask ten questions per minute.\n")
    (docs / "slack.md").write_text("# Slack\n\nInstall the Slack app from the manifest and copy the signing secret.\n")
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(docs)]).exit_code == 0

    def run(*args, input=None):
        result = runner.invoke(main, list(args), input=input)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_search_json_lists_ranked_passages(cli):
    rows = json.loads(cli("search", "signing secret", "--json", "--k", "3"))
    assert rows[0]["title"] == "Slack"
    assert {"source", "title", "heading", "score", "text"} == set(rows[0])


def test_ingest_says_when_it_builds_a_collections_vector_index(database, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOCRAG_VECTOR_INDEX_MIN_CHUNKS", "2")
    (tmp_path / "a.md").write_text("# A\n\nFirst page.\n")
    (tmp_path / "b.md").write_text("# B\n\nSecond page.\n")

    first = CliRunner().invoke(main, ["ingest", str(tmp_path), "--collection", "small"])
    again = CliRunner().invoke(main, ["ingest", str(tmp_path), "--collection", "small"])

    assert first.exit_code == 0, first.output
    assert "Building the collection's vector index (2 chunks" in first.stderr
    assert "vector index" not in again.stderr  # nothing changed, nothing to build


def test_search_fuses_by_reciprocal_rank_when_configured(cli, monkeypatch):
    convex = json.loads(cli("search", "signing secret", "--json", "--k", "3"))
    monkeypatch.setenv("DOCRAG_FUSION", "rrf")
    rrf = json.loads(cli("search", "signing secret", "--json", "--k", "3"))

    assert convex[0]["score"] == pytest.approx(1.0)  # best in both legs, normalised
    # First in both legs: 1/(60+1) from each, weighted by shares that sum to 1 (5 decimals).
    assert rrf[0]["score"] == pytest.approx(1 / 61, abs=1e-5)
    assert rrf[0]["title"] == convex[0]["title"] == "Slack"


def test_ask_json_and_a_follow_up_in_the_same_thread(cli):
    first = json.loads(cli("ask", "how many questions per minute?", "--json"))
    assert "ten questions per minute" in first["answer"]
    assert first["citations"][0] == {"n": 1, "source": first["citations"][0]["source"], "title": "Rate limits"}

    follow = json.loads(cli("ask", "and per user?", "--thread", first["session"], "--json"))
    assert follow["session"] == first["session"]
    assert follow["citations"][0]["title"] == "Rate limits"


def test_chat_keeps_context_and_shows_sources(cli):
    output = cli("chat", input="how do I install the Slack app?\nexit\n")
    assert "manifest" in output and "Sources:" in output and "[1] Slack" in output


def _count(database, sql):
    import sqlalchemy as sa

    with database.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_ask_with_the_same_request_id_prints_the_stored_answer_once(cli, database):
    first = json.loads(cli("ask", "how many questions per minute?", "--request-id", "job-42", "--json"))
    again = json.loads(cli("ask", "how many questions per minute?", "--request-id", "job-42", "--json"))

    assert again == first  # the same thread too, though none was passed
    assert _count(database, "SELECT count(*) FROM messages WHERE role = 'user'") == 1
    assert _count(database, "SELECT count(*) FROM messages WHERE role = 'assistant'") == 1
    assert _count(database, "SELECT count(*) FROM question_deliveries WHERE delivered_at IS NOT NULL") == 1


def test_a_request_id_used_for_another_question_is_refused(cli):
    cli("ask", "how many questions per minute?", "--request-id", "job-43")
    result = CliRunner().invoke(main, ["ask", "how do I install the Slack app?", "--request-id", "job-43"])

    assert result.exit_code == 1 and "asked another question" in result.output


def test_a_question_left_by_a_killed_cli_is_answered_by_asking_again(cli, database):
    from bots.cli import cli_session
    from bots.wiring import Container
    from core.config import load_settings

    container = Container(settings=load_settings(), database=database)
    with cli_door(container) as door:  # a CLI that stored its question, then died before answering
        accepted = door.accept(cli_session("killed"), "how many questions per minute?", request="cli:local:job-44")
    with database.engine.begin() as conn:  # no renewals from the dead process: its lease runs out
        import sqlalchemy as sa

        conn.execute(sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = :j"), {"j": accepted.job_id})

    answer = json.loads(cli("ask", "how many questions per minute?", "--request-id", "job-44", "--json"))

    assert "ten questions per minute" in answer["answer"] and answer["session"] == "killed"
    assert _count(database, "SELECT count(*) FROM messages WHERE role = 'assistant'") == 1
    assert _count(database, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')") == 0


def cli_door(container):
    from bots.cli_questions import waiting_door

    return waiting_door(container)


def test_a_question_about_an_option_can_start_with_a_dash_and_needs_no_quotes(cli):
    # "docrag search --signing" used to stop at "No such option"; people ask about options often.
    rows = json.loads(cli("search", "--signing", "secret", "--json", "--k", "1"))
    assert rows[0]["title"] == "Slack"

    answer = json.loads(cli("ask", "how", "many", "questions", "per", "minute?", "--json"))
    assert answer["grounded"] and "ten questions per minute" in answer["answer"]
