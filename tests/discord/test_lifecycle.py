"""Start-up and limits: each test starts its own fake Discord and bot (settings differ per test)."""
from __future__ import annotations

import logging
import re
import time
from typing import Iterator

import pytest

import sqlalchemy as sa

from bots import discord_gateway
from bots.wiring import Container
from core.storage.models import Feedback, Message
from tests.discord.conftest import button_ids, discord_settings, ingest_docs, running_bot, settled, wait_answer, wait_posts, writes_to
from tests.fakes.discord_server import FakeDiscord, Intents
from tests.fakes.openai_server import FakeOpenAI

QUESTION = "how do I ingest a sitemap?"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as llm:
        yield llm


def docs_container(make_container, fake: FakeDiscord, **overrides: object) -> Container:
    container = make_container(**discord_settings(fake), **overrides)
    ingest_docs(container)
    return container


def llm_settings(llm: FakeOpenAI) -> dict[str, object]:
    return {"llm": "openai", "openai_base_url": llm.base_url, "openai_api_key": "sk-test-key", "llm_max_retries": 0}


def test_over_the_rate_limit_the_reply_says_when_to_ask_again(make_container, fake: FakeDiscord) -> None:
    container = docs_container(make_container, fake, rate_user_per_min=1)
    fake.add_guild(name="Docs", channels=["general"])
    general = fake.channel_by_name("general")
    with running_bot(container):
        first = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
        wait_answer(fake, first)
        second = fake.send_message(general, f"{fake.bot_mention} how do I rotate the Discord token?")
        [refusal] = wait_posts(fake, general)

    assert "ask again in" in refusal["content"]
    assert refusal["message_reference"]["message_id"] == str(second)
    assert not fake.calls_to("POST", rf"/messages/{second}/threads")  # no thread for a refused question


def test_missing_message_content_intent_is_reported_and_mentions_still_work(
    make_container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with FakeDiscord(allow_privileged_intents=False) as fake, fake.patch_discord():
        container = docs_container(make_container, fake)
        fake.add_guild(name="Docs", channels=["general"])
        general = fake.channel_by_name("general")
        with running_bot(container):
            thread = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
            wait_answer(fake, thread)
            fake.send_message(thread, "and how do I remove old pages?")  # arrives without its text
            canary = fake.send_message(thread, f"{fake.bot_mention} how do I rotate the Discord token?")
            fake.wait_for(lambda c: writes_to(thread)(c) and bool((c.json or {}).get("components")), count=2)

    assert fake.intents is not None and not fake.intents & Intents.MESSAGE_CONTENT
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Message Content" in w and "Developer Portal" in w for w in warnings)
    assert len(fake.sent_messages(thread)) == 2 and canary  # the unreadable follow-up got no answer


def _die_mid_answer(container: Container) -> None:
    """The state a gateway killed mid-answer leaves: its answer job 'doing', held by a worker whose
    heartbeats stopped (what SIGKILL leaves; bench/crash.py does it for real)."""
    with container.database.engine.begin() as conn:
        dead = conn.execute(sa.text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                    "VALUES (now() - interval '1 hour') RETURNING id")).scalar_one()
        conn.execute(sa.text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                             "WHERE task_name = 'questions.answer' AND status = 'todo'"), {"w": dead})


def test_a_restart_mid_answer_is_answered_once_in_the_placeholder(make_container, fake: FakeDiscord) -> None:
    container = docs_container(make_container, fake)
    fake.add_guild(name="Docs", channels=["general"])
    general = fake.channel_by_name("general")
    with running_bot(container, start_worker=False):  # the process that dies: accepts, never answers
        question = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
        fake.wait_for(f"POST /channels/{question}/messages")  # the placeholder in the new thread
        wait_until_job_queued(container)
    _die_mid_answer(container)

    with running_bot(container):  # the restart: its worker finds the stalled job
        answer = wait_answer(fake, question)

    [only] = fake.sent_messages(question)
    assert only["id"] == answer["id"] and "sitemap" in answer["content"].lower()  # the placeholder, updated
    assert len(fake.calls_to("POST", rf"/channels/{question}/messages$")) == 1  # no second message
    assert len(fake.calls_to("POST", rf"/channels/{general}/messages/\d+/threads$")) == 1


def test_a_question_too_old_to_answer_becomes_an_apology_in_its_placeholder(make_container, fake: FakeDiscord) -> None:
    container = docs_container(make_container, fake)
    fake.add_guild(name="Docs", channels=["general"])
    general = fake.channel_by_name("general")
    with running_bot(container, start_worker=False):
        question = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
        fake.wait_for(f"POST /channels/{question}/messages")
        wait_until_job_queued(container)
    _die_mid_answer(container)
    with container.database.engine.begin() as conn:  # the system stayed down for two hours
        conn.execute(sa.text("UPDATE question_deliveries SET created_at = now() - interval '2 hours'"))

    with running_bot(container):
        [apology] = wait_posts(fake, question)

    assert "Sorry" in apology["content"] and re.search(r"reference `[0-9a-f]{8}`", apology["content"])
    assert len(fake.calls_to("POST", rf"/channels/{question}/messages$")) == 1  # the placeholder, now the apology
    with container.database.sessions() as session:
        error = session.scalars(sa.select(Message.text).where(Message.role == "error")).one()
    assert re.search(r"reference `([0-9a-f]{8})`", apology["content"])[1] in error


def wait_until_job_queued(container: Container, timeout: float = 10) -> None:
    def queued() -> bool:
        with container.database.engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'questions.answer'")).scalar_one())

    _wait_until(queued, timeout)


def test_feedback_buttons_sent_before_a_restart_still_work(make_container, fake: FakeDiscord) -> None:
    container = docs_container(make_container, fake)
    fake.add_guild(name="Docs", channels=["general"])
    general = fake.channel_by_name("general")
    with running_bot(container):
        question = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
        answer = wait_answer(fake, question)

    with running_bot(container):  # a new process: only the custom_id tells which answer was rated
        ref = fake.click_button(button_ids(answer)[0], int(answer["id"]))
        [callback] = fake.wait_for(f"POST /interactions/{ref.id}/")

    assert callback.status == 200
    with container.database.sessions() as session:
        assert session.scalars(sa.select(Feedback.score)).one() == 1


def test_ask_is_synced_to_the_dev_guild_and_answers_there(make_container, fake: FakeDiscord) -> None:
    guild = fake.add_guild(name="Dev", channels=["general"])
    container = docs_container(make_container, fake, discord_dev_guild_id=guild)
    with running_bot(container):
        ref = fake.send_slash_command("ask", {"question": QUESTION}, channel_id=fake.channel_by_name("general"))
        fake.wait_for(f"PATCH /webhooks/{fake.application_id}/{ref.token}/messages/@original")

    assert [c["name"] for c in fake.commands(guild)] == ["ask"] and fake.commands() == []
    answer = fake.message(fake.interaction(ref)["original_id"])
    assert "sitemap" in answer["content"].lower() and button_ids(answer)


def test_a_sharded_client_answers_too(make_container, fake: FakeDiscord) -> None:
    container = docs_container(make_container, fake, discord_shard_count=1)
    fake.add_guild(name="Docs", channels=["general"])
    with running_bot(container) as bot:
        question = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        wait_answer(fake, question)

    assert type(bot.bot.client).__name__ == "ShardedDocRagClient"
    assert fake.identify_payload and fake.identify_payload["shard"] == [0, 1]


def test_a_slow_answer_blocks_neither_the_heartbeat_nor_other_users(make_container, llm: FakeOpenAI) -> None:
    with FakeDiscord(heartbeat_interval_ms=200) as fake, fake.patch_discord():
        container = docs_container(make_container, fake, **llm_settings(llm))
        fake.add_guild(name="Docs", channels=["general"])
        general = fake.channel_by_name("general")
        with running_bot(container):
            generating = llm.hold_next(1)  # the first answer's generation waits until released
            slow = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
            fake.wait_for(f"POST /channels/{slow}/messages")  # the placeholder
            # Only once the first question is generating is the second one sent: otherwise the
            # second may reach the LLM first and be the one held (under load it did).
            generating.wait_holding()
            beats_before = _heartbeats(fake)
            fake.send_dm(QUESTION, author="dora")
            wait_answer(fake, fake.open_dm("dora"))  # answered while the first is still generating
            # ...and the gateway keeps beating meanwhile (one beat per 200 ms; a blocked loop sends none).
            _wait_until(lambda: _heartbeats(fake) - beats_before >= 3, timeout=10)
            slow_was_still_working = not settled(fake, slow)  # only its placeholder so far
            generating.release()
            wait_answer(fake, slow)

    assert slow_was_still_working


def _heartbeats(fake: FakeDiscord) -> int:
    return sum(1 for frame in fake.gateway_frames if frame.get("op") == 1)


def _wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout}s")
        time.sleep(0.02)


def test_the_process_explains_a_missing_token_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)

    assert discord_gateway.main() == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("DISCORD_TOKEN is not set") and "\n" not in err
