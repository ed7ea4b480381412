"""👍/👎 buttons that keep working after a restart.

The answer's id travels in the button's custom_id (``docrag:fb:+1:<id>``) and the button is a
``DynamicItem``: discord.py rebuilds it from any matching custom_id, so no per-message view has
to be remembered across restarts.
"""
from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import discord

CUSTOM_ID = re.compile(r"^docrag:fb:(?P<score>[+-]1):(?P<answer>\d+)$")


@runtime_checkable
class FeedbackSink(Protocol):
    """Implemented by the client: store a click and tell the user it was stored."""

    async def record_feedback_click(self, interaction: discord.Interaction, answer_id: int, score: int) -> None: ...


def custom_id(score: int, answer_id: int) -> str:
    return f"docrag:fb:{score:+d}:{answer_id}"


def parse_custom_id(value: str) -> tuple[int, int] | None:
    """(score, answer id) from a custom_id, or None when it is not one of ours."""
    match = CUSTOM_ID.match(value)
    return (int(match["score"]), int(match["answer"])) if match else None


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID):
    def __init__(self, score: int, answer_id: int) -> None:
        emoji, label = ("👍", "Helpful") if score > 0 else ("👎", "Not helpful")
        style = discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(style=style, emoji=emoji, label=label, custom_id=custom_id(score, answer_id)))
        self.score = score
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(int(match["score"]), int(match["answer"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        sink = interaction.client
        if isinstance(sink, FeedbackSink):
            await sink.record_feedback_click(interaction, self.answer_id, self.score)


def feedback_view(answer_id: int) -> discord.ui.View:
    """Build inside the bot's event loop (a View needs a running loop)."""
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(1, answer_id))
    view.add_item(FeedbackButton(-1, answer_id))
    return view
