"""Answers streamed into Discord through the question lifecycle (issue 12): the real discord.py
gateway client against the fake Discord, a fake OpenAI that streams, the durable answer job whose
delivery port edits the placeholder over REST within the bucket the rate-limit headers describe."""
from __future__ import annotations

import time
from typing import Iterator

import pytest

from adapters.discord.delivery import PLACEHOLDER, DiscordDelivery
from adapters.discord.render import MESSAGE_LIMIT, split_message
from core.questions.values import Where
import sqlalchemy as sa

from core.storage.models import Message, QuestionDelivery
from tests.discord.conftest import discord_settings, ingest_docs, running_bot, wait_answer
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

QUESTION = "how do I ingest a sitemap?"
ANSWER = ("Point the ingest command at the sitemap's URL [1]. Every page it lists is fetched and "
          "chunked [1].\n\nRun it again to pick up new pages; unchanged ones are skipped [1].")


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as llm:
        llm.chat_responder = lambda _body: ANSWER
        yield llm


@pytest.fixture
def container(make_container, fake, llm):
    container = make_container(**discord_settings(fake), llm="openai", openai_base_url=llm.base_url,
                               openai_api_key="sk-test", llm_max_retries=0)
    ingest_docs(container)
    fake.add_guild(name="Docs", channels=["general"])
    return container


def until(condition, what: str, timeout: float = 20.0):
    """Wait for something the system does by itself (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
    return found


def live_edits(fake: FakeDiscord, thread: int) -> list:
    return [c for c in fake.calls if c.method == "PATCH" and c.path.startswith(f"/channels/{thread}/messages/")
            and not (c.json or {}).get("components")]


def stored_text(container, message_id: int) -> str:
    with container.database.sessions() as session:
        return session.get(Message, message_id).text


def test_the_placeholder_shows_the_first_words_while_the_model_writes_then_the_whole_answer(container, fake, llm):
    release = llm.pause_next_stream(after=4)
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        [edit] = until(lambda: live_edits(fake, thread), "a live edit of the placeholder")
        shown = edit.json["content"]
        assert shown and shown != PLACEHOLDER and ANSWER.startswith(shown), "first words, model still writing"
        assert not fake.calls_to("POST", rf"/channels/{thread}/messages$")[1:], "the placeholder is edited, no new post"
        release.set()
        answer = wait_answer(fake, thread)

    [only] = fake.sent_messages(thread)
    assert only["id"] == answer["id"], "one message: the placeholder became the answer"
    message_id = int(answer["components"][0]["components"][0]["custom_id"].rsplit(":", 1)[-1])
    assert answer["content"] == stored_text(container, message_id) == ANSWER, "final text as written unstreamed"
    assert answer["embeds"][0]["title"] == "Sources"


def test_edits_stay_within_the_channels_bucket_never_a_429(container, fake, llm):
    llm.chat_responder = lambda _body: " ".join(f"word{i}" for i in range(120)) + " [1]."
    llm.token_delay_s = 0.01
    fake.limit_channel_messages(limit=2, per_s=1.0)  # tighter than Discord's 5 per 5 s
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        answer = wait_answer(fake, thread, timeout=30)

    assert [c for c in fake.calls if c.status == 429] == [], "the bucket headers were respected"
    assert answer["content"].startswith("word0 word1") and answer["content"].endswith("word119 [1].")
    assert len(live_edits(fake, thread)) <= 1 + 120 * 0.01 / 1.2 + 2, "edits are coalesced, not one per token"


def test_an_answer_past_2000_characters_continues_in_a_second_message_at_a_paragraph(container, fake, llm):
    paragraphs = [f"Paragraph {i}: " + "sitemap pages are fetched and chunked. " * 9 + "[1]" for i in range(8)]
    llm.chat_responder = lambda _body: "\n\n".join(paragraphs)
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        wait_answer(fake, thread)

    first, second = fake.sent_messages(thread)
    assert len(first["content"]) <= MESSAGE_LIMIT and len(second["content"]) <= MESSAGE_LIMIT
    assert first["content"].endswith("[1]") and second["content"].startswith("Paragraph ")
    assert second["components"] and not first.get("components"), "the buttons go on the last part"
    assert f"{first['content']}\n\n{second['content']}" == "\n\n".join(paragraphs)


LONG = "\n\n".join(f"Paragraph {i}: " + "sitemap pages are fetched and chunked. " * 9 + "[1]" for i in range(8))


def bot_posts(fake: FakeDiscord, thread: int) -> list:
    return fake.calls_to("POST", rf"/channels/{thread}/messages$")


def test_a_long_answer_goes_on_in_a_second_message_while_the_model_is_still_writing(container, fake, llm):
    llm.chat_responder = lambda _body: LONG
    pieces = LONG.count(" ") + 1
    llm.token_delay_s = 0.02  # the last ~130 pieces take longer than one edit interval
    release = llm.pause_next_stream(after=pieces - 10)  # ten words short of the end, until released
    fake.limit_channel_messages(limit=5, per_s=5.0)  # Discord's message bucket: edits and posts share it
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        until(lambda: len(bot_posts(fake, thread)) == 2, "the second message, posted live", timeout=60)
        first, second = until(lambda: (lambda m: m if len(m) == 2 and m[1]["content"] else None)(
            fake.sent_messages(thread)), "both messages")
        expected_first, expected_second = split_message(LONG)
        assert first["content"] == expected_first, "the first message was cut at the final split's paragraph"
        assert second["content"].startswith("Paragraph ") and expected_second.startswith(second["content"])
        assert second["content"] != expected_second and not second.get("components"), "the model is still writing"
        release.set()
        answer = wait_answer(fake, thread, timeout=30)

    assert [m["content"] for m in fake.sent_messages(thread)] == split_message(LONG), "the non-streamed split"
    assert answer["id"] == second["id"] and answer["embeds"][0]["title"] == "Sources", "sources and buttons last"
    assert len(bot_posts(fake, thread)) == 2, "the placeholder and one continuation, nothing posted twice"
    assert [c for c in fake.calls if c.status == 429] == []


def test_a_long_answer_to_ask_goes_on_in_a_live_follow_up(container, fake, llm):
    """/ask: the deferred response is the first part, the interaction's follow-up the second."""
    llm.chat_responder = lambda _body: LONG
    llm.token_delay_s = 0.02
    release = llm.pause_next_stream(after=LONG.count(" ") + 1 - 10)
    with running_bot(container):
        ref = fake.send_slash_command("ask", {"question": QUESTION}, channel_id=fake.channel_by_name("general"))
        until(lambda: fake.interaction(ref)["followup_ids"], "the follow-up, posted live", timeout=60)
        live = fake.message(fake.interaction(ref)["followup_ids"][0])
        assert live["content"].startswith("Paragraph ") and not live.get("components"), "the model is still writing"
        release.set()
        until(lambda: fake.message(fake.interaction(ref)["followup_ids"][0]).get("components"), "the answer", timeout=30)

    interaction = fake.interaction(ref)
    [followup] = interaction["followup_ids"]
    parts = [fake.message(interaction["original_id"])["content"], fake.message(followup)["content"]]
    assert parts == split_message(LONG), "the non-streamed split"
    assert len(fake.calls_to("POST", rf"/webhooks/{fake.application_id}/{ref.token}$")) == 1, "one follow-up"


def test_a_thumbs_up_on_the_first_message_of_a_long_streamed_answer_still_finds_the_answer(container, fake, llm):
    """The delivery's reference lists the continuation (``<first>+<id>``); a 👍 on the first message
    names only the first."""
    from core.ingest.learned import list_learned
    from tests.discord.test_learning import settle_learning

    llm.chat_responder = lambda _body: LONG
    llm.token_delay_s = 0.01  # slow enough for the continuation to be posted live
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        wait_answer(fake, thread, timeout=30)
        first, second = fake.sent_messages(thread)
        with container.database.sessions() as session:
            [reference] = session.scalars(sa.select(QuestionDelivery.placeholder)).all()
        assert reference == f"{thread}/{first['id']}+{second['id']}", "the live continuation was remembered"
        fake.add_reaction(int(first["id"]), "👍", user="ada")
        settle_learning(container)

    [row] = list_learned(container.database.sessions)
    assert QUESTION in row.title


def test_a_code_block_cut_by_the_limit_is_closed_and_reopened_in_the_live_second_message(container, fake, llm):
    code = "```python\n" + "\n".join(f"ingest_page(site, {i:04d})  # fetched, chunked, embedded" for i in range(60)) + "\n```"
    text = "Run this for every page [1]:\n\n" + code + "\n\nThat is all [1]."
    llm.chat_responder = lambda _body: text
    release = llm.pause_next_stream(after=text.count(" ") - 3)
    llm.token_delay_s = 0.01
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        until(lambda: len(bot_posts(fake, thread)) == 2, "the second message, posted live", timeout=60)
        live_second = until(lambda: fake.sent_messages(thread)[1]["content"], "the second message's text")
        live_first = fake.sent_messages(thread)[0]["content"]
        assert live_first.rstrip().endswith("```") and live_second.startswith("```python\n"), "fence closed, reopened"
        release.set()
        wait_answer(fake, thread, timeout=30)

    assert [m["content"] for m in fake.sent_messages(thread)] == split_message(text)


def test_a_continuation_posted_by_a_stream_that_died_unremembered_is_reused_not_doubled(fake):
    """A stream killed between posting its second message and storing its id: the recovery's
    post carries the same nonce, and Discord gives back the message it already has."""
    fake.add_guild(name="Docs", channels=["general"])
    channel = fake.channel_by_name("general")
    where = Where(platform="discord", fields={"channel": str(channel)})
    port = DiscordDelivery("test-token", fake.api_base, once=lambda _key: True)
    try:
        placeholder = port.post_placeholder(where)
        dying = port.open_stream(where, placeholder, remember=lambda _ref: None)  # its remembering is lost
        dying.add(LONG[:2600])
        dying.buffer.flush()
        assert len(fake.sent_messages(channel)) == 2, "the dying stream posted its second message"
        recovered = port.open_stream(where, placeholder, remember=lambda _ref: None)
        recovered.add(LONG)
        recovered.buffer.flush()
    finally:
        port.close()

    assert [m["content"] for m in fake.sent_messages(channel)] == split_message(LONG)


def test_a_streamed_continuation_deleted_by_someone_is_posted_again_with_the_final_answer(fake):
    import httpx

    from core.types import Answer

    fake.add_guild(name="Docs", channels=["general"])
    channel = fake.channel_by_name("general")
    where = Where(platform="discord", fields={"channel": str(channel)})
    references: list[str] = []
    claims: set[str] = set()
    port = DiscordDelivery("test-token", fake.api_base, once=lambda key: not (key in claims or claims.add(key)))
    try:
        placeholder = port.post_placeholder(where)
        live = port.open_stream(where, placeholder, remember=references.append)
        live.add(LONG)
        live.buffer.flush()
        [reference] = references
        gone = reference.rsplit("+", 1)[1]
        deleted = httpx.delete(f"{fake.api_base}/channels/{channel}/messages/{gone}",
                               headers={"Authorization": "Bot test-token"})
        assert deleted.status_code == 204
        assert port.replace(where, reference, Answer(text=LONG, message_id=7))
        assert port.replace(where, reference, Answer(text=LONG, message_id=7)), "a retried delivery"
    finally:
        port.close()

    assert [m["content"] for m in fake.sent_messages(channel)] == split_message(LONG)
    assert fake.sent_messages(channel)[-1]["components"], "the buttons on the last part"
    assert len(bot_posts(fake, channel)) == 3, "the placeholder, the live part, the part posted again once"


def test_without_a_model_the_extract_replaces_the_placeholder_in_one_edit(make_container, fake):
    container = make_container(**discord_settings(fake))
    ingest_docs(container)
    fake.add_guild(name="Docs", channels=["general"])
    with running_bot(container):
        thread = fake.send_message(fake.channel_by_name("general"), f"{fake.bot_mention} {QUESTION}")
        wait_answer(fake, thread)

    assert live_edits(fake, thread) == [], "no fake streaming"
    assert len(fake.calls_to("PATCH", rf"/channels/{thread}/messages/\d+$")) == 1
