"""adapters/discord/streaming.py with the real discord.py against the fake Discord."""
from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, Callable

import discord
import pytest

from adapters.discord.render import MESSAGE_LIMIT
from adapters.discord.streaming import DiscordStreamer
from core.errors import UpstreamUnavailable
from core.types import Answer, Citation

TEXT = "To rotate your key open Settings and click Rotate [1]. The old key keeps working for 24 hours [1]."
PIECES = TEXT.replace(" ", "\0 ").split("\0")
ANSWER = Answer(TEXT, [Citation(1, "API keys", "https://docs.example.com/keys")], message_id=7)


def written(pieces: list[str], answer: Answer | None = ANSWER, *, then_fail: bool = False) -> Generator[str, None, Answer]:
    yield from pieces
    if then_fail:
        raise UpstreamUnavailable("The language model", "the answer stream broke")
    assert answer is not None
    return answer


async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def stream_into(fake, channel_id: int, stream, **options: Any) -> tuple[DiscordStreamer, Answer | str]:
    async def main() -> tuple[DiscordStreamer, Answer | str]:
        client = discord.Client(intents=discord.Intents.none())
        await client.login("test-token")
        try:
            channel = await client.fetch_channel(channel_id)
            streamer = DiscordStreamer(channel.send, **options)
            return streamer, await streamer.deliver(stream, run_blocking)
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.fixture
def channel(fake_discord, request) -> int:
    guild = fake_discord.add_guild(name="Docs", channels=[])
    return fake_discord.add_channel(guild, request.node.name[:90])


def writes(fake, channel_id: int) -> list:
    return [c for c in fake.calls if c.path.startswith(f"/channels/{channel_id}/messages") and c.method in ("POST", "PATCH")]


def test_the_message_grows_with_the_text_and_ends_with_sources_and_buttons(fake_discord, channel):
    streamer, outcome = stream_into(fake_discord, channel, written(PIECES), interval_s=0)

    assert outcome == ANSWER
    calls = writes(fake_discord, channel)
    assert calls[0].method == "POST" and calls[0].json["content"] == PIECES[0], "the first words go out at once"
    assert {c.method for c in calls[1:]} == {"PATCH"}, "then the same message is edited"
    [message] = fake_discord.sent_messages(channel)
    assert message["content"] == TEXT
    assert message["embeds"][0]["title"] == "Sources" and message["components"], "sources embed and buttons at the end"


def test_edits_are_coalesced_so_a_fast_model_costs_two_calls(fake_discord, channel):
    streamer, _ = stream_into(fake_discord, channel, written(PIECES * 20, Answer(TEXT * 20, [], message_id=None)))

    assert streamer.calls == len(writes(fake_discord, channel)) == 2, "first words, then the finished answer"


def test_a_stream_faster_than_discords_bucket_never_meets_a_429(fake_discord, channel):
    fake_discord.limit_channel_messages(limit=3, per_s=0.5)
    try:
        streamer, _ = stream_into(fake_discord, channel, written(PIECES), interval_s=0)  # an edit per piece
    finally:
        fake_discord.limit_channel_messages(None)

    assert [c.status for c in writes(fake_discord, channel) if c.status == 429] == [], "discord.py waited on the headers"
    assert fake_discord.sent_messages(channel)[0]["content"] == TEXT


def test_a_long_answer_continues_in_a_second_message_at_a_paragraph_boundary(fake_discord, channel):
    paragraphs = [f"Paragraph {i}: " + "word " * 60 for i in range(8)]
    long = "\n\n".join(p.strip() for p in paragraphs)
    assert len(long) > MESSAGE_LIMIT
    pieces = long.replace(" ", "\0 ").split("\0")

    stream_into(fake_discord, channel, written(pieces, Answer(long, ANSWER.citations, message_id=7)), interval_s=0.05)

    first, second = fake_discord.sent_messages(channel)
    assert len(first["content"]) <= MESSAGE_LIMIT and first["content"].endswith("word")
    assert second["content"].startswith("Paragraph ")
    assert first["content"] + "\n\n" + second["content"] == long
    assert not first["embeds"] and second["embeds"] and second["components"]


def test_a_model_failure_mid_answer_replaces_the_partial_text(fake_discord, channel):
    _, outcome = stream_into(fake_discord, channel, written(PIECES[:5], None, then_fail=True), interval_s=0)

    [message] = fake_discord.sent_messages(channel)
    assert isinstance(outcome, str) and message["content"] == outcome and "rotate" not in outcome.lower()


def test_an_answer_ready_at_once_is_sent_once(fake_discord, channel):
    streamer, _ = stream_into(fake_discord, channel, written([]))

    [call] = writes(fake_discord, channel)
    assert call.method == "POST" and call.json["content"] == TEXT and call.json["embeds"]
