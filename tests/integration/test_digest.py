"""The weekly digest: the week's numbers and top gaps, posted once per week and channel, even when
several workers run the job at the same time."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from bots.cli import main
from bots.digest_senders import digest_sender
from core.console.digest import send_due
from core.console.gaps import refresh_gaps
from core.types import SessionKey
from tests.builders import SAMPLE_DOCS, write_docs
from tests.fakes.slack_server import FakeSlack

MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def subscribed(make_container, slack, tmp_path, database_url, monkeypatch):
    container = make_container(slack_bot_token=slack.token, slack_api_url=slack.api_url)
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", SAMPLE_DOCS))], collection="default")
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["console", "digest", "add", "--platform", "slack", "--workspace",
                                       slack.team_id, "--channel", "C0DIGEST"])
    assert result.exit_code == 0, result.output
    return container


def test_the_digest_reports_the_weeks_numbers_and_top_gaps(subscribed, slack):
    engine = subscribed.engine
    engine.ask(SessionKey("slack", slack.team_id, "C1", "a", "u1"), "How do I rotate my API key?")
    engine.ask(SessionKey("slack", slack.team_id, "C1", "b", "u2"), "How do I deploy the helm chart on kubernetes?")
    refresh_gaps(subscribed.database.sessions, subscribed.embedder, 1)
    sender = digest_sender(subscribed.settings, subscribed.database.engine)

    assert send_due(subscribed.database.sessions, sender, now=datetime.now(timezone.utc) + timedelta(days=1)) == 1

    [post] = slack.calls_to("chat.postMessage", ok=True)
    text = post.params["text"]
    assert post.params["channel"] == "C0DIGEST"
    assert "2 questions: 50% answered, 50% not covered" in text
    assert "1. How do I deploy the helm chart on kubernetes? (asked 1×)" in text


def test_many_workers_send_once_per_week_and_channel(subscribed, slack):
    sender = digest_sender(subscribed.settings, subscribed.database.engine)
    sent: list[int] = []
    workers = [threading.Thread(target=lambda: sent.append(send_due(subscribed.database.sessions, sender, now=MONDAY)))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sum(sent) == 1
    assert send_due(subscribed.database.sessions, sender, now=MONDAY + timedelta(hours=5)) == 0  # same week
    assert send_due(subscribed.database.sessions, sender, now=MONDAY + timedelta(days=7)) == 1  # the next week
    assert len(slack.calls_to("chat.postMessage", ok=True)) == 2


def test_a_failed_post_is_retried_by_the_next_run(subscribed, slack):
    sender = digest_sender(subscribed.settings, subscribed.database.engine)
    slack.fail_next("chat.postMessage", status=200, error="channel_not_found")

    assert send_due(subscribed.database.sessions, sender, now=MONDAY) == 0
    assert send_due(subscribed.database.sessions, sender, now=MONDAY + timedelta(hours=1)) == 1


def test_a_discord_channel_gets_the_digest_through_the_rest_api(make_container, tmp_path):
    from core.console.digest import subscribe
    from tests.fakes.discord_server import FakeDiscord

    with FakeDiscord(token="discord-bot-token") as discord:
        guild = discord.add_guild(channels=["docs"])
        channel = discord.add_channel(guild, "digest")
        container = make_container(discord_token=discord.token, discord_api_base_url=discord.api_base)
        container.ingestor.ingest([str(write_docs(tmp_path / "docs", SAMPLE_DOCS))], collection="default")
        subscribe(container.database.sessions, "discord", str(guild), str(channel), "default")

        assert send_due(container.database.sessions, digest_sender(container.settings, container.database.engine),
                        now=MONDAY) == 1

        [post] = discord.calls_to("POST", rf"/channels/{channel}/messages")
        assert "DocRag weekly digest for default" in post.json["content"]
        assert post.json["allowed_mentions"] == {"parse": []}
