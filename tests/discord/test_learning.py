"""Discord threads that end well become learned answers, cited apart from the docs; private ones never.

The real discord.py bot against the fake Discord: a click on 👍, a ✅ reaction or "resolved"
written in the thread queues a learning job, which the bot's embedded worker runs.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from bots.wiring import Container
from core.ingest.learned import list_learned
from core.tenancy.channels import set_learn_from_threads
from tests.discord.conftest import button_ids, discord_settings, ingest_docs, running_bot, wait_answer
from tests.fakes.discord_server import FakeDiscord

QUESTION = "how do I ingest a sitemap?"


@pytest.fixture
def container(make_container, fake: FakeDiscord) -> Container:
    container = make_container(**discord_settings(fake))
    ingest_docs(container)
    return container


def learning_jobs(container: Container, *, pending: bool) -> int:
    statuses = "('todo', 'doing')" if pending else "('todo', 'doing', 'succeeded', 'failed')"
    with container.database.engine.connect() as conn:
        return conn.execute(sa.text(
            f"SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'learned.learn_thread' AND status IN {statuses}"
        )).scalar_one()


def settle_learning(container: Container, timeout: float = 20) -> None:
    """Wait until a learning job was queued and none is left to run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if learning_jobs(container, pending=False) and not learning_jobs(container, pending=True):
            return
        time.sleep(0.05)
    raise AssertionError("no learning job ran")


def ask_in_channel(fake: FakeDiscord, channel: int, text: str = QUESTION) -> tuple[int, dict]:
    """A mention answered in the thread opened on it; (the question's id == the thread's, the answer)."""
    question = fake.send_message(channel, f"{fake.bot_mention} {text}")
    return question, wait_answer(fake, question)


def test_a_thumbs_up_click_is_learned_and_then_cited_apart_from_the_docs(container, fake: FakeDiscord) -> None:
    guild = fake.add_guild(name="Docs", channels=["support"])
    support = fake.channel_by_name("support")
    with running_bot(container):
        question, answer = ask_in_channel(fake, support)
        fake.click_button(button_ids(answer)[0], int(answer["id"]))
        settle_learning(container)
        [row] = list_learned(container.database.sessions)
        day = datetime.now(timezone.utc).date().isoformat()
        assert row.title.startswith(f"Answered in #support on {day}: {QUESTION}")
        assert row.link == f"https://discord.com/channels/{guild}/{question}"

        _, later = ask_in_channel(fake, support)
        [embed] = later["embeds"]
    assert f"💬 [answered in #support on {day}]({row.link})" in embed["description"]
    assert "not the official docs" in embed["description"]


def test_a_check_mark_reaction_by_a_person_on_the_answer_is_learned(container, fake: FakeDiscord) -> None:
    fake.add_guild(name="Docs", channels=["support"])
    support = fake.channel_by_name("support")
    with running_bot(container):
        _, answer = ask_in_channel(fake, support)
        fake.add_reaction(int(answer["id"]), "✅", user="ada")
        settle_learning(container)
    [row] = list_learned(container.database.sessions)
    assert row.confirmed_by == "Ada"  # their display name


def test_resolved_written_in_the_thread_is_learned_and_not_answered(container, fake: FakeDiscord) -> None:
    fake.add_guild(name="Docs", channels=["support"])
    support = fake.channel_by_name("support")
    with running_bot(container):
        question, _ = ask_in_channel(fake, support)
        fake.send_message(question, "resolved", author="ada")  # the thread's id is the question's
        settle_learning(container)
        answers = [m for m in fake.sent_messages(question) if m.get("components")]
    assert len(list_learned(container.database.sessions)) == 1
    assert len(answers) == 1  # "resolved" was not taken for a follow-up question


def test_a_private_thread_never_feeds_the_shared_collection(container, fake: FakeDiscord) -> None:
    fake.add_guild(name="Docs", channels=["support"])
    support = fake.channel_by_name("support")
    secret = fake.add_thread(support, "secret", private=True)
    with running_bot(container):
        fake.send_message(secret, f"{fake.bot_mention} {QUESTION}")
        answer = wait_answer(fake, secret)
        fake.click_button(button_ids(answer)[0], int(answer["id"]))
        fake.add_reaction(int(answer["id"]), "✅", user="ada")
        settle_learning(container)
    assert list_learned(container.database.sessions) == []


def test_a_channel_that_turned_learning_off_learns_nothing(container, fake: FakeDiscord) -> None:
    guild = fake.add_guild(name="Docs", channels=["support"])
    support = fake.channel_by_name("support")
    with container.database.sessions.begin() as session:
        set_learn_from_threads(session, "discord", str(guild), str(support), False)
    with running_bot(container):
        _, answer = ask_in_channel(fake, support)
        fake.add_reaction(int(answer["id"]), "👍", user="ada")
        settle_learning(container)
    assert list_learned(container.database.sessions) == []
