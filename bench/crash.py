"""Crash recovery: SIGKILL the web process, a worker and the Discord gateway mid-answer.

    python bench/crash.py [--kills 20] [--answer-s 3] [--scenarios web,worker,discord,api] [--json]

Starts, all on 127.0.0.1: a private embedded PostgreSQL (documents: the repository's docs/), fake
Slack, Discord and OpenAI servers (tests/fakes; the LLM takes --answer-s seconds per answer), and
the DocRag process under test (bench/_crash_child.py). Each trial asks one question, SIGKILLs the
process at a random moment, restarts it at once, and waits (at most 120 s) for the outcome:

- web: a signed Slack mention to the web process (job workers inside it), killed at a random
  point from 0 s (before the ack) to the end of the answer; a request the kill cut off is sent
  again as Slack does (X-Slack-Retry-Num).
- worker: the web process acknowledges and accepts; a `bots.worker` process answers and is
  killed at a random point from the placeholder's appearance to the end of the answer.
- api: `POST /api/v1/ask` with an Idempotency-Key to the web process (job workers inside it),
  killed at a random point from 0 s to the end of the answer; the client then retries with the
  same key and, while told 202, fetches `GET /api/v1/questions/<id>` (the seconds are until the
  client holds the answer). Exactly once: one stored question and one stored answer.
- discord: a mention to the gateway (job workers inside it), killed at a random point after the
  question was accepted (its placeholder shown) and before the answer; Discord does not redeliver
  a message the gateway never handled, so a kill before that loses the message on any bot.

Per scenario it prints: the share answered exactly once (one bot message in the thread, the
answer), stuck placeholders, second messages, and seconds from the restart to the answer.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import machine, table  # noqa: E402
from bots.wiring import Container  # noqa: E402
from core.storage import schema
from core.config import Settings  # noqa: E402
from core.storage.db import connect  # noqa: E402
from core.storage.embedded import start_embedded_postgres  # noqa: E402
from tests.fakes.discord_server import FakeDiscord  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.fakes.slack_signing import event_body, signed_headers  # noqa: E402

SECRET = "bench-signing-secret"
WAIT_S = 120
QUESTION = "how do I map a Slack workspace to a collection"
SLACK_PLACEHOLDER = "Searching the docs"
DISCORD_PLACEHOLDER = "🔎 Searching the docs"


@dataclass
class Trial:
    kill_after_s: float
    outcome: str = "unanswered"  # once | stuck | second | unanswered
    restart_to_answer_s: float | None = None


@dataclass
class Scenario:
    name: str
    trials: list[Trial] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(data_dir: Path) -> str:
    url = start_embedded_postgres(data_dir, cleanup_mode="delete")
    schema.upgrade(url)
    settings = Settings(_env_file=None, database_url=url, data_dir=data_dir, llm="extractive")  # type: ignore[call-arg]
    container = Container(settings=settings, database=connect(url))
    container.ingestor.ingest([str(REPO / "docs")], collection="default", base_url="https://docs.example.com/")
    container.database.dispose()
    return url


def process_env(url: str, data_dir: Path, slack: FakeSlack, discord: FakeDiscord, llm: FakeOpenAI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCRAG_", "SLACK_", "OPENAI_", "DISCORD_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=url, DOCRAG_DATA_DIR=str(data_dir), DOCRAG_LOG_LEVEL="WARNING",
        DOCRAG_LLM="openai", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-bench", DOCRAG_LLM_MAX_RETRIES="0",
        SLACK_BOT_TOKEN=slack.token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.api_url,
        DISCORD_TOKEN="bench-token", DISCORD_API_BASE_URL=discord.api_base, DISCORD_GATEWAY_URL=discord.gateway_url,
        DOCRAG_RATE_USER_PER_MIN="100000", DOCRAG_RATE_CHANNEL_PER_MIN="100000",
        DOCRAG_RATE_WORKSPACE_PER_HOUR="10000000",
    )
    return env


class Child:
    """One DocRag process: started, SIGKILLed, started again."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.args, self.env, self.log, self.port = args, env, log, port
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "_crash_child.py"), *self.args],
                                         cwd=REPO, env=self.env, stdout=out, stderr=out)
        return time.monotonic()

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.args} did not start; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def send_slack(port: int, body: str, retry_num: int | None = None) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/slack/events", body=body.encode(), headers=signed_headers(SECRET, body, retry_num=retry_num))
        return conn.getresponse().status == 200
    except OSError:
        return False


def slack_outcome(slack: FakeSlack, channel: str, ts: str) -> str | None:
    replies = [m for m in slack.thread(channel, ts) if m.get("bot_id") and m.get("ts") != ts]
    return judge([("actions" in json.dumps(m.get("blocks") or []), SLACK_PLACEHOLDER in (m.get("text") or ""))
                  for m in replies])


def discord_outcome(discord: FakeDiscord, thread: int) -> str | None:
    messages = discord.sent_messages(thread)
    return judge([(bool(m.get("components")), m["content"].startswith(DISCORD_PLACEHOLDER)) for m in messages])


def judge(messages: list[tuple[bool, bool]]) -> str | None:
    """(is an answer, is a placeholder) per bot message -> the outcome once settled, else None."""
    answers = sum(1 for answer, _ in messages if answer)
    if answers and len(messages) == 1:
        return "once"
    if answers and len(messages) > 1:
        return "second"
    return None


def wait_outcome(check, restarted: float) -> tuple[str, float | None]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        outcome = check()
        if outcome is not None:
            return outcome, time.monotonic() - restarted
        time.sleep(0.1)
    return "unanswered", None


def run_web(trials: int, answer_s: float, rng: random.Random, ctx: dict) -> Scenario:
    slack, env, tmp = ctx["slack"], ctx["env"], ctx["tmp"]
    port = free_port()
    web = Child(["web", str(port)], env, tmp / "web.log", port)
    web.start()
    web.wait_http()
    scenario = Scenario("web (Slack, workers inside)")
    for i in range(trials):
        channel, text = f"C{i:09d}", f"{QUESTION} (web #{i})?"
        ts = slack.add_message(channel, text, user="U000000001")
        event = {"type": "app_mention", "text": f"<@{slack.bot_user_id}> {text}", "user": "U000000001",
                 "ts": ts, "channel": channel}
        body = event_body(event, team_id=slack.team_id, event_id=f"EvW{i:06d}", bot_user_id=slack.bot_user_id)
        kill_after = rng.uniform(0, answer_s + 1.0)
        trial = Trial(round(kill_after, 2))
        acked = send_slack(port, body) if kill_after > 0.05 else False
        time.sleep(max(0.0, kill_after))
        web.kill()
        restarted = web.start()
        web.wait_http()
        if not acked:  # Slack retries an event that was not acknowledged
            send_slack(port, body, retry_num=1)
        trial.outcome, trial.restart_to_answer_s = wait_outcome(lambda: slack_outcome(slack, channel, ts), restarted)
        scenario.trials.append(trial)
        print(f"  web #{i}: kill after {kill_after:.2f}s -> {trial.outcome} {trial.restart_to_answer_s}", flush=True)
    web.stop()
    return scenario


def run_worker(trials: int, answer_s: float, rng: random.Random, ctx: dict) -> Scenario:
    slack, llm, env, tmp = ctx["slack"], ctx["llm"], ctx["env"], ctx["tmp"]
    port = free_port()
    web = Child(["web-only", str(port)], env, tmp / "web-only.log", port)
    worker = Child(["worker"], env, tmp / "worker.log")
    web.start()
    worker.start()
    web.wait_http()
    scenario = Scenario("worker (Slack, separate worker)")
    for i in range(trials):
        channel, text = f"K{i:09d}", f"{QUESTION} (worker #{i})?"
        ts = slack.add_message(channel, text, user="U000000001")
        event = {"type": "app_mention", "text": f"<@{slack.bot_user_id}> {text}", "user": "U000000001",
                 "ts": ts, "channel": channel}
        send_slack(port, event_body(event, team_id=slack.team_id, event_id=f"EvK{i:06d}", bot_user_id=slack.bot_user_id))
        wait_for(lambda: any(m.get("bot_id") for m in slack.thread(channel, ts)), 60)  # accepted: placeholder shown
        kill_after = rng.uniform(0, answer_s + 0.5)  # the worker takes the job at once, then answers
        trial = Trial(round(kill_after, 2))
        time.sleep(kill_after)
        worker.kill()
        restarted = worker.start()
        trial.outcome, trial.restart_to_answer_s = wait_outcome(lambda: slack_outcome(slack, channel, ts), restarted)
        scenario.trials.append(trial)
        print(f"  worker #{i}: kill after {kill_after:.2f}s -> {trial.outcome} {trial.restart_to_answer_s}", flush=True)
    worker.stop()
    web.stop()
    return scenario


def api_call(port: int, method: str, path: str, key: str, body: dict | None = None,
             idempotency: str | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency:
        headers["Idempotency-Key"] = idempotency
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def api_answer(port: int, key: str, text: str, idempotency: str) -> dict | None:
    """What a demanding client does after losing its reply: retry with the same key; while the
    retry says 202, fetch the question until it is answered."""
    status, body = api_call(port, "POST", "/api/v1/ask", key, {"question": text}, idempotency)
    if status == 200:
        return body
    if status != 202:
        return None
    question_id = body["question"]["id"]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        _, found = api_call(port, "GET", f"/api/v1/questions/{question_id}", key)
        if found["question"]["state"] != "answering":
            return found["question"]["answer"]
        time.sleep(0.2)
    return None


def run_api(trials: int, answer_s: float, rng: random.Random, ctx: dict) -> Scenario:
    import threading

    import sqlalchemy as sa

    from core.tenancy.apikeys import ApiKeys

    env, tmp, url = ctx["env"], ctx["tmp"], ctx["env"]["DATABASE_URL"]
    database = connect(url)
    key = ApiKeys(database.sessions).create(["default"], name="bench").key
    port = free_port()
    web = Child(["web", str(port)], env, tmp / "api.log", port)
    web.start()
    web.wait_http()
    scenario = Scenario("api (REST, workers inside)")
    for i in range(trials):
        text, idempotency = f"{QUESTION} (api #{i})?", f"bench-{i}"
        first = threading.Thread(target=lambda: _lost(port, key, text, idempotency), daemon=True)
        kill_after = rng.uniform(0, answer_s + 1.0)
        trial = Trial(round(kill_after, 2))
        first.start()
        time.sleep(kill_after)
        web.kill()
        restarted = web.start()
        web.wait_http()
        answer = api_answer(port, key, text, idempotency)
        trial.restart_to_answer_s = time.monotonic() - restarted if answer else None
        with database.engine.connect() as conn:
            asked, answered = conn.execute(sa.text(
                "SELECT count(*), count(r.id) FROM messages q LEFT JOIN messages r ON r.reply_to_id = q.id "
                "AND r.role = 'assistant' WHERE q.role = 'user' AND q.text = :t"), {"t": text}).one()
        trial.outcome = "unanswered" if not answer else "once" if (asked, answered) == (1, 1) else "second"
        scenario.trials.append(trial)
        print(f"  api #{i}: kill after {kill_after:.2f}s -> {trial.outcome} {trial.restart_to_answer_s}", flush=True)
    web.stop()
    database.dispose()
    return scenario


def _lost(port: int, key: str, text: str, idempotency: str) -> None:
    try:
        api_call(port, "POST", "/api/v1/ask", key, {"question": text}, idempotency)
    except OSError:
        pass  # the process died under it


def run_discord(trials: int, answer_s: float, rng: random.Random, ctx: dict) -> Scenario:
    discord, env, tmp = ctx["discord"], ctx["env"], ctx["tmp"]
    discord.add_guild(name="Docs", channels=["general"])
    general = discord.channel_by_name("general")
    gateway = Child(["discord"], env, tmp / "discord.log")
    gateway.start()
    scenario = Scenario("discord (gateway, workers inside)")
    for i in range(trials):
        discord.wait_connected(timeout=60, connections=i + 1)
        time.sleep(0.5)  # the dead session's socket is gone: events reach the new one only
        before = len(discord.calls)
        question = discord.send_message(general, f"{discord.bot_mention} {QUESTION} (discord #{i})?")
        wait_for(lambda: any(c.method == "POST" and c.path == f"/channels/{question}/messages"
                             for c in discord.calls[before:]), 60)  # accepted: placeholder shown
        kill_after = rng.uniform(0, answer_s)
        trial = Trial(round(kill_after, 2))
        time.sleep(kill_after)
        gateway.kill()
        restarted = gateway.start()
        trial.outcome, trial.restart_to_answer_s = wait_outcome(lambda: discord_outcome(discord, question), restarted)
        scenario.trials.append(trial)
        print(f"  discord #{i}: kill after {kill_after:.2f}s -> {trial.outcome} {trial.restart_to_answer_s}", flush=True)
    gateway.stop()
    return scenario


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout}s")
        time.sleep(0.05)


def summarise(scenario: Scenario, slack: FakeSlack | None = None) -> list[object]:
    n = len(scenario.trials)
    once = sum(1 for t in scenario.trials if t.outcome == "once")
    second = sum(1 for t in scenario.trials if t.outcome == "second")
    unanswered = sum(1 for t in scenario.trials if t.outcome == "unanswered")
    times = sorted(t.restart_to_answer_s for t in scenario.trials if t.restart_to_answer_s is not None)
    p50 = statistics.median(times) if times else float("nan")
    return [scenario.name, n, f"{100 * once / n:.0f}%", unanswered, second, round(p50, 1),
            round(max(times), 1) if times else float("nan")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per scenario")
    parser.add_argument("--answer-s", type=float, default=3.0, help="seconds the fake LLM takes per answer")
    parser.add_argument("--scenarios", default="web,worker,discord")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    runners = {"web": run_web, "worker": run_worker, "discord": run_discord, "api": run_api}
    with tempfile.TemporaryDirectory(prefix="docrag-crash-") as tmp_name, FakeSlack() as slack, \
            FakeDiscord() as discord, FakeOpenAI(require_auth=False) as llm:
        tmp = Path(tmp_name)
        llm.chat_responder = lambda _body: (time.sleep(args.answer_s), "Map it with `docrag workspace map` [1].")[1]
        url = prepare_database(tmp / "data")
        ctx = {"slack": slack, "discord": discord, "llm": llm, "tmp": tmp,
               "env": process_env(url, tmp / "data", slack, discord, llm)}
        scenarios = []
        for name in args.scenarios.split(","):
            print(f"{name}: {args.kills} kills", flush=True)
            scenarios.append(runners[name](args.kills, args.answer_s, rng, ctx))
    rows = [summarise(s) for s in scenarios]
    headers = ["scenario", "kills", "answered exactly once", "stuck placeholders / unanswered", "second messages",
               "restart->answer p50 s", "max s"]
    if args.json:
        print(json.dumps({"machine": machine(), "scenarios": [asdict(s) for s in scenarios]}, indent=2))
    print(f"\nmachine: {machine()}; LLM answer time {args.answer_s}s; command: python bench/crash.py "
          f"--kills {args.kills} --answer-s {args.answer_s}")
    print(table(headers, rows))


if __name__ == "__main__":
    main()
