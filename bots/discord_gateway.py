"""The Discord process: ``python -m bots.discord_gateway`` (Procfile ``discord``).

Reads Settings, builds the container, points discord.py at a proxy or a fake when configured,
and runs the gateway client until SIGTERM/SIGINT. ``run_in_thread`` runs the same bot on a
background thread for tests.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.bot import BotOptions, DiscordBot
from bots.logs import configure_logging
from bots.wiring import Container, build_container
from core.config import Settings, load_settings
from core.errors import DocRagError

log = logging.getLogger(__name__)

MISSING_TOKEN = (
    "DISCORD_TOKEN is not set: copy the bot token from the Discord Developer Portal (Bot > Reset Token) "
    "into the DISCORD_TOKEN environment variable."
)


def bot_options(settings: Settings, **overrides: Any) -> BotOptions:
    options = BotOptions(dev_guild_id=settings.discord_dev_guild_id, shard_count=settings.discord_shard_count)
    return replace(options, **overrides)


def point_discord_at(settings: Settings) -> None:
    """Use DISCORD_API_BASE_URL / DISCORD_GATEWAY_URL only when they differ from Discord's own.

    discord.py keeps both as class attributes, so this is process-wide and must run before the
    client starts. (AutoShardedClient asks /gateway/bot for its URL and so follows the REST base.)
    """
    fields = Settings.model_fields
    if settings.discord_api_base_url != fields["discord_api_base_url"].default:
        discord.http.Route.BASE = settings.discord_api_base_url.rstrip("/")
    if settings.discord_gateway_url != fields["discord_gateway_url"].default:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def build_bot(container: Container, **option_overrides: Any) -> DiscordBot:
    return DiscordBot(container.engine, bot_options(container.settings, **option_overrides))


# -- the process ---------------------------------------------------------------------------------
def main() -> int:
    try:
        settings = load_settings()
    except DocRagError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.discord_token is None:
        print(MISSING_TOKEN, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        container = build_container(settings, process="discord")
    except DocRagError as exc:  # e.g. the schema is out of date: the message says what to run
        print(exc, file=sys.stderr)
        return 1
    point_discord_at(settings)
    bot = build_bot(container)
    try:
        asyncio.run(_run_until_signal(bot, settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        print("Discord rejected DISCORD_TOKEN: copy a fresh token from the Developer Portal (Bot > Reset Token).", file=sys.stderr)
        return 1
    return 0


async def _run_until_signal(bot: DiscordBot, token: str) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.stop()))
    await bot.run(token)


# -- for tests -------------------------------------------------------------------------------------
@dataclass
class BotThread:
    """A bot running on its own thread and event loop."""

    bot: DiscordBot
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    def wait_started(self, timeout: float = 15.0) -> None:
        """Block until /ask is synced and pending questions were handled (fail fast if the bot died)."""
        deadline = time.monotonic() + timeout
        while not self.bot.started.wait(0.05):
            if not self.thread.is_alive():
                raise RuntimeError("the Discord bot stopped before it was ready (see the log)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Discord bot did not start within {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.bot.stop(), self.loop).result(timeout)
        self.thread.join(timeout)


def run_in_thread(container: Container, token: str = "test-token", **option_overrides: Any) -> BotThread:
    """Start the bot against ``container`` on a background thread (point discord.py first)."""
    point_discord_at(container.settings)
    bot = build_bot(container, **option_overrides)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(bot.run(token))
        except Exception:
            log.exception("discord.bot_thread.crashed")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="docrag-discord", daemon=True)
    thread.start()
    return BotThread(bot, thread, loop)


if __name__ == "__main__":
    sys.exit(main())
