"""`docrag --help` and every command's own help load no heavy module: the start-up stays instant
(bench/startup.py measures it; this keeps an import at module level from creeping back)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("pydantic", "sqlalchemy", "alembic", "flask", "slack_bolt", "discord", "openai", "sentence_transformers",
         "procrastinate", "httpx")

PROBE = """
import json, sys
from bots.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def loaded_by(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_loads_no_heavy_module():
    assert loaded_by("--help") == []


def test_a_commands_help_loads_no_heavy_module():
    for command in (["search", "--help"], ["ingest", "--help"], ["serve", "--help"], ["apikey", "list", "--help"]):
        assert loaded_by(*command) == [], command
