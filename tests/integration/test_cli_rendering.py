"""What `docrag ask` and `docrag search` print: Markdown rendered for a terminal, clean text when
piped, snippets that end at a word."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from bots.cli import main
from tests.fakes.openai_server import FakeOpenAI

LLM_ANSWER = (
    "Use **docrag apikey revoke** to _retire_ a key [1].\n\n"
    "- list the keys with `docrag apikey list`\n"
    "- then revoke the old one\n"
)
LONG_PARAGRAPH = " ".join(
    f"Volume{n} snapshots are copied to the backup bucket every night before the maintenance window opens."
    for n in range(12)
)


@pytest.fixture
def docs(database, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keys.md").write_text("# API keys\n\nRevoke a key with docrag apikey revoke; list them first.\n")
    (folder / "backups.md").write_text(f"# Backups\n\n{LONG_PARAGRAPH}\n")
    assert CliRunner().invoke(main, ["ingest", str(folder)]).exit_code == 0
    return folder


@pytest.fixture
def llm(monkeypatch):
    with FakeOpenAI(chat_responder=lambda _body: LLM_ANSWER) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("DOCRAG_LLM", "openai")
        yield fake


def test_a_piped_answer_is_clean_text_without_markdown_characters(docs, llm):
    result = CliRunner().invoke(main, ["ask", "how do I revoke a key?"])

    assert result.exit_code == 0, result.output
    assert "Use docrag apikey revoke to retire a key [1]." in result.stdout
    assert "list the keys with docrag apikey list" in result.stdout
    assert not any(mark in result.stdout for mark in ("**", "_retire_", "`", "- list"))
    assert "[1] API keys" in result.stdout and "keys.md" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes when not a terminal


def test_in_a_terminal_markdown_becomes_styles(docs, llm, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # what rich sees as a terminal
    result = CliRunner().invoke(main, ["ask", "how do I revoke a key?"])

    assert result.exit_code == 0, result.output
    assert "\x1b[1m" in result.stdout  # bold, where the Markdown said **...**
    assert "**" not in result.stdout and "_retire_" not in result.stdout


def test_search_snippets_end_at_a_word_with_an_ellipsis(docs, monkeypatch):
    monkeypatch.setenv("DOCRAG_LLM", "extractive")
    result = CliRunner().invoke(main, ["search", "backup bucket snapshots"])

    assert result.exit_code == 0, result.output
    (snippet,) = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("Volume0")]
    assert snippet.endswith("…") and len(snippet) <= 300
    last_word = snippet[:-1].split()[-1]
    assert last_word in LONG_PARAGRAPH.split(), f"{last_word!r} is cut mid-word"


def test_search_loads_neither_web_nor_chat_nor_llm_sdks(docs, database_url):
    """A search needs the database and the retriever; nothing of the bots, the web app or an LLM."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    probe = (
        "import json, sys\nfrom bots.cli import main\n"
        "try:\n    main(['search', 'backup bucket'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in ('flask', 'slack_bolt', 'discord', 'openai', 'sentence_transformers',"
        " 'alembic', 'procrastinate', 'httpx') if m in sys.modules)))"
    )
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "HOME": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
