"""The real discord.py bot against the fake Discord (tests/fakes/discord_server.py) on 127.0.0.1.

Most modules share one fake and one running bot (``module_container`` + ``running_bot``); tests
then use fresh channels/threads/users and ``clean_conversations`` so they stay independent.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from adapters.discord.delivery import PLACEHOLDER
from bots.discord_gateway import BotThread, run_in_thread
from bots.wiring import Container
from core.config import Settings
from core.storage.db import Database
from core.storage.models import Message
from tests.conftest import REPO, truncate_all
from tests.fakes.discord_server import Call, FakeDiscord

DOCS = REPO / "docs"
DOCS_URL = "https://docs.example.com/"


@pytest.fixture(scope="module")
def fake_discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake, fake.patch_discord():
        yield fake


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A fake Discord of the test's own (the module's bot uses ``fake_discord``)."""
    with FakeDiscord() as fake, fake.patch_discord():
        yield fake


def discord_settings(fake: FakeDiscord) -> dict[str, Any]:
    """Point the bot at the fake through the same settings production uses."""
    return {"discord_api_base_url": fake.api_base, "discord_gateway_url": fake.gateway_url, "discord_token": "test-token"}


@pytest.fixture(scope="module")
def module_container(
    database_url: str, session_database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Container]:
    """A container that lives as long as the module's bot (the ``container`` fixture is per test)."""

    def make(**overrides: object) -> Container:
        truncate_all(session_database)
        values: dict[str, object] = {
            "database_url": database_url,
            "data_dir": tmp_path_factory.mktemp("data"),
            "llm": "extractive",
            **overrides,
        }
        return Container(settings=Settings(_env_file=None, **values), database=session_database)  # type: ignore[call-arg]

    return make


@pytest.fixture
def clean_conversations(session_database: Database) -> None:
    """Forget conversations, feedback and rate-limit counters; keep the module's documents."""
    with session_database.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE conversations, messages, feedback, rate_limits RESTART IDENTITY CASCADE"))


@contextlib.contextmanager
def running_bot(container: Container, **options: object) -> Iterator[BotThread]:
    handle = run_in_thread(container, guild_ready_timeout=0.1, **options)
    try:
        handle.wait_started()
        yield handle
    finally:
        handle.stop()


def ingest_docs(container: Container, collection: str = "default") -> None:
    report = container.ingestor.ingest([str(DOCS)], collection=collection, base_url=DOCS_URL)
    assert report.added and not report.failed


def write_doc(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- waiting for and reading what the bot posted ---------------------------------------------------
def posts_to(channel_id: int) -> Callable[[Call], bool]:
    return lambda call: call.method == "POST" and call.path == f"/channels/{channel_id}/messages"


def writes_to(channel_id: int) -> Callable[[Call], bool]:
    """A message posted in the channel, or one of its messages edited (a placeholder replaced)."""
    return lambda call: call.method in ("POST", "PATCH") and call.path.startswith(f"/channels/{channel_id}/messages")


def settled(fake: FakeDiscord, channel_id: int) -> list[dict[str, Any]]:
    """The bot's messages in the channel, once none of them is still a placeholder."""
    return [m for m in fake.sent_messages(channel_id) if not m["content"].startswith(PLACEHOLDER)]


def wait_posts(fake: FakeDiscord, channel_id: int, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Wait until the bot has ``count`` messages in the channel that are not placeholders (an
    answer replaces its placeholder); return them all (what Discord stored)."""
    deadline = time.monotonic() + timeout
    while True:
        messages = fake.sent_messages(channel_id)
        if len(messages) >= count and len(settled(fake, channel_id)) == len(messages):
            return messages
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {count} settled message(s) in {channel_id}: {messages}")
        time.sleep(0.02)


def wait_answer(fake: FakeDiscord, channel_id: int, timeout: float = 15.0) -> dict[str, Any]:
    """Wait for an answer's last message (it carries the feedback buttons) and return it."""
    fake.wait_for(lambda c: writes_to(channel_id)(c) and bool((c.json or {}).get("components")), timeout=timeout)
    return [m for m in fake.sent_messages(channel_id) if m.get("components")][-1]


def button_ids(message: dict[str, Any]) -> list[str]:
    return [item["custom_id"] for row in message.get("components", []) for item in row["components"]]


def stored_turns(container: Container) -> list[tuple[str, str]]:
    with container.database.sessions() as session:
        rows = session.scalars(sa.select(Message).order_by(Message.id)).all()
        return [(m.role, m.text) for m in rows]
