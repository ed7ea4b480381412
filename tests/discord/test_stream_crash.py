"""A Discord gateway process SIGKILLed while it streams an answer (issue 12, "exactly once, always").

The real gateway process (bench/_crash_child.py discord: discord.py, its job workers inside) talks
to the fake Discord and to a fake OpenAI that stops writing after a few words until the test lets
it go on. The process is killed while the placeholder shows those first words; the restarted
process finds the stalled answer job (heartbeats) and puts ONE complete answer in place of the
partial message: no second answer message.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from adapters.discord.delivery import PLACEHOLDER
from adapters.discord.render import split_message
from tests.conftest import REPO
from tests.discord.conftest import ingest_docs
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI

QUESTION = "how do I ingest a sitemap?"
ANSWER = ("Point the ingest command at the sitemap's URL [1]. Every page it lists is fetched and "
          "chunked [1].\n\nRun it again to pick up new pages; unchanged ones are skipped [1].")
RECOVERY_S = 90  # the dead worker is presumed dead after 10 s without heartbeats, then retried


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(require_auth=False) as llm:
        llm.chat_responder = lambda _body: ANSWER
        yield llm


class Gateway:
    """``python bench/_crash_child.py discord`` pointed at the fakes; started, SIGKILLed, started again."""

    def __init__(self, database_url: str, data_dir: Path, fake: FakeDiscord, llm: FakeOpenAI, log: Path) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DOCRAG_", "SLACK_", "OPENAI_", "DISCORD_", "DATABASE_URL"))}
        env.update(DATABASE_URL=database_url, DOCRAG_DATA_DIR=str(data_dir), DOCRAG_LOG_LEVEL="INFO",
                   DOCRAG_LLM="openai", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test",
                   DOCRAG_LLM_MAX_RETRIES="0", DISCORD_TOKEN="bench-token",
                   DISCORD_API_BASE_URL=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url)
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "_crash_child.py"), "discord"],
                                         cwd=REPO, env=self.env, stdout=out, stderr=out)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def until(condition, what: str, timeout: float):
    """Wait for something the processes do by themselves (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return found


LONG = "\n\n".join(f"Paragraph {i}: " + "sitemap pages are fetched and chunked. " * 9 + "[1]" for i in range(8))


@pytest.mark.parametrize("written, messages", [(ANSWER, 1), (LONG, 2)], ids=["short", "past-2000-characters"])
def test_a_gateway_killed_mid_stream_ends_with_one_complete_answer_in_the_partial_messages(
    make_container, fake: FakeDiscord, llm: FakeOpenAI, database_url: str, tmp_path: Path, written: str, messages: int
) -> None:
    """Killed while its messages show part of the answer (past 2,000 characters: the first message
    and the live continuation); after the restart those same messages hold the whole answer."""
    ingest_docs(make_container())
    fake.add_guild(name="Docs", channels=["general"])
    general = fake.channel_by_name("general")
    llm.chat_responder = lambda _body: written
    llm.token_delay_s = 0.02 if messages > 1 else 0.0  # long enough for a live edit past 2,000 characters
    pieces = written.count(" ") + 1
    release = llm.pause_next_stream(after=4 if messages == 1 else pieces - 10)  # then waits
    gateway = Gateway(database_url, tmp_path / "data", fake, llm, tmp_path / "gateway.log")
    gateway.start()
    try:
        fake.wait_connected(timeout=60)
        thread = fake.send_message(general, f"{fake.bot_mention} {QUESTION}")
        partial = until(lambda: (lambda m: m if len(m) == messages and m[-1]["content"] != PLACEHOLDER
                                 and m[-1]["content"] else None)(fake.sent_messages(thread)),
                        "the first words in the placeholder", 60)
        shown = "\n\n".join(m["content"] for m in partial)
        assert shown != written and not partial[-1].get("components"), "the model is still writing"

        gateway.kill()
        release.set()  # what the dead process would have read goes nowhere
        gateway.start()
        fake.wait_connected(timeout=60, connections=2)
        last = int(partial[-1]["id"])
        until(lambda: fake.message(last).get("components"), "the answer in the partial messages", RECOVERY_S)
    finally:
        gateway.stop()

    final = fake.sent_messages(thread)
    assert [m["id"] for m in final] == [m["id"] for m in partial], "the partial messages became the answer"
    assert [m["content"] for m in final] == split_message(written), "one complete answer, nothing doubled or cut"
    assert final[-1]["embeds"][0]["title"] == "Sources"
    # A continuation posted again after the kill carries the nonce of the first post (the kill may
    # land between posting it and remembering it): Discord returns that message, creating none.
    posts = fake.calls_to("POST", rf"/channels/{thread}/messages$")
    created = {call.json.get("nonce") or f"call-{n}" for n, call in enumerate(posts)}
    assert len(created) == messages, "no message posted twice"
    assert len(fake.calls_to("POST", rf"/channels/{general}/messages/\d+/threads$")) == 1, "one thread"
    assert len(llm.requests_to("/v1/chat/completions")) == 2, "the killed attempt, then the one that answered"
