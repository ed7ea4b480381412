"""`docrag apikey create|list|revoke`, driven as an operator would, against the test database."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bots.cli_api import apikey_group
from tests.web.conftest import COLLECTION


@pytest.fixture
def cli(database, database_url):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(apikey_group, list(args), env={"DATABASE_URL": database_url}, catch_exceptions=False)

    return run


def test_a_created_key_is_printed_once_works_and_stops_working_when_revoked(cli, web):
    created = cli("create", "--collection", COLLECTION, "--name", "support widget", "--json")
    assert created.exit_code == 0, created.output
    payload = json.loads(created.output)
    key = payload["key"]
    assert key.startswith("drk_")

    assert web.post("/api/v1/ask", {"question": "how do I rotate my API key?"}, key=key).status_code == 200

    listed = cli("list")
    assert "support widget" in listed.output and COLLECTION in listed.output and "active" in listed.output
    assert key not in listed.output  # only a prefix is ever shown again

    revoked = cli("revoke", str(payload["id"]))
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert web.post("/api/v1/ask", {"question": "how do I rotate my API key?"}, key=key).status_code == 401
    assert "revoked" in cli("list").output


def test_the_plain_output_is_the_key_alone_on_stdout(cli):
    result = cli("create", "-c", "a", "-c", "b")
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("drk_") and len(result.stdout.strip().split()) == 1
    assert "not shown again" in result.stderr
    rows = json.loads(cli("list", "--json").output)
    assert rows[0]["collections"] == ["a", "b"]
    assert "key" not in rows[0]


def test_only_the_hash_is_stored(cli, database):
    key = json.loads(cli("create", "-c", COLLECTION, "--json").output)["key"]
    with database.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash, prefix FROM api_keys")).one()
    assert key not in stored.key_hash and len(stored.key_hash) == 64
    assert key.startswith(stored.prefix) and len(stored.prefix) < 16


def test_mistakes_are_one_clean_line(cli):
    unknown = cli("revoke", "999")
    assert unknown.exit_code == 1
    assert "No API key with id 999" in unknown.output and "Traceback" not in unknown.output
    bad_name = cli("create", "--collection", "../etc")
    assert bad_name.exit_code == 1 and "Invalid collection name" in bad_name.output
    missing = cli("create")
    assert missing.exit_code == 2 and "--collection" in missing.output
