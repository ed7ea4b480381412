"""Discord messages and interactions -> DiscordQuestion (or None when DocRag should stay quiet).

Pure translation: no network, no engine. Deciding whether a plain thread message is a follow-up
needs the database (the shared ``FollowUpRule``), so that check is left to the client.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord

from core.questions.follow_up import Addressing
from core.types import SessionKey

PLATFORM = "discord"
DM_WORKSPACE = "dm"
THREAD_NAME_LIMIT = 100
# Only ordinary user messages: joins, pins, "thread created" notices and the like are not questions.
_QUESTION_TYPES = (discord.MessageType.default, discord.MessageType.reply)


@dataclass(frozen=True)
class DiscordQuestion:
    key: SessionKey
    text: str
    mentioned: bool  # DocRag was mentioned for real (not through @everyone/@here)
    where: str  # "dm" | "thread" | "channel" (a guild text channel: answer in a new thread)

    @property
    def needs_follow_up_check(self) -> bool:
        """A plain thread message may be a follow-up: the shared rule decides (core/questions/follow_up.py)."""
        return self.where == "thread" and not self.mentioned

    @property
    def addressing(self) -> Addressing:
        return Addressing(self.key, direct=self.where == "dm", mentioned=self.mentioned, in_thread=self.where == "thread")


def question_from_message(message: discord.Message, bot_user_id: int) -> DiscordQuestion | None:
    if message.author.bot or message.author.id == bot_user_id or message.type not in _QUESTION_TYPES:
        return None
    if not message.content.strip():  # attachments only, or a follow-up hidden by a missing intent
        return None
    mentioned = any(user.id == bot_user_id for user in message.mentions)
    if not mentioned and _mentions_everyone(message):
        return None
    where = _where(message.channel)
    if where == "channel" and not mentioned:
        return None
    key = session_key(message.channel, user_id=message.author.id, root=str(message.id))
    return DiscordQuestion(key, strip_mention(message.content, bot_user_id), mentioned, where)


def question_from_interaction(interaction: discord.Interaction, text: str) -> DiscordQuestion:
    """``/ask``: in a thread or DM it joins that conversation; in a channel it stands alone."""
    root = ask_thread_id(interaction.id)
    channel = interaction.channel
    if channel is None:  # a channel type discord.py cannot build: still one conversation per command
        workspace = str(interaction.guild_id) if interaction.guild_id else DM_WORKSPACE
        key = SessionKey(PLATFORM, workspace, str(interaction.channel_id), root, str(interaction.user.id))
        return DiscordQuestion(key, text, True, "channel")
    key = session_key(channel, user_id=interaction.user.id, root=root)
    return DiscordQuestion(key, text, True, _where(channel))


def session_key(channel: Any, *, user_id: int, root: str) -> SessionKey:
    """Thread -> (parent, thread); DM -> (dm, dm); channel -> (channel, root of the answer's thread)."""
    user = str(user_id)
    if isinstance(channel, discord.Thread):
        return SessionKey(PLATFORM, str(channel.guild.id), str(channel.parent_id), str(channel.id), user)
    if _where(channel) == "dm":
        return SessionKey(PLATFORM, DM_WORKSPACE, str(channel.id), str(channel.id), user)
    # A thread opened on a message gets the message's id, so the key is known before the thread exists.
    return SessionKey(PLATFORM, str(channel.guild.id), str(channel.id), root, user)


def ask_thread_id(interaction_id: int) -> str:
    """``/ask`` in a channel has no Discord thread; the prefix tells recovery not to look for one."""
    return f"ask-{interaction_id}"


def strip_mention(content: str, bot_user_id: int) -> str:
    return " ".join(re.sub(rf"<@!?{bot_user_id}>", " ", content).split())


def thread_name(question: str) -> str:
    """A thread title from the question: one line, at most 100 characters, cut between words."""
    text = " ".join(re.sub(r"<[@#][!&]?\d+>", " ", question).split()) or "DocRag answer"
    if len(text) <= THREAD_NAME_LIMIT:
        return text
    cut = text[: THREAD_NAME_LIMIT - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


def _where(channel: object) -> str:
    if isinstance(channel, discord.Thread):
        return "thread"
    if getattr(channel, "guild", None) is None:
        return "dm"
    return "channel"


def _mentions_everyone(message: discord.Message) -> bool:
    return message.mention_everyone or "@everyone" in message.content or "@here" in message.content
