"""Streamed answers: first visible words, platform calls and completion time, per door.

    python bench/stream.py [--tokens 300] [--rate 40] [--runs 1] [--json]

Everything on 127.0.0.1: a private embedded PostgreSQL (documents: the repository's docs/), a fake
OpenAI server that writes a ``--tokens``-token answer at ``--rate`` tokens a second (one token =
one streamed piece), the fake Slack and the fake Discord. For each door the bench asks a question
and measures, from the moment the question is asked (so retrieval is included):

- first words: until the first words are visible (REST: the first ``delta`` event read by the
  client; playground: the first chunk with draft text; Slack: chat.startStream returned; Discord:
  the first message sent);
- calls: platform calls for the answer (events or chunks written on the web; Slack/Discord API calls);
- complete: until the finished answer is in place; overhead: complete vs the model's own time
  (``OpenAIChat.stream`` read directly from the same fake, no retrieval, no door).

Goals (issue 12): first words under 1.5 s; overhead under 5 %.
"""
from __future__ import annotations

import argparse
import asyncio
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

    generator = world.engine.generator
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


# -- Slack and Discord ---------------------------------------------------------------------------------
def slack(world: World) -> dict[str, float]:
    from adapters.slack.clients import build_web_client
    from adapters.slack.streaming import SlackStreamer, StreamTarget
    from tests.fakes.slack_server import FakeSlack

    with FakeSlack() as fake:
        client = build_web_client(fake.api_url, fake.token)
        marks: dict[str, float] = {}
        start_stream = client.chat_startStream

        def timed_start(**kwargs: Any) -> Any:
            response = start_stream(**kwargs)
            marks.setdefault("first", time.perf_counter())
            return response

        client.chat_startStream = timed_start  # type: ignore[method-assign]
        thread = fake.add_message("C0BENCH", QUESTION, user="U0BENCH")
        started = time.perf_counter()
        question_id = world.engine.accept(world.key("slack"), QUESTION)
        streamer = SlackStreamer(client, StreamTarget("C0BENCH", thread, user_id="U0BENCH", team_id=fake.team_id))
        answer = streamer.deliver(world.engine.answer_stream(question_id))
        complete = time.perf_counter() - started
        [reply] = [m for m in fake.thread("C0BENCH", thread) if m.get("bot_id")]
        assert reply["text"] == answer.text, "the streamed message is the finished answer"
        return {"first": marks["first"] - started, "complete": complete, "calls": streamer.calls}


def discord_door(world: World) -> dict[str, float]:
    import discord

    from adapters.discord.streaming import DiscordStreamer
    from tests.fakes.discord_server import FakeDiscord

    with FakeDiscord() as fake, fake.patch_discord():
        guild = fake.add_guild(name="Bench", channels=["general"])
        channel_id = fake.channel_by_name("general", guild)
        fake.limit_channel_messages(limit=5, per_s=5.0)  # Discord's own bucket for message writes

        async def main() -> dict[str, float]:
            client = discord.Client(intents=discord.Intents.none())
            await client.login("bench-token")
            try:
                channel = await client.fetch_channel(channel_id)
                marks: dict[str, float] = {}

                async def timed_send(**kwargs: Any) -> discord.Message:
                    message = await channel.send(**kwargs)
                    marks.setdefault("first", time.perf_counter())
                    return message

                loop = asyncio.get_running_loop()

                async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
                    return await loop.run_in_executor(None, fn, *args)

                started = time.perf_counter()
                question_id = await run_blocking(world.engine.accept, world.key("discord"), QUESTION)
                streamer = DiscordStreamer(timed_send)
                outcome = await streamer.deliver(world.engine.answer_stream(question_id), run_blocking)
                complete = time.perf_counter() - started
                assert not isinstance(outcome, str), f"the answer failed: {outcome}"
                assert fake.sent_messages(channel_id)[0]["content"].startswith("word0"), "the finished answer is shown"
                limited = [c for c in fake.calls if c.status == 429]
                assert not limited, f"{len(limited)} rate-limited calls"
                return {"first": marks["first"] - started, "complete": complete, "calls": streamer.calls}
            finally:
                await client.close()

        return asyncio.run(main())


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
