"""Discord threads that end well become learned answers (core/ingest/learned_jobs.py).

The signals: a click on the answer's 👍 button or a 👍 reaction on the answer; a ✅ (or ☑️, ✔️)
reaction by a person on the answer or on the question that opened the thread; a thread message
that is just ``resolved`` (optionally after a mention of DocRag), which is then not answered as a
follow-up. Each becomes a durable learning job. The gateway's cache already knows everything
the document needs (the channel's name, whether it is private, the jump URL, who confirmed), so
the confirmation carries it and the worker never calls Discord.

Private never feeds the shared collection: a DM or group DM, a private thread, or a thread or
channel that @everyone cannot see; a channel the cache does not know counts as private too.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import discord

from adapters.discord.events import DM_WORKSPACE, PLATFORM
from adapters.discord.feedback import parse_custom_id
from core.ingest.learned_jobs import Confirmation, ThreadFacts, defer_learning, now_iso
from core.ingest.learned_threads import Target

log = logging.getLogger(__name__)

THUMBS_UP = "👍"
RESOLVED_EMOJIS = frozenset({"✅", "☑️", "✔️"})
RESOLVED_TEXT = re.compile(r"^\s*(?:<@!?\d+>\s*)?resolved\s*[.!]*\s*$", re.IGNORECASE)
JUMP = "https://discord.com/channels"


# -- what Discord knows about a channel (pure) --------------------------------------------------------
def is_private(channel: Any) -> bool:
    if channel is None or getattr(channel, "guild", None) is None:
        return True  # unknown, a DM or a group DM
    if isinstance(channel, discord.Thread):
        if channel.type is discord.ChannelType.private_thread:
            return True
        channel = channel.parent
        if channel is None:
            return True
    return not channel.permissions_for(channel.guild.default_role).view_channel


def channel_name(channel: Any) -> str:
    if isinstance(channel, discord.Thread) and channel.parent is not None:
        return channel.parent.name
    return str(getattr(channel, "name", "") or "direct-message")


def facts_for(channel: Any, *, link: str, confirmed_by: str) -> ThreadFacts:
    return ThreadFacts(channel_name(channel), is_private(channel), link, confirmed_by)


def _workspace(guild_id: int | None) -> str:
    return str(guild_id) if guild_id else DM_WORKSPACE


# -- the listener, mixed into the client ----------------------------------------------------------------
class LearningListener:
    """discord.py calls ``on_raw_reaction_add`` and ``on_interaction`` by name; the client calls
    ``learn_if_resolved`` first thing in ``on_message``."""

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        me = self.user  # type: ignore[attr-defined]
        emoji = str(payload.emoji)
        thumbs_up = emoji.startswith(THUMBS_UP)  # skin tones follow the base emoji
        if me is None or payload.user_id == me.id or not (thumbs_up or emoji in RESOLVED_EMOJIS):
            return
        if payload.member is not None and payload.member.bot:
            return
        channel = self.get_channel(payload.channel_id)  # type: ignore[attr-defined]
        guild = _workspace(payload.guild_id)
        answer = f"{payload.channel_id}/{payload.message_id}"  # how the delivery named the answer it posted
        # On the answer only for a 👍; a ✅ also counts on the question (its id is the thread's).
        target = Target(PLATFORM, guild, str(payload.channel_id), placeholder=answer,
                        thread=None if thumbs_up else str(payload.message_id))
        link = _link(channel, payload.guild_id, payload.channel_id, payload.message_id)
        who = payload.member.display_name if payload.member is not None else self._name_of(payload.user_id)
        await self._queue_learning(Confirmation(target, str(payload.user_id), "thumbs_up" if thumbs_up else "reaction",
                                                now_iso(), facts_for(channel, link=link, confirmed_by=who)))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A click on an answer's 👍 button (the button itself records the feedback)."""
        if interaction.type is not discord.InteractionType.component or interaction.data is None:
            return
        parsed = parse_custom_id(str(interaction.data.get("custom_id", "")))
        if parsed is None or parsed[0] <= 0:
            return
        channel = interaction.channel
        message_id = interaction.message.id if interaction.message is not None else 0
        link = _link(channel, interaction.guild_id, interaction.channel_id or 0, message_id)
        target = Target(PLATFORM, _workspace(interaction.guild_id), str(interaction.channel_id or ""), answer_id=parsed[1])
        await self._queue_learning(Confirmation(target, str(interaction.user.id), "thumbs_up", now_iso(),
                                                facts_for(channel, link=link, confirmed_by=interaction.user.display_name)))

    async def learn_if_resolved(self, message: discord.Message) -> bool:
        """True when ``message`` is a person's ``resolved`` in a thread (then it is not a question)."""
        channel = message.channel
        if message.author.bot or not isinstance(channel, discord.Thread) or not RESOLVED_TEXT.match(message.content):
            return False
        target = Target(PLATFORM, _workspace(message.guild.id if message.guild else None), str(channel.parent_id),
                        thread=str(channel.id))
        facts = facts_for(channel, link=f"{JUMP}/{channel.guild.id}/{channel.id}", confirmed_by=message.author.display_name)
        await self._queue_learning(Confirmation(target, str(message.author.id), "resolved", now_iso(), facts))
        return True

    async def _queue_learning(self, confirmation: Confirmation) -> None:
        try:
            queued = await self.call_engine(defer_learning, self.services.lifecycle.jobs, confirmation)  # type: ignore[attr-defined]
        except Exception:  # the queue is down: the thread is simply not learned; nobody waits for it
            log.exception("discord.learning_not_queued target=%s", confirmation.target)
            return
        if queued:
            log.info("discord.learning_queued how=%s target=%s", confirmation.how, confirmation.target)

    def _name_of(self, user_id: int) -> str:
        user = self.get_user(user_id)  # type: ignore[attr-defined]
        return user.display_name if user is not None else str(user_id)


def _link(channel: Any, guild_id: int | None, channel_id: int, message_id: int) -> str:
    """The thread itself when the message is in one, else the message in its channel."""
    where = str(guild_id) if guild_id else "@me"
    if isinstance(channel, discord.Thread):
        return f"{JUMP}/{where}/{channel.id}"
    return f"{JUMP}/{where}/{channel_id}/{message_id}"
