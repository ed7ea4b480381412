"""The Discord client: mentions open threads, thread follow-ups, DMs, ``/ask``, feedback buttons.

The gateway process only accepts: every question goes to the lifecycle (core/questions), which
stores it, shows a placeholder and queues the durable answer job; a worker answers and edits the
placeholder through the REST API (adapters/discord/delivery.py), so an answer survives a restart
of this process. Accepting blocks (database), so it runs on a bounded thread pool.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

import discord
from discord import app_commands

from adapters.discord.events import PLATFORM, DiscordQuestion, question_from_interaction, question_from_message, thread_name
from adapters.discord.feedback import FeedbackButton
from adapters.discord.learning import LearningListener
from adapters.discord.render import error_text
from adapters.discord.services import DiscordServices
from core.questions.values import Where

log = logging.getLogger(__name__)
T = TypeVar("T")
Send = Callable[..., Awaitable[Any]]

MISSING_INTENT_WARNING = (
    "discord.intent.missing intent=message_content: Discord refused the privileged Message Content intent, "
    "so DocRag runs without it. Mentions, DMs and /ask still work, but follow-ups in threads that do not "
    "mention DocRag cannot be read. Fix: Discord Developer Portal > your application > Bot > Privileged "
    "Gateway Intents > enable 'Message Content Intent', save, and restart DocRag."
)


@dataclass(frozen=True)
class BotOptions:
    dev_guild_id: int | None = None  # sync /ask to this guild only (instant); else globally
    shard_count: int | None = None  # set: AutoShardedClient with this many shards
    guild_ready_timeout: float = 2.0
    engine_workers: int = 8  # questions accepted at the same time


def bot_intents(*, message_content: bool) -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = message_content  # privileged: needed only for follow-ups without a mention
    return intents


class DocRagClient(LearningListener, discord.Client):  # resolved threads are learned (adapters/discord/learning.py)
    def __init__(
        self,
        services: DiscordServices,
        *,
        options: BotOptions,
        intents: discord.Intents,
        executor: Executor,
        started: threading.Event | None = None,
        **client_options: Any,
    ) -> None:
        # DocRag never joins voice channels: "PyNaCl is not installed" would only mislead operators.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents,
            guild_ready_timeout=options.guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),  # documents may contain @everyone
            **client_options,
        )
        self.services = services
        self.engine = services.lifecycle.engine
        self.options = options
        self.started = started or threading.Event()
        self._executor = executor
        self._did_start = False
        self.tree = app_commands.CommandTree(self)
        add_ask_command(self.tree, self.on_ask)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton)  # buttons on answers sent before a restart still work

    async def call_engine(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    # -- start-up --------------------------------------------------------------------------------
    async def on_ready(self) -> None:
        content = self.intents.message_content
        log.info("discord.ready user=%s guilds=%d message_content=%s", self.user, len(self.guilds), content)
        if not content:
            log.warning(MISSING_INTENT_WARNING)
        if self._did_start:  # on_ready repeats after a reconnect that could not resume
            return
        self._did_start = True
        # Questions accepted before a restart need nothing from here: their durable answer job
        # is finished by a worker, which updates the placeholder (core/questions/lifecycle.py).
        await self._sync_commands()
        self.started.set()

    async def _sync_commands(self) -> None:
        guild = discord.Object(self.options.dev_guild_id) if self.options.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        scope = f"guild:{guild.id}" if guild else "global"
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error(
                "discord.commands.sync_failed scope=%s status=%s: /ask is unavailable; invite the bot with the "
                "applications.commands scope", scope, exc.status,
            )
            return
        log.info("discord.commands.synced scope=%s commands=%s", scope, [c.name for c in synced])

    # -- messages --------------------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        if self.user is None or await self.learn_if_resolved(message):
            return
        question = question_from_message(message, self.user.id)
        if question is None:
            return
        if question.needs_follow_up_check and not await self._is_follow_up(question):
            return
        await self._accept(question, where_for_message(message, question), message.reply)

    async def _is_follow_up(self, question: DiscordQuestion) -> bool:
        try:
            return await self.call_engine(self.services.follow_ups.is_for_us, question.addressing)
        except Exception:  # unknown whether it was meant for DocRag: replying to every thread message would be worse
            log.exception("discord.follow_up_check_failed session=%s", question.key)
            return False

    # -- /ask --------------------------------------------------------------------------------------
    async def on_ask(self, interaction: discord.Interaction, question_text: str) -> None:
        try:  # within Discord's 3 s: shows "DocRag is thinking…", the placeholder the answer replaces
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            log.warning("discord.ask.defer_failed interaction=%s status=%s", interaction.id, exc.status)
            return
        question = question_from_interaction(interaction, question_text)
        await self._accept(question, where_for_interaction(interaction), interaction.followup.send)

    # -- feedback ------------------------------------------------------------------------------------
    async def record_feedback_click(self, interaction: discord.Interaction, answer_id: int, score: int) -> None:
        try:
            await self.call_engine(
                self.engine.record_feedback, answer_id, platform=PLATFORM, user_id=str(interaction.user.id), score=score
            )
            text = "Thanks for the feedback! 👍" if score > 0 else "Thanks — noted. Rephrasing the question may help. 👎"
            log.info("discord.feedback answer_id=%s score=%s", answer_id, score)
        except Exception as exc:
            text = error_text(exc)
        with contextlib.suppress(discord.HTTPException):
            await interaction.response.send_message(text, ephemeral=True)

    # -- the one step every door shares ----------------------------------------------------------------
    async def _accept(self, question: DiscordQuestion, where: Where, report: Send) -> int | None:
        """Hand the question to the lifecycle (stored, placeholder shown, answer job queued);
        a refusal is told to the user and returns None."""
        try:
            question_id = await self.call_engine(self.services.lifecycle.accept, question.key, question.text, where)
        except Exception as exc:
            log.info("discord.question.refused session=%s reason=%s", question.key, type(exc).__name__)
            await _send_safely(report, content=error_text(exc))
            return None
        log.info("discord.question.accepted question_id=%s session=%s", question_id, question.key)
        return question_id


def where_for_message(message: discord.Message, question: DiscordQuestion) -> Where:
    """A mention in a text channel is answered in a new thread on the message, else in place."""
    channel = str(message.channel.id)
    if question.where == "channel" and isinstance(message.channel, discord.TextChannel):
        return Where(PLATFORM, {"channel": channel, "message": str(message.id), "thread_name": thread_name(question.text)})
    return Where(PLATFORM, {"channel": channel})


def where_for_interaction(interaction: discord.Interaction) -> Where:
    """``/ask``: the deferred response is edited through the interaction's webhook (15 minutes)."""
    return Where(PLATFORM, {"application": str(interaction.application_id), "token": interaction.token,
                            "channel": str(interaction.channel_id or "")})


def add_ask_command(tree: app_commands.CommandTree, handler: Callable[[discord.Interaction, str], Awaitable[None]]) -> None:
    @tree.command(name="ask", description="Ask DocRag a question about the documentation")
    @app_commands.describe(question="What do you want to know?")
    async def ask(interaction: discord.Interaction, question: app_commands.Range[str, 1, 2000]) -> None:
        await handler(interaction, question)


class ShardedDocRagClient(DocRagClient, discord.AutoShardedClient):
    """Same behaviour, several gateway shards in one process (for bots in many guilds)."""


async def _send_safely(send: Send, **kwargs: Any) -> bool:
    try:
        await send(**kwargs)
        return True
    except discord.HTTPException as exc:
        log.error("discord.send_failed status=%s code=%s text=%s", exc.status, exc.code, exc.text)
        return False


class DiscordBot:
    """Runs a client; if Discord refuses the Message Content intent, runs again without it."""

    def __init__(self, services: DiscordServices, options: BotOptions | None = None) -> None:
        self.services = services
        self.options = options or BotOptions()
        self.client: DocRagClient | None = None
        self.started = threading.Event()  # set once commands are synced and pending questions handled
        self._stopping = False
        self._executor = ThreadPoolExecutor(self.options.engine_workers, thread_name_prefix="docrag-discord")

    async def run(self, token: str) -> None:
        try:
            try:
                await self._run_client(token, message_content=True)
            except discord.PrivilegedIntentsRequired:
                # on_ready of the next client explains the consequences and the fix.
                log.warning("discord.intent.refused intent=message_content: reconnecting without it")
                if not self._stopping:
                    await self._run_client(token, message_content=False)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def stop(self) -> None:
        self._stopping = True
        if self.client is not None:
            await self.client.close()

    async def _run_client(self, token: str, *, message_content: bool) -> None:
        self.client = self._make_client(message_content)
        async with self.client:
            await self.client.start(token)

    def _make_client(self, message_content: bool) -> DocRagClient:
        common = dict(
            options=self.options,
            intents=bot_intents(message_content=message_content),
            executor=self._executor,
            started=self.started,
        )
        if self.options.shard_count:
            return ShardedDocRagClient(self.services, shard_count=self.options.shard_count, **common)
        return DocRagClient(self.services, **common)
