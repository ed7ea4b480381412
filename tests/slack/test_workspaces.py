"""Each workspace answers from its own collection; OAuth installs give each workspace its own bot."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.tenancy.collections import get_collection, map_workspace
from tests.builders import write_docs
from tests.slack.harness import BASE_URL, CHANNEL, QUESTION, block_text

ACME_DOCS = {
    "acme-keys.md": "# Acme API keys\n\n## Rotating your API key\n\n"
    "To rotate your API key at Acme, run acme keys rotate --now in a terminal. "
    "The old API key stops working immediately.\n",
}
OAUTH_TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")


def ingest_acme(harness, tmp_path) -> None:
    harness.container.ingestor.ingest([str(write_docs(tmp_path / "acme", ACME_DOCS))], collection="acme",
                                      base_url="https://acme.example.com/")


def map_to(harness, team_id: str, collection: str) -> None:
    with harness.container.database.sessions.begin() as session:
        map_workspace(session, "slack", team_id, get_collection(session, collection))


def ask_in(harness, team_id: str, *, bot_user_id: str) -> str:
    event = harness.user_message(f"<@{bot_user_id}> {QUESTION}", event_type="app_mention")
    assert harness.event(event, team_id=team_id, bot_user_id=bot_user_id).status_code == 200
    return event["ts"]


def test_two_workspaces_mapped_to_different_collections_are_isolated(harness, tmp_path):
    ingest_acme(harness, tmp_path)
    map_to(harness, "T0ACME0001", "acme")  # T0000001 (the fake's default team) stays on "default"

    default_ts = ask_in(harness, harness.slack.team_id, bot_user_id=harness.slack.bot_user_id)
    acme_ts = ask_in(harness, "T0ACME0001", bot_user_id=harness.slack.bot_user_id)
    harness.settle()

    [default_answer] = harness.answers(CHANNEL, default_ts)
    [acme_answer] = harness.answers(CHANNEL, acme_ts)
    assert "click Rotate" in block_text(default_answer) and BASE_URL in block_text(default_answer)
    assert "acme" not in block_text(default_answer).lower()
    assert "acme keys rotate" in block_text(acme_answer)
    assert BASE_URL not in block_text(acme_answer)  # not one passage from the other workspace's docs


@pytest.fixture
def oauth_tables(database):
    def clear() -> None:
        with database.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(OAUTH_TABLES)} RESTART IDENTITY"))

    clear()
    yield
    clear()


def install(harness, code: str) -> None:
    page = harness.client.get("/slack/install")
    assert page.status_code == 200
    state = re.search(r"state=([\w-]+)", page.get_data(as_text=True)).group(1)
    done = harness.client.get(f"/slack/oauth_redirect?code={code}&state={state}")  # the state cookie rides along
    assert done.status_code == 200, done.get_data(as_text=True)


def test_oauth_installs_give_each_workspace_its_own_bot_and_collection(make_harness, slack, tmp_path, oauth_tables):
    pytest.importorskip("greenlet", reason="slack_sdk's SQLAlchemy stores need greenlet (see the report)")
    slack.set_oauth_client("111.222", "client-secret")
    a = slack.add_oauth_code("code-a", token="xoxb-team-a", team_id="T0TEAMA001", bot_user_id="U0BOTA0001",
                             bot_id="B0BOTA0001")
    b = slack.add_oauth_code("code-b", token="xoxb-team-b", team_id="T0TEAMB001", bot_user_id="U0BOTB0001",
                             bot_id="B0BOTB0001")
    harness = make_harness(slack_bot_token=None, slack_client_id="111.222", slack_client_secret="client-secret")
    install(harness, "code-a")
    install(harness, "code-b")
    ingest_acme(harness, tmp_path)
    map_to(harness, b.team_id, "acme")

    ts_a = ask_in(harness, a.team_id, bot_user_id=a.bot_user_id)
    ts_b = ask_in(harness, b.team_id, bot_user_id=b.bot_user_id)
    harness.settle()

    [answer_a] = harness.answers(CHANNEL, ts_a)
    [answer_b] = harness.answers(CHANNEL, ts_b)
    assert "click Rotate" in block_text(answer_a) and "acme" not in block_text(answer_a).lower()
    assert "acme keys rotate" in block_text(answer_b) and BASE_URL not in block_text(answer_b)
    # Each workspace's own bot spoke: the placeholder (from the listener) and the answer (from the job).
    placeholders = {c.params["thread_ts"]: c.token for c in slack.calls_to("chat.postMessage")}
    updates = {c.params["ts"]: c.token for c in slack.calls_to("chat.update")}
    assert (placeholders[ts_a], updates[answer_a["ts"]]) == (a.token, a.token)
    assert (placeholders[ts_b], updates[answer_b["ts"]]) == (b.token, b.token)
    assert "oauth.v2.access" in slack.methods_called()


def test_install_page_exists_only_with_oauth(harness):
    assert harness.client.get("/slack/install").status_code == 404
