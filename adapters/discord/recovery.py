"""Where to deliver a question accepted before a restart, and how to introduce the late answer."""
from __future__ import annotations

import logging

import discord

from adapters.discord.events import DM_WORKSPACE, thread_name
from core.engine import PendingQuestion
from core.types import SessionKey

log = logging.getLogger(__name__)


def is_ours(client: discord.Client, key: SessionKey) -> bool:
    """A guild question belongs to the process connected to that guild (several processes may shard)."""
    if key.workspace == DM_WORKSPACE:
        return True
    return key.workspace.isdigit() and client.get_guild(int(key.workspace)) is not None


async def target_for(client: discord.Client, question: PendingQuestion) -> discord.abc.Messageable | None:
    """The question's thread or DM; the thread is opened now if the restart came first; else its channel."""
    key = question.key
    if key.workspace == DM_WORKSPACE:
        return await _channel(client, key.channel)
    if key.thread.isdigit():
        thread = await _channel(client, key.thread)
        if thread is not None:
            return thread
    parent = await _channel(client, key.channel)
    if isinstance(parent, discord.TextChannel) and key.thread.isdigit():
        try:  # a mention's thread id is its message id: open the thread the restart prevented
            starter = parent.get_partial_message(int(key.thread))
            return await starter.create_thread(name=thread_name(question.text), auto_archive_duration=1440)
        except discord.HTTPException as exc:
            log.info("discord.recovery.thread_failed question_id=%s status=%s", question.message_id, exc.status)
    return parent


def intro(question: PendingQuestion, *, in_place: bool) -> str:
    """In the question's own thread or DM no mention is needed; in a channel, say whom it is for."""
    quoted = " ".join(question.text.split())
    quoted = quoted if len(quoted) <= 200 else quoted[:199] + "…"
    who = "" if in_place or not question.key.user.isdigit() else f"<@{question.key.user}> "
    return f"{who}Sorry for the delay: I was restarted while working on “{quoted}”."


def asker_only(question: PendingQuestion) -> discord.AllowedMentions:
    """The late answer may ping the person who asked, and nobody else."""
    user = question.key.user
    return discord.AllowedMentions(users=[discord.Object(int(user))] if user.isdigit() else False)


async def _channel(client: discord.Client, channel_id: str) -> discord.abc.Messageable | None:
    if not channel_id.isdigit():
        return None
    channel = client.get_channel(int(channel_id))
    if channel is None:
        try:
            channel = await client.fetch_channel(int(channel_id))
        except discord.HTTPException:  # deleted, or no access any more
            return None
    return channel if isinstance(channel, discord.abc.Messageable) else None
