"""A learned answer in the playground and the terminal: "answered in #channel on DATE", not a doc."""
from __future__ import annotations

from datetime import datetime, timezone

from core.ingest.learned import ResolvedThread, learn
from core.types import SessionKey
from tests.web.conftest import COLLECTION
from tests.web.test_playground import ask, open_page

QUESTION = "which button gives me a fresh API key when mine leaked?"
PERMALINK = "https://acme.slack.com/archives/C1/p1765099800000100"


def learned_thread() -> ResolvedThread:
    return ResolvedThread(
        key=SessionKey("slack", "T1", "C1", "1765099800.000100", "U7"), channel_name="support", private=False,
        question=QUESTION, answer="Open Settings, choose API keys and click Rotate.", permalink=PERMALINK,
        confirmed_by="Ada", confirmed_at=datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc),
    )


def test_the_playground_cites_a_learned_answer_as_the_thread_it_came_from(web):
    learn(web.container.ingestor, learned_thread(), collection=COLLECTION, grounded=True)
    assert ask(web.client, QUESTION).status_code == 303
    page = open_page(web.client)
    assert 'class="learned"' in page
    assert f'<a href="{PERMALINK}" rel="nofollow noopener noreferrer">answered in #support on 2026-12-07</a>' in page
    assert "from a chat thread, not the official docs" in page


def test_the_terminal_cites_a_learned_answer_as_the_thread_it_came_from(web, database_url, monkeypatch):
    from click.testing import CliRunner

    from bots.cli import main

    learn(web.container.ingestor, learned_thread(), collection=COLLECTION, grounded=True)
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["ask", QUESTION, "--collection", COLLECTION])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())  # the terminal wraps at its width
    assert "[1] answered in #support on 2026-12-07 (from a chat thread, not the official docs)" in shown
    assert "From the thread answered in #support on 2026-12-07 [1]" in shown
    assert PERMALINK in result.output
