"""The Discord process: ``python -m bots.discord_gateway`` (Procfile ``discord``).

Reads Settings, builds the container, points discord.py at a proxy or a fake when configured,
and runs the gateway client until SIGTERM/SIGINT. The gateway accepts questions; answers are
durable jobs (core/questions/lifecycle.py) that any worker finishes: on the embedded default this
process runs job workers itself, as the web process does. ``run_in_thread`` runs the same bot on
a background thread for tests.
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
from bots.wiring import Container, build_container, build_discord_services, open_job_queue, start_background_worker
from core.config import Settings, load_settings
from core.errors import DocRagError
from core.storage.queue import BackgroundWorker

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


# Answer jobs run beside the gateway connection on the embedded default: a few at a time.
EMBEDDED_CONCURRENCY = 4


@dataclass
class GatewayRuntime:
    """The bot and what it holds: the job queue, and job workers when they run in this process."""

    bot: DiscordBot
    jobs: Any
    worker: BackgroundWorker | None = None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.jobs.close()


def build_runtime(container: Container, *, start_worker: bool | None = None, **option_overrides: Any) -> GatewayRuntime:
    settings = container.settings
    jobs = open_job_queue(container)
    lifecycle = container.lifecycle(jobs)
    bot = DiscordBot(build_discord_services(container, lifecycle), bot_options(settings, **option_overrides))
    wanted = start_worker if start_worker is not None else settings.embedded_workers and settings.uses_embedded_database
    worker = start_background_worker(container, lifecycle, None, concurrency=EMBEDDED_CONCURRENCY) if wanted else None
    return GatewayRuntime(bot, jobs, worker)


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
    runtime = build_runtime(container)
    try:
        asyncio.run(_run_until_signal(runtime.bot, settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        print("Discord rejected DISCORD_TOKEN: copy a fresh token from the Developer Portal (Bot > Reset Token).", file=sys.stderr)
        return 1
    finally:
        runtime.close()
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
    runtime: GatewayRuntime

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
        self.runtime.close()


def run_in_thread(
    container: Container, token: str = "test-token", *, start_worker: bool = True, **option_overrides: Any
) -> BotThread:
    """Start the bot (and, unless told not to, job workers) against ``container`` on background
    threads (point discord.py first)."""
    point_discord_at(container.settings)
    runtime = build_runtime(container, start_worker=start_worker, **option_overrides)
    bot = runtime.bot
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
    return BotThread(bot, thread, loop, runtime)


if __name__ == "__main__":
    sys.exit(main())
