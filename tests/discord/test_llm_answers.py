"""Answers written by a (fake) language model: follow-ups with history, long answers, outages."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from bots.wiring import Container
from core.storage.models import Message
from tests.discord.conftest import discord_settings, ingest_docs, running_bot, stored_turns, wait_answer, wait_posts, writes_to
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.usefixtures("clean_conversations")

REWRITTEN = "how do I remove documents whose source is gone when ingesting a sitemap"


def echo_responder(body: dict[str, Any]) -> str:
    """Rewrites follow-ups into REWRITTEN; answers by repeating the question, citing source 1."""
    prompt = body["messages"][-1]["content"]
    if "<history>" in prompt:
        return REWRITTEN
    question = re.search(r"<question>\n(.*)\n</question>", prompt, re.S)
    return f"You asked: {question[1] if question else '?'} [1]"


@dataclass
class World:
    fake: FakeDiscord
    llm: FakeOpenAI
    container: Container
    guild: int


@pytest.fixture(scope="module")
def world(fake_discord: FakeDiscord, module_container) -> Iterator[World]:
    with FakeOpenAI() as llm:
        container = module_container(
            **discord_settings(fake_discord),
            llm="openai",
            openai_base_url=llm.base_url,
            openai_api_key="sk-test-key",
            llm_max_retries=0,
        )
        ingest_docs(container)
        guild = fake_discord.add_guild(name="Docs", channels=["general"])
        with running_bot(container):
            yield World(fake_discord, llm, container, guild)


@pytest.fixture
def channel(world: World, request: pytest.FixtureRequest) -> int:
    world.llm.chat_responder = echo_responder
    return world.fake.add_channel(world.guild, request.node.name[:90])


def test_follow_up_in_the_thread_needs_no_mention_and_uses_the_history(world: World, channel: int) -> None:
    fake = world.fake
    thread = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")
    first = wait_answer(fake, thread)
    fake.send_message(thread, "and how do I drop pages that were removed?")  # no mention
    fake.wait_for(lambda c: writes_to(thread)(c) and bool((c.json or {}).get("components")), count=2)
    second = fake.sent_messages(thread)[-1]

    assert first["content"].startswith("You asked: how do I ingest a sitemap?")
    assert second["content"].startswith("You asked: and how do I drop pages that were removed?")
    assert [role for role, _ in stored_turns(world.container)] == ["user", "assistant", "user", "assistant"]
    rewrite, answer = [r for r in world.llm.requests[-2:]]
    assert "how do I ingest a sitemap?" in rewrite["messages"][-1]["content"]  # the history was used
    assert [m["role"] for m in answer["messages"][1:3]] == ["user", "assistant"]
    with world.container.database.sessions() as session:
        queries = session.scalars(sa.select(Message.search_query).where(Message.role == "user").order_by(Message.id))
        assert list(queries)[-1] == REWRITTEN


def test_a_long_answer_is_split_under_2000_characters_with_code_blocks_intact(world: World, channel: int) -> None:
    fake = world.fake
    code = "\n".join(f"docrag ingest docs/part-{i:03d} --collection handbook --base-url https://x.example/" for i in range(40))
    prose = " ".join(["Ingestion skips unchanged documents and re-embeds changed ones [1]."] * 14)
    long_answer = f"{prose}\n\n```bash\n{code}\n```\n\n{prose}\n\n{prose}"
    world.llm.chat_responder = lambda body: long_answer
    question = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")

    wait_answer(fake, question)
    messages = fake.sent_messages(question)

    assert len(long_answer) > 4000 and len(messages) >= 3
    assert all(len(m["content"]) <= 2000 for m in messages)
    assert all(m["content"].count("```") % 2 == 0 for m in messages)  # every piece opens and closes its fences
    joined = "\n".join(m["content"] for m in messages)
    assert all(line in joined for line in code.splitlines())  # no code line was cut
    assert {word for m in messages for word in m["content"].split()} <= set(long_answer.split())  # no word cut
    assert [bool(m["components"]) for m in messages] == [False] * (len(messages) - 1) + [True]


def test_code_indentation_survives_end_to_end(world: World, channel: int) -> None:
    fake = world.fake
    code = "```python\ndef ingest(paths):\n    for path in paths:\n        load(path) . strip()\n```"
    world.llm.chat_responder = lambda body: f"Like this [1]:\n\n{code}"
    question = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")

    answer = wait_answer(fake, question)

    assert code in answer["content"]


def test_llm_failure_gets_an_apology_with_the_reference(world: World, channel: int) -> None:
    fake = world.fake
    world.llm.fail_next(1, status=500)
    question = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")

    [apology] = wait_posts(fake, question)

    reference = re.search(r"reference `(\w+)`", apology["content"])
    assert reference and "Sorry" in apology["content"]
    with world.container.database.sessions() as session:
        error = session.scalars(sa.select(Message.text).where(Message.role == "error")).one()
    assert reference[1] in error
    assert not apology["components"]  # nothing to rate


def test_slash_ask_in_a_docrag_thread_continues_that_conversation(world: World, channel: int) -> None:
    fake = world.fake
    thread = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")
    wait_answer(fake, thread)

    ref = fake.send_slash_command("ask", {"question": "and how do I drop removed pages?"}, channel_id=thread)
    original = f"/webhooks/{fake.application_id}/{ref.token}/messages/@original"
    # The answer streams into the deferred response; the finished one carries the buttons.
    fake.wait_for(lambda c: c.method == "PATCH" and c.path == original and bool((c.json or {}).get("components")))

    answer = fake.message(fake.interaction(ref)["original_id"])
    assert answer["content"].startswith("You asked: and how do I drop removed pages?")
    assert [role for role, _ in stored_turns(world.container)] == ["user", "assistant", "user", "assistant"]
