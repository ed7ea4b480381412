"""Streamed answers: first visible words, platform calls and completion time, per door.

    python bench/stream.py [--tokens 300] [--rate 40] [--runs 1] [--json]

Everything on 127.0.0.1: a private embedded PostgreSQL (documents: the repository's docs/), a fake
OpenAI server that writes a ``--tokens``-token answer at ``--rate`` tokens a second (one token =
one streamed piece), the fake Slack and the fake Discord. For each door the bench asks a question
and measures, from the moment the question is asked (so retrieval is included):

- first words: until the first words are visible (REST: the first ``delta`` event read by the
  client; playground: the first chunk with draft text; Slack: the fake answered chat.startStream;
  Discord: the fake received the first edit of the placeholder with answer text);
- calls: platform calls for the answer (events or chunks written on the web; Slack: every chat.*
  call, the placeholder's postMessage included; Discord: every message POST/PATCH, placeholder
  included). Slack and Discord go through the wired delivery path: the delivery port's placeholder,
  then the answer job's body (``Lifecycle.run``), run directly, so the queue's pick-up is not counted;
- complete: until the finished answer is in place; overhead: complete vs the model's own time
  (``OpenAIChat.stream`` read directly from the same fake, no retrieval, no door).

Goals (issue 12): first words under 1.5 s; overhead under 5 %.
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import fresh_database, machine, table  # noqa: E402
from bots.wiring import Container  # noqa: E402
from core.config import Settings  # noqa: E402
from core.types import SessionKey  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

QUESTION = "how do I ingest a folder of documents?"


def answer_text(tokens: int) -> str:
    words = [f"word{i}" for i in range(tokens - 1)]
    for i in range(40, len(words), 60):
        words[i] += " [1]."
    return " ".join(words) + " [1]."


class World:
    def __init__(self, tokens: int, rate: float) -> None:
        self.llm = FakeOpenAI().start()
        self.llm.chat_responder = lambda body: answer_text(tokens)
        self.llm.token_delay_s = 1 / rate
        database = fresh_database()
        settings = Settings(
            _env_file=None, database_url=database.url, data_dir=Path(tempfile.mkdtemp(prefix="docrag-bench-")),
            llm="openai", openai_base_url=self.llm.base_url, openai_api_key="sk-bench", llm_max_retries=0,
            llm_timeout_s=30, llm_max_tokens=tokens * 2, default_collection="default",
        )
        self.container = Container(settings=settings, database=database)
        self.container.ingestor.ingest([str(REPO / "docs")], collection="default")
        self.engine = self.container.engine
        self.users = iter(range(10**6))

    def key(self, platform: str) -> SessionKey:
        user = f"bench-{next(self.users)}"
        return SessionKey(platform=platform, workspace="bench", channel="c", thread=user, user=user)


def model_only(world: World) -> dict[str, float]:
    from core.answers.llm import build_answer_messages

    generator = world.engine.pipeline.generator
    started = time.perf_counter()
    first = None
    pieces = generator.stream(build_answer_messages(QUESTION, [], []))  # type: ignore[union-attr]
    for _ in pieces:
        first = first or time.perf_counter() - started
    return {"first": first or 0.0, "complete": time.perf_counter() - started, "calls": 1}


# -- REST and playground -------------------------------------------------------------------------------
def web_server(world: World) -> tuple[str, Any, Callable[[], None]]:
    from werkzeug.serving import make_server

    from adapters.web.api import ApiServices, api_blueprint
    from adapters.web.playground import playground_blueprint
    from core.ingest.jobs import IngestJobs
    from core.storage.queue import build_job_app
    from core.tenancy.apikeys import ApiKeys
    from flask import Flask

    jobs = build_job_app(world.container.database.conninfo)
    jobs.open()
    keys = ApiKeys(world.container.database.sessions)
    services = ApiServices(engine=world.engine, database=world.container.database, keys=keys,
                           ingest=IngestJobs(world.container.database.sessions, jobs), jobs=jobs)
    app = Flask("docrag-bench")
    app.register_blueprint(api_blueprint(services))
    app.register_blueprint(playground_blueprint(world.engine))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        jobs.close()

    return f"127.0.0.1:{server.server_port}", keys.create(["default"], name="bench"), stop


def rest(address: str, api_key: str) -> dict[str, float]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"question": QUESTION, "stream": True})
    started = time.perf_counter()
    conn.request("POST", "/api/v1/ask", body, {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    response = conn.getresponse()
    first, events, buffer = None, 0, b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            events += 1
            if event.startswith(b"event: delta") and first is None:
                first = time.perf_counter() - started
            if event.startswith(b"event: answer") or event.startswith(b"event: error"):
                assert event.startswith(b"event: answer"), event[:200]
                return {"first": first or 0.0, "complete": time.perf_counter() - started, "calls": events}
    raise RuntimeError("the stream ended without an answer event")


def playground(address: str) -> dict[str, float]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", "/")
    page = conn.getresponse()
    html = page.read().decode()
    cookies = "; ".join(c.split(";", 1)[0] for c in page.headers.get_all("Set-Cookie") or [])
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]  # type: ignore[index]
    form = f"question={QUESTION.replace(' ', '+')}&csrf_token={token}"
    started = time.perf_counter()
    conn.request("POST", "/ask", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies})
    response = conn.getresponse()
    first, chunks, seen = None, 0, b""
    while chunk := response.read1(65536):
        chunks += 1
        seen += chunk
        if first is None and b'class="answer draft">word' in seen:
            first = time.perf_counter() - started
    assert b"Sources" in seen, "the finished answer arrived"
    return {"first": first or 0.0, "complete": time.perf_counter() - started, "calls": chunks}


# -- Slack and Discord: the wired delivery path -------------------------------------------------------
# Each question goes the way a chat question goes: the engine accepts it with its Where, the
# lifecycle shows the placeholder through the platform's delivery port, then runs the answer job's
# body (Lifecycle.run: the live reply streams, the stop or the replace finishes). The job is run
# here directly, so the queue's pick-up delay (a notify away in a live worker) is not included.
def _lifecycle(world: World, **platform: Any) -> Any:
    from core.questions.lifecycle import Lifecycle

    settings = world.container.settings.model_copy(update=platform)
    container = Container(settings=settings, database=world.container.database)
    container.__dict__["engine"] = world.engine  # the same warmed engine (cached_property)
    return Lifecycle(world.engine, None, container.ports)  # type: ignore[arg-type]


def _ask(world: World, lifecycle: Any, platform: str, where: Any) -> tuple[float, float, int]:
    """(started, finished) perf_counter marks of one question through accept + placeholder + run,
    and the question's id."""
    started = time.perf_counter()
    question_id = world.engine.accept(world.key(platform), QUESTION, where=where)
    lifecycle._show_placeholder(question_id, where)
    lifecycle.run(question_id)
    return started, time.perf_counter(), question_id


def slack(world: World) -> dict[str, float]:
    from pydantic import SecretStr

    from core.questions.values import Where
    from tests.fakes.slack_server import FakeSlack

    with FakeSlack() as fake:
        lifecycle = _lifecycle(world, slack_bot_token=SecretStr(fake.token), slack_api_url=fake.api_url)
        thread = fake.add_message("C0BENCH", QUESTION, user="U0BENCH")
        where = Where("slack", {"team": fake.team_id, "channel": "C0BENCH", "thread_ts": thread, "user": "U0BENCH"})
        marks: dict[str, float] = {}

        def watch() -> None:  # woken by the fake as soon as it has answered chat.startStream
            fake.wait_for("chat.startStream", where=lambda c: c.ok, timeout=120)
            marks["first"] = time.perf_counter()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started, finished, question_id = _ask(world, lifecycle, "slack", where)
        watcher.join(5)
        [reply] = [m for m in fake.thread("C0BENCH", thread) if m.get("bot_id")]
        stored = world.engine.store.stored_answer(question_id)
        assert stored is not None and reply["text"] == stored.text, "the streamed message is the finished answer"
        assert _slack_answer_id(reply) == str(stored.message_id), "its feedback_buttons are tied to the answer"
        assert "first" in marks, "the answer was not streamed"
        calls = [c for c in fake.calls if c.method.startswith("chat.")]
        return {"first": marks["first"] - started, "complete": finished - started, "calls": len(calls)}


def _slack_answer_id(reply: dict[str, Any]) -> str:
    [buttons] = [b for b in reply["blocks"] if b["type"] == "context_actions"]
    return str(buttons["elements"][0]["positive_button"]["value"]).partition(":")[2]


def discord_door(world: World) -> dict[str, float]:
    from pydantic import SecretStr

    from adapters.discord.delivery import PLACEHOLDER
    from core.questions.values import Where
    from tests.fakes.discord_server import FakeDiscord

    with FakeDiscord() as fake:
        guild = fake.add_guild(name="Bench", channels=["general"])
        channel_id = fake.channel_by_name("general", guild)
        fake.limit_channel_messages(limit=5, per_s=5.0)  # Discord's own bucket for message writes
        lifecycle = _lifecycle(world, discord_token=SecretStr("bench-token"), discord_api_base_url=fake.api_base)
        where = Where("discord", {"channel": str(channel_id)})
        started_mono = time.monotonic()
        started, finished, _ = _ask(world, lifecycle, "discord", where)
        writes = [c for c in fake.calls if c.path.startswith(f"/channels/{channel_id}/messages")
                  and c.method in ("POST", "PATCH")]
        shown = [c for c in writes if c.method == "PATCH" and (c.json or {}).get("content") not in (None, PLACEHOLDER)]
        limited = [c for c in fake.calls if c.status == 429]
        assert not limited, f"{len(limited)} rate-limited calls"
        assert fake.sent_messages(channel_id)[0]["content"].startswith("word0"), "the finished answer is shown"
        return {"first": shown[0].at - started_mono, "complete": finished - started, "calls": len(writes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rate", type=float, default=40.0, help="model tokens per second")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log lines in the table
    world = World(args.tokens, args.rate)
    address, key, stop = web_server(world)
    model_only(world)  # warm up the client's connection pool and the embedder
    doors: dict[str, Callable[[], dict[str, float]]] = {
        "model alone": lambda: model_only(world),
        "REST (SSE)": lambda: rest(address, key.key),
        "playground": lambda: playground(address),
        "Slack": lambda: slack(world),
        "Discord": lambda: discord_door(world),
    }
    results: dict[str, dict[str, float]] = {}
    try:
        for name, run in doors.items():
            runs = [run() for _ in range(args.runs)]
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        stop()
        world.llm.close()
    model = results["model alone"]["complete"]
    if args.json:
        print(json.dumps({"machine": machine(), "model_s": model, **results}, indent=2))
        return
    rows = [
        [name, r["first"], int(r["calls"]), r["complete"], f"{(r['complete'] - model) / model * 100:+.1f}%"]
        for name, r in results.items()
    ]
    print(f"{args.tokens} tokens at {args.rate:g} tokens/s, median of {args.runs} run(s); {machine()}")
    print(table(["door", "first words s", "calls/answer", "complete s", "vs model"], rows))


if __name__ == "__main__":
    main()
