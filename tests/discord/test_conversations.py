"""What a Discord user sees, with one bot (extractive answers, no LLM) shared by the module."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from bots.discord_gateway import BotThread
from bots.wiring import Container
from core.tenancy.collections import get_collection, map_workspace
from core.storage.models import Conversation, Feedback, Message
from tests.discord.conftest import (
    DOCS_URL,
    button_ids,
    discord_settings,
    ingest_docs,
    running_bot,
    stored_turns,
    wait_answer,
    writes_to,
    wait_posts,
    write_doc,
)
from tests.fakes.discord_server import FakeDiscord

pytestmark = pytest.mark.usefixtures("clean_conversations")


@dataclass
class World:
    fake: FakeDiscord
    container: Container
    bot: BotThread
    guild: int
    zoo_guild: int
    lab_guild: int


@pytest.fixture(scope="module")
def world(fake_discord: FakeDiscord, module_container, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    container = module_container(**discord_settings(fake_discord))
    ingest_docs(container)
    zoo_guild, lab_guild = _isolated_guilds(fake_discord, container, tmp_path_factory.mktemp("guild-docs"))
    guild = fake_discord.add_guild(name="Docs", channels=["general"])
    with running_bot(container) as bot:
        yield World(fake_discord, container, bot, guild, zoo_guild, lab_guild)


def _isolated_guilds(fake: FakeDiscord, container: Container, folder: Path) -> tuple[int, int]:
    """Two guilds, each mapped to its own collection of one document."""
    zoo = write_doc(folder / "zoo", "zebras.md", "# Zebra care\n\nZebras are fed hay twice a day in the north paddock.\n")
    lab = write_doc(folder / "lab", "tunnels.md", "# Quantum tunnels\n\nThe flux capacitor needs 1.21 gigawatts to open a tunnel.\n")
    container.ingestor.ingest([str(zoo)], collection="zoo", base_url="https://zoo.example.com/")
    container.ingestor.ingest([str(lab)], collection="lab", base_url="https://lab.example.com/")
    zoo_guild = fake.add_guild(name="Zoo", channels=["zoo-help"])
    lab_guild = fake.add_guild(name="Lab", channels=["lab-help"])
    with container.database.sessions.begin() as session:
        map_workspace(session, "discord", str(zoo_guild), get_collection(session, "zoo"))
        map_workspace(session, "discord", str(lab_guild), get_collection(session, "lab"))
    return zoo_guild, lab_guild


@pytest.fixture
def channel(world: World, request: pytest.FixtureRequest) -> int:
    """A fresh text channel per test, so what the bot posted earlier does not count."""
    return world.fake.add_channel(world.guild, request.node.name[:90])


def _conversation_threads(container: Container) -> list[tuple[str, str, str]]:
    with container.database.sessions() as session:
        rows = session.execute(sa.select(Conversation.workspace, Conversation.channel, Conversation.thread)).all()
        return [tuple(row) for row in rows]


def test_mention_opens_a_thread_and_answers_in_it(world: World, channel: int) -> None:
    fake = world.fake
    question_id = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")

    [created] = fake.wait_for(f"POST /channels/{channel}/messages/{question_id}/threads")
    answer = wait_answer(fake, question_id)  # a thread started on a message has the message's id

    assert created.json["name"] == "how do I ingest a sitemap?"
    [placeholder] = fake.calls_to("POST", rf"/channels/{question_id}/messages$")  # shown at once, then replaced
    assert 0 < len(answer["content"]) <= 2000
    assert "sitemap" in answer["content"].lower()
    [embed] = answer["embeds"]
    assert embed["title"] == "Sources"
    assert f"]({DOCS_URL}" in embed["description"]
    [(role, _), (reply_role, _)] = stored_turns(world.container)
    assert (role, reply_role) == ("user", "assistant")
    answer_id = _answer_ids(world.container)[-1]
    assert button_ids(answer) == [f"docrag:fb:+1:{answer_id}", f"docrag:fb:-1:{answer_id}"]
    assert _conversation_threads(world.container) == [(str(world.guild), str(channel), str(question_id))]
    assert not fake.sent_messages(channel)  # nothing posted in the channel itself


def test_mention_inside_an_existing_thread_is_answered_there(world: World, channel: int) -> None:
    fake = world.fake
    thread = fake.add_thread(channel, "setup talk", owner="bob")
    fake.send_message(thread, f"{fake.bot_mention} how do I rotate the Discord token?", author="bob")

    answer = wait_answer(fake, thread)

    assert answer["embeds"] and answer["content"]
    assert not fake.calls_to("POST", rf"/channels/{thread}/.*threads$")  # no thread inside the thread
    assert _conversation_threads(world.container) == [(str(world.guild), str(channel), str(thread))]


def test_slash_ask_defers_at_once_then_follows_up(world: World, channel: int) -> None:
    fake = world.fake
    assert [c["name"] for c in fake.commands()] == ["ask"]  # synced globally (no dev guild set)

    ref = fake.send_slash_command("ask", {"question": "how do I ingest a sitemap?"}, channel_id=channel)
    [callback] = fake.wait_for(f"POST /interactions/{ref.id}/")
    fake.wait_for(f"PATCH /webhooks/{fake.application_id}/{ref.token}/messages/@original")

    assert callback.json["type"] == 5  # deferred: "DocRag is thinking…"
    state = fake.interaction(ref)
    answer = fake.message(state["original_id"])  # the answer replaced the thinking message
    assert "sitemap" in answer["content"].lower() and len(answer["content"]) <= 2000
    assert answer["embeds"] and button_ids(answer)
    assert _conversation_threads(world.container) == [(str(world.guild), str(channel), f"ask-{ref.id}")]


def test_direct_messages_are_answered_as_one_conversation(world: World) -> None:
    fake = world.fake
    user = fake.add_user("dora")
    dm = fake.open_dm(user)
    fake.send_dm("how do I ingest a sitemap?", author=user)
    wait_answer(fake, dm)
    fake.send_dm("how do I rotate the Discord token?", author=user)
    fake.wait_for(lambda c: writes_to(dm)(c) and bool((c.json or {}).get("components")), count=2)

    assert len(fake.sent_messages(dm)) == 2
    assert _conversation_threads(world.container) == [("dm", str(dm), str(dm))]
    assert [role for role, _ in stored_turns(world.container)] == ["user", "assistant"] * 2


def test_other_bots_itself_and_everyone_are_ignored(world: World, channel: int) -> None:
    fake = world.fake
    robot = fake.add_user("robot", bot=True)
    stranger_thread = fake.add_thread(channel, "not ours")
    fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?", author=robot)
    fake.send_message(channel, "@everyone how do I ingest a sitemap?", mention_everyone=True)
    fake.send_message(channel, "how do I ingest a sitemap?")  # no mention in a channel
    fake.send_message(stranger_thread, "how do I ingest a sitemap?")  # a thread DocRag is not part of
    thread = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")
    wait_answer(fake, thread)  # its own answer is echoed into this thread: not a follow-up
    fake.send_message(thread, "@here how do I rotate the Discord token?", mention_everyone=True)
    fake.send_message(thread, "how do I rotate the Discord token?", author=robot)
    fake.send_message(thread, "and how do I rotate the Discord token?")  # a real follow-up, answered last
    fake.wait_for(lambda c: writes_to(thread)(c) and bool((c.json or {}).get("components")), count=2)

    assert [t for _, _, t in _conversation_threads(world.container)] == [str(thread)]
    assert [role for role, _ in stored_turns(world.container)] == ["user", "assistant"] * 2
    assert len(fake.sent_messages(thread)) == 2
    assert not fake.sent_messages(channel) and not fake.sent_messages(stranger_thread)
    assert len(fake.calls_to("POST", rf"/channels/{channel}/messages/\d+/threads$")) == 1


def test_a_bare_mention_gets_a_hint_not_silence(world: World, channel: int) -> None:
    fake = world.fake
    question = fake.send_message(channel, fake.bot_mention)
    [reply] = wait_posts(fake, channel)

    assert "question" in reply["content"].lower()
    assert reply["message_reference"]["message_id"] == str(question)
    assert not fake.calls_to("POST", rf"/messages/{question}/threads")


def test_feedback_button_click_is_stored(world: World, channel: int) -> None:
    fake = world.fake
    question = fake.send_message(channel, f"{fake.bot_mention} how do I ingest a sitemap?")
    answer = wait_answer(fake, question)
    [thumbs_up, thumbs_down] = button_ids(answer)

    erin = fake.add_user("erin")
    ref = fake.click_button(thumbs_down, int(answer["id"]), user=erin)
    [callback] = fake.wait_for(f"POST /interactions/{ref.id}/")

    assert callback.status == 200 and callback.json["data"]["flags"] == 64  # ephemeral thanks
    with world.container.database.sessions() as session:
        [feedback] = session.scalars(sa.select(Feedback)).all()
    assert (feedback.message_id, feedback.score, feedback.platform) == (int(thumbs_up.rsplit(":", 1)[1]), -1, "discord")
    assert feedback.user_id == str(erin)


def test_guilds_answer_only_from_their_own_collection(world: World) -> None:
    fake = world.fake
    zoo_channel = fake.channel_by_name("zoo-help", world.zoo_guild)
    lab_channel = fake.channel_by_name("lab-help", world.lab_guild)
    in_zoo = fake.send_message(zoo_channel, f"{fake.bot_mention} how often are zebras fed hay?")
    in_lab = fake.send_message(lab_channel, f"{fake.bot_mention} how often are zebras fed hay?")

    zoo_answer, lab_answer = wait_answer(fake, in_zoo), wait_answer(fake, in_lab)

    assert "twice a day" in zoo_answer["content"]
    assert "zoo.example.com" in zoo_answer["embeds"][0]["description"]
    assert "twice a day" not in lab_answer["content"] and "couldn't find" in lab_answer["content"]
    assert "zoo.example.com" not in str(lab_answer["embeds"])


def _answer_ids(container: Container) -> list[int]:
    with container.database.sessions() as session:
        return list(session.scalars(sa.select(Message.id).where(Message.role == "assistant").order_by(Message.id)))

