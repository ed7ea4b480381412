"""The web app factory, the docrag commands for Slack, and `docrag serve` under gunicorn."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bots.cli_slack import channel_mode, serve, slack_group, worker, workspace_group
from bots.web import create_app, shutdown
from core.storage.models import ChannelSetting, WorkspaceCollection
from tests.conftest import REPO
from tests.slack.harness import SECRET


def test_health_endpoint_and_json_errors(make_container):
    app = create_app(container=make_container(), start_worker=False)
    try:
        client = app.test_client()
        assert client.get("/healthz").get_json() == {"status": "ok"}
        missing = client.post("/slack/events", data="{}")  # Slack is not configured: not mounted
        assert missing.status_code == 404 and missing.is_json  # errors are JSON, whatever their shape
    finally:
        shutdown(app)


def invoke(command, args, settings):
    return CliRunner().invoke(command, args, obj={"settings": settings}, catch_exceptions=False)


def test_channel_mode_command_stores_the_setting(make_settings, database, slack):
    settings = make_settings(slack_bot_token=slack.token, slack_api_url=slack.api_url)
    result = invoke(channel_mode, ["C0CHAN0001", "--mentions-only"], settings)  # workspace from the bot token
    assert result.exit_code == 0, result.output
    assert "only when mentioned" in result.output
    invoke(channel_mode, ["C0CHAN0002", "--workspace", "T0OTHER001", "--all"], settings)
    with database.sessions() as session:
        rows = {(r.workspace, r.channel, r.mentions_only) for r in session.scalars(sa.select(ChannelSetting))}
    assert rows == {(slack.team_id, "C0CHAN0001", True), ("T0OTHER001", "C0CHAN0002", False)}
    assert invoke(channel_mode, ["C0CHAN0001", "--workspace", "T1"], settings).exit_code == 2  # must choose


def test_workspace_map_command(make_container, make_settings, database, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nSome text about alpha widgets.\n")
    make_container().ingestor.ingest([str(tmp_path)], collection="acme")
    settings = make_settings()
    result = invoke(workspace_group, ["map", "--platform", "slack", "T0ACME0001", "acme"], settings)
    assert result.exit_code == 0, result.output
    with database.sessions() as session:
        [row] = session.scalars(sa.select(WorkspaceCollection)).all()
    assert (row.platform, row.workspace) == ("slack", "T0ACME0001")
    missing = CliRunner().invoke(workspace_group, ["map", "--platform", "slack", "T1", "nope"],
                                 obj={"settings": settings})
    assert missing.exit_code == 1 and "No collection named 'nope'" in missing.output
    assert "Traceback" not in missing.output


def test_the_commands_are_click_objects_the_main_group_can_add():
    assert {c.name for c in (serve, worker, slack_group, workspace_group)} == {"serve", "worker", "slack", "workspace"}
    assert set(slack_group.commands) == {"socket", "channel-mode"}


def test_socket_mode_needs_an_app_token(make_settings):
    result = CliRunner().invoke(slack_group, ["socket"], obj={"settings": make_settings(slack_bot_token="xoxb-1")})
    assert result.exit_code == 1 and "SLACK_APP_TOKEN" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_runs_gunicorn_with_the_app(database_url, tmp_path, slack):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCRAG_", "SLACK_"))}
    env.update(DATABASE_URL=database_url, DOCRAG_DATA_DIR=str(tmp_path), SLACK_BOT_TOKEN=slack.token,
               SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.api_url, DOCRAG_EMBEDDED_WORKERS="false")
    code = "from bots.cli_slack import serve; serve(['--port', '%d', '--workers', '1'])" % port
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert b'"ok"' in body
        request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:  # mounted, and verifying signatures
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output, output


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode())
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.read()
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def test_manifest_asks_for_the_scopes_and_events_the_code_uses():
    yaml = pytest.importorskip("yaml")
    from adapters.slack.app import BOT_SCOPES

    manifest = yaml.safe_load((REPO / "slack-manifest.yml").read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    # reaction_added: a 👍 or ✅ makes a thread a learned answer (adapters/slack/learning.py)
    assert {"app_mention", "message.channels", "message.groups", "message.im", "reaction_added"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"reactions:read", "channels:read", "groups:read"} <= set(BOT_SCOPES)
    [command] = manifest["features"]["slash_commands"]
    urls = {command["url"], manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"]}
    assert command["command"] == "/ask" and len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


def test_socket_mode_serves_the_same_listeners_without_signatures(make_container, slack, monkeypatch, tmp_path):
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_bolt.request import BoltRequest

    from bots.cli_slack import run_socket_mode
    from tests.builders import write_docs
    from tests.slack.harness import DOCS

    seen = {}

    def start(handler):  # instead of opening the WebSocket: deliver one event the way the socket does
        seen["base_url"] = handler.client.web_client.base_url
        ts = slack.add_message("D0DM000001", "how do I rotate my API key?", user="U0USER0001")
        event = {"type": "message", "channel_type": "im", "channel": "D0DM000001", "user": "U0USER0001",
                 "text": "how do I rotate my API key?", "ts": ts}
        body = {"type": "event_callback", "team_id": slack.team_id, "event_id": "EvSOCKET1", "event": event}
        seen["status"] = handler.app.dispatch(BoltRequest(body=body, mode="socket_mode")).status
        slack.wait_for("chat.update", timeout=20)

    monkeypatch.setattr(SocketModeHandler, "start", start)
    container = make_container(slack_bot_token=slack.token, slack_app_token="xapp-test", slack_api_url=slack.api_url,
                               database_url=None, embedded_workers=True)
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", DOCS))], collection="default")
    monkeypatch.setattr("bots.wiring.build_container", lambda settings: container)  # imported where used
    run_socket_mode(container.settings)
    assert seen == {"base_url": slack.api_url, "status": 200}


def test_worker_registers_every_job_and_prunes_old_claims(make_container, slack, database):
    from datetime import datetime, timedelta, timezone

    from bots.housekeeping import PRUNE_RATE_LIMITS_TASK, PRUNE_TASK, REMOVE_JOBS_TASK, REQUEUE_INGEST_TASK
    from bots.wiring import build_slack_services, build_worker_app, open_job_queue
    from core.questions.claims import claim
    from core.storage.models import ProcessedEvent, RateLimit
    from core.tenancy.ratelimit import Limit, RateLimiter

    container = make_container(slack_bot_token=slack.token, slack_api_url=slack.api_url)
    jobs = open_job_queue(container)
    try:
        lifecycle = container.lifecycle(jobs)
        app = build_worker_app(container, lifecycle, build_slack_services(container, lifecycle))
        assert {"questions.answer", "slack.intake", "docrag.ingest", PRUNE_TASK,
                PRUNE_RATE_LIMITS_TASK, REMOVE_JOBS_TASK, REQUEUE_INGEST_TASK} <= set(app.tasks)
        assert claim(database.sessions, "slack", "old") and claim(database.sessions, "slack", "new")
        with database.sessions.begin() as session:
            session.execute(sa.update(ProcessedEvent).where(ProcessedEvent.key == "old")
                            .values(created_at=datetime.now(timezone.utc) - timedelta(days=8)))
        app.tasks[PRUNE_TASK](timestamp=0)
        with database.sessions() as session:
            assert session.scalars(sa.select(ProcessedEvent.key)).all() == ["new"]

        RateLimiter(database.sessions).admit(
            [Limit("you", "user:old", 5, 60)], now=datetime.now(timezone.utc) - timedelta(hours=2)
        )
        app.tasks[PRUNE_RATE_LIMITS_TASK](timestamp=0)
        with database.sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(RateLimit)) == 0
    finally:
        jobs.close()
