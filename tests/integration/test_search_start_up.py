"""`docrag search` as a process of its own: it loads only the search stack, lists what the same
command run in-process lists, and leaves the garbage collector as it found it once started
(bots/start_up_gc.py; bench/startup.py measures the time, tests never do)."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bots.cli import main
from tests.conftest import REPO

# Modules a search does not need: the web framework, the chat SDKs, the job queue and its driver,
# Alembic, the LLM client, and DocRag's own answering and ingestion stacks.
NOT_FOR_SEARCH = (
    "flask", "slack_bolt", "slack_sdk", "discord", "procrastinate", "psycopg", "alembic", "openai", "httpx",
    "core.answers.pipeline", "core.answers.llm", "core.questions.engine", "core.questions.store",
    "core.ingest.pipeline",
)

# Runs `docrag search` the way the console script does (main() with the process's own argv), then
# reports, on stderr, what it loaded and the collector's state.
PROBE = """
import gc, json, sys
from bots.cli import main
thresholds = gc.get_threshold()
sys.argv = ["docrag", *sys.argv[1:]]
try:
    main()
except SystemExit as stop:
    code = stop.code
print(json.dumps({{
    "exit": code,
    "loaded": sorted(m for m in {modules} if m in sys.modules),
    "thresholds_restored": gc.get_threshold() == thresholds,
    "frozen": gc.get_freeze_count(),
}}), file=sys.stderr)
"""

QUERY = ["search", "signing secret", "--json", "--k", "3"]


@pytest.fixture
def ingested(database, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "limits.md").write_text("# Rate limits\n\nEach user may ask ten questions per minute.\n")
    (docs / "slack.md").write_text("# Slack\n\nInstall the Slack app from the manifest and copy the signing secret.\n")
    assert CliRunner().invoke(main, ["ingest", str(docs)]).exit_code == 0
    return database_url


def run_search_process(database_url: str, cwd) -> tuple[list[dict], dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DATABASE_URL=database_url, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", PROBE.format(modules=NOT_FOR_SEARCH), *QUERY], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])


def test_the_search_process_loads_only_the_search_stack_and_lists_the_same_passages(ingested, tmp_path):
    rows, probe = run_search_process(ingested, tmp_path)
    assert probe["exit"] in (0, None)
    assert probe["loaded"] == []
    in_process = CliRunner().invoke(main, QUERY)
    assert in_process.exit_code == 0, in_process.output
    assert rows == json.loads(in_process.output)
    assert rows[0]["title"] == "Slack"


def test_the_search_process_collects_garbage_as_usual_once_started(ingested, tmp_path):
    _, probe = run_search_process(ingested, tmp_path)
    assert probe["thresholds_restored"]  # a long command would otherwise grow without collecting
    assert probe["frozen"] > 0  # what start-up built is never rescanned


def test_a_caller_running_the_command_in_its_own_process_keeps_its_collector(ingested):
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert CliRunner().invoke(main, QUERY).exit_code == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)
