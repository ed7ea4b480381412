"""Slack acknowledgement latency and exactly-once answers, against the real web process.

    python bench/slack_ack.py [--questions 1000] [--rate 50] [--extra 0.10] [--web-workers 2] [--json]

Starts, all on 127.0.0.1: a private embedded PostgreSQL (documents: the repository's docs/), a
fake Slack Web API for the replies, and `docrag serve` (gunicorn, bots/gunicorn_conf.py) on the
embedded default, so its job workers run in the web processes; no LLM (extractive answers).
Then sends signed app_mention / DM events at a fixed rate (open loop: each request leaves at
its scheduled time, whatever the previous ones did), plus a share of extra deliveries: Slack
retries (same body, X-Slack-Retry-Num) and double deliveries (the mention again as a `message`
event, another event id). Measures the HTTP acknowledgement latency, then waits for the answers
and checks that every question got exactly one placeholder and exactly one answer.
Bounded: at most 20,000 questions, and every wait has a deadline.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import machine, table  # noqa: E402
from bots.wiring import Container  # noqa: E402
from core.storage import schema
from core.config import Settings  # noqa: E402
from core.storage.db import connect  # noqa: E402
from core.storage.embedded import start_embedded_postgres  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.fakes.slack_signing import event_body, signed_headers  # noqa: E402

SECRET = "bench-signing-secret"
MAX_QUESTIONS = 20_000
QUESTIONS = [
    "how do I ingest a folder?",
    "how do I rotate my API key?",
    "what does DOCRAG_DEFAULT_COLLECTION do?",
    "how do I map a Slack workspace to a collection?",
    "how do I run the worker process?",
    "how do I set the rate limits?",
    "how do I use Socket Mode?",
    "which embedder should I use?",
]


@dataclass
class Delivery:
    at: float  # seconds after the start
    body: str
    question: int  # index of the question it carries
    retry_num: int | None = None
    status: int = 0
    latency_ms: float = 0.0


@dataclass
class Plan:
    deliveries: list[Delivery] = field(default_factory=list)
    question_ts: dict[int, tuple[str, str]] = field(default_factory=dict)  # question -> (channel, ts)


def build_plan(slack: FakeSlack, questions: int, rate: float, extra: float, seed: int = 7) -> Plan:
    """Unique questions at ``rate``, plus ``extra`` x questions re-deliveries, half retries, half twins."""
    rng = random.Random(seed)
    plan = Plan()
    for i in range(questions):
        dm = i % 5 == 0
        channel = f"D{i % 7:09d}" if dm else f"C{i % 10:09d}"
        text = f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"
        ts = slack.add_message(channel, text, user=f"U{i % 50:09d}")
        if dm:
            event = {"type": "message", "channel_type": "im", "text": text}
        else:
            event = {"type": "app_mention", "text": f"<@{slack.bot_user_id}> {text}"}
        event.update(user=f"U{i % 50:09d}", ts=ts, channel=channel)
        body = event_body(event, team_id=slack.team_id, event_id=f"Ev{i:08d}", bot_user_id=slack.bot_user_id)
        plan.deliveries.append(Delivery(at=i / rate, body=body, question=i))
        plan.question_ts[i] = (channel, ts)
    for n, i in enumerate(rng.sample(range(questions), int(questions * extra))):
        original = plan.deliveries[i]
        if n % 2 == 0:  # Slack's retry: the same body, seconds later
            plan.deliveries.append(Delivery(original.at + rng.uniform(0.2, 3.0), original.body, i, retry_num=1))
        else:  # the same message as a `message` event too, a moment apart (a race by design)
            envelope = json.loads(original.body)
            twin = dict(envelope["event"], type="message", channel_type="channel")
            twin_body = event_body(twin, team_id=slack.team_id, event_id=f"EvTwin{i:08d}",
                                   bot_user_id=slack.bot_user_id)
            plan.deliveries.append(Delivery(original.at + rng.uniform(0.0, 0.05), twin_body, i))
    plan.deliveries.sort(key=lambda d: d.at)
    return plan


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(data_dir: Path) -> Container:
    url = start_embedded_postgres(data_dir, cleanup_mode="delete")
    schema.upgrade(url)
    settings = Settings(_env_file=None, database_url=url, data_dir=data_dir, llm="extractive")  # type: ignore[call-arg]
    container = Container(settings=settings, database=connect(url))
    container.ingestor.ingest([str(REPO / "docs")], collection="default", base_url="https://docs.example.com/")
    return container


def process_env(data_dir: Path, slack: FakeSlack, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCRAG_", "SLACK_", "OPENAI_", "DATABASE_URL"))}
    env.update(
        DOCRAG_DATA_DIR=str(data_dir), DOCRAG_LLM="extractive", SLACK_BOT_TOKEN=slack.token,
        SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.api_url, DOCRAG_LOG_LEVEL="WARNING",
        # Limits stay on (their cost is part of every acknowledgement) but high enough never to refuse.
        DOCRAG_RATE_USER_PER_MIN="100000", DOCRAG_RATE_CHANNEL_PER_MIN="100000",
        DOCRAG_RATE_WORKSPACE_PER_HOUR="10000000",
    )
    if database_url:  # production layout: the web process only acknowledges; a worker process answers
        env["DATABASE_URL"] = database_url
    return env


def start_worker(data_dir: Path, env: dict[str, str], nice: int) -> subprocess.Popen:
    """`python -m bots.worker --nice N`: a lower CPU priority than the web process when N > 0."""
    log = open(data_dir / "worker.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "bots.worker", "--nice", str(nice)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def start_web(data_dir: Path, env: dict[str, str], port: int, web_workers: int) -> subprocess.Popen:
    """`docrag serve` (gunicorn with bots/gunicorn_conf.py); waits until it answers /healthz."""
    code = f"from bots.cli_slack import serve; serve(['--port', '{port}', '--workers', '{web_workers}'])"
    log = open(data_dir / "web.log", "wb")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("web process exited:\n" + (data_dir / "web.log").read_text())
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                time.sleep(1.0)  # let every gunicorn worker finish booting
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("web process did not answer /healthz within 60 s")


class Sender:
    """Sends each delivery at its scheduled time over keep-alive connections (one per thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        return self.local.conn

    def send(self, delivery: Delivery, start: float) -> None:
        delay = start + delivery.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        headers = signed_headers(SECRET, delivery.body, retry_num=delivery.retry_num)
        began = time.monotonic()
        try:
            conn = self.connection()
            conn.request("POST", "/slack/events", body=delivery.body.encode(), headers=headers)
            response = conn.getresponse()
            response.read()
            delivery.status = response.status
        except OSError:
            self.local.conn = None
            delivery.status = -1
        delivery.latency_ms = (time.monotonic() - began) * 1000


def cpu_seconds(roots: list[subprocess.Popen], data_dir: Path) -> dict[str, float]:
    """CPU time used so far by the DocRag processes (with children) and by PostgreSQL's processes."""
    try:
        import psutil
    except ImportError:  # optional: only for the CPU figures
        return {}
    used = {"docrag": 0.0, "postgres": 0.0, "bench_and_fake_slack": 0.0}
    me = psutil.Process()
    times = me.cpu_times()
    used["bench_and_fake_slack"] = times.user + times.system
    postmasters = [p for p in psutil.process_iter(["name", "cmdline"])
                   if p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])]
    groups = {"docrag": [psutil.Process(r.pid) for r in roots], "postgres": postmasters}
    for group, parents in groups.items():
        for parent in parents:
            try:
                for one in [parent, *parent.children(recursive=True)]:
                    times = one.cpu_times()
                    used[group] += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    return used


def send_all(plan: Plan, port: int, threads: int = 32) -> float:
    sender = Sender(port)
    start = time.monotonic() + 0.5
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for delivery in plan.deliveries:
            pool.submit(sender.send, delivery, start)
    return time.monotonic() - start


def wait_for_answers(slack: FakeSlack, plan: Plan, timeout: float) -> None:
    """Return when every question has an answer, or at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, answers = count_replies(slack, plan)
        if all(answers.values()):
            return
        time.sleep(0.5)


def _thread_of_placeholders(slack: FakeSlack) -> dict[str, str]:
    return {c.response["ts"]: c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage", ok=True)}


def count_replies(slack: FakeSlack, plan: Plan) -> tuple[dict[int, int], dict[int, int]]:
    """Placeholders and answers per question (an answer: an update, or a post that carries buttons)."""
    by_thread = {ts: q for q, (_, ts) in plan.question_ts.items()}
    placeholders = {q: 0 for q in plan.question_ts}
    answers = {q: 0 for q in plan.question_ts}
    thread_of = _thread_of_placeholders(slack)
    for call in slack.calls_to("chat.postMessage", ok=True):
        question = by_thread.get(call.params.get("thread_ts", ""))
        if question is not None:
            has_buttons = any(b.get("type") == "actions" for b in call.params.get("blocks") or [])
            (answers if has_buttons else placeholders)[question] += 1
    for call in slack.calls_to("chat.update", ok=True):
        question = by_thread.get(thread_of.get(call.params["ts"], ""))
        if question is not None:
            answers[question] += 1
    return placeholders, answers


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries of new questions per second")
    parser.add_argument("--extra", type=float, default=0.10, help="share of extra deliveries (retries + twins)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--layout", choices=["embedded", "worker", "worker-after"], default="embedded",
                        help="embedded: job workers inside the web processes (the embedded default); "
                        "worker: DATABASE_URL set and a separate `python -m bots.worker` process; "
                        "worker-after: the same, but the worker starts only once every event is sent "
                        "(the acknowledgements alone on the cores; the queued questions are then answered)")
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="run the worker process at this nice level (layout worker), so acks win the CPU")
    parser.add_argument("--answer-timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    questions = max(1, min(args.questions, MAX_QUESTIONS))

    data_dir = Path(tempfile.mkdtemp(prefix="docrag-bench-slack-"))
    container = prepare_database(data_dir)
    load_before = os.getloadavg()[0]
    with FakeSlack() as slack:
        port = free_port()
        separate = args.layout != "embedded"
        env = process_env(data_dir, slack, container.database.url if separate else None)
        worker = start_worker(data_dir, env, args.worker_nice) if args.layout == "worker" else None
        web = start_web(data_dir, env, port, args.web_workers)
        try:
            plan = build_plan(slack, questions, args.rate, args.extra)
            processes = [p for p in (web, worker) if p is not None]
            cpu_before, wall_before = cpu_seconds(processes, data_dir), time.monotonic()
            elapsed = send_all(plan, port)
            if args.layout == "worker-after":
                worker = start_worker(data_dir, env, args.worker_nice)
                processes.append(worker)
            waited_from = time.monotonic()
            wait_for_answers(slack, plan, args.answer_timeout)
            drained_s = time.monotonic() - waited_from
            cpu_after, wall = cpu_seconds(processes, data_dir), time.monotonic() - wall_before
            used = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
            cpu = {f"cpu_ms_per_question_{k}": v / questions * 1000 for k, v in used.items()}
            if used:
                cpu["cores_busy_all_of_the_above"] = sum(used.values()) / wall
            time.sleep(2.0)  # anything late (a double post) would show up now
            placeholders, answers = count_replies(slack, plan)
        finally:
            for process in (web, worker):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=60)
    container.database.dispose()
    report(args, plan, elapsed, drained_s, (load_before, os.getloadavg()[0]), placeholders, answers, cpu)


def report(args, plan: Plan, elapsed: float, drained_s: float, load: tuple[float, float], placeholders: dict[int, int],
           answers: dict[int, int], cpu_ms: dict[str, float]) -> None:
    latencies = [d.latency_ms for d in plan.deliveries if d.status == 200]
    failures = sum(1 for d in plan.deliveries if d.status != 200)
    retries = sum(1 for d in plan.deliveries if d.retry_num)
    twins = len(plan.deliveries) - len(plan.question_ts) - retries
    once = sum(1 for q in plan.question_ts if answers[q] == 1 and placeholders[q] == 1)
    figures = {
        "machine": machine(),
        "deliveries": len(plan.deliveries),
        "questions": len(plan.question_ts),
        "retries": retries,
        "double_deliveries": twins,
        "non_200": failures,
        "ack_p50_ms": statistics.median(latencies) if latencies else 0.0,
        "ack_p90_ms": percentile(latencies, 90) if latencies else 0.0,
        "ack_p99_ms": percentile(latencies, 99) if latencies else 0.0,
        "ack_max_ms": max(latencies) if latencies else 0.0,
        "throughput_per_s": len(plan.deliveries) / elapsed,
        "answered_exactly_once": once,
        "unanswered": sum(1 for q in plan.question_ts if answers[q] == 0),
        "answered_twice_or_more": sum(1 for q in plan.question_ts if answers[q] > 1),
        "extra_placeholders": sum(1 for q in plan.question_ts if placeholders[q] > 1),
        "drain_after_last_send_s": drained_s,
        "load_avg_1min_before_after": f"{load[0]:.2f} / {load[1]:.2f}",
        **cpu_ms,  # acknowledging + answering, over the whole run
    }
    if args.json:
        print(json.dumps(figures))
        return
    workers = {
        "embedded": "job workers inside the web processes",
        "worker": f"a separate worker process (nice {args.worker_nice})",
        "worker-after": "a separate worker process started after the last event",
    }[args.layout]
    print(f"Slack ack benchmark: {figures['machine']}; {args.web_workers} gunicorn workers (gthread, 8 threads), "
          f"{workers}, extractive answers, {args.rate:g} new questions/s")
    print(table(["measure", "value"], [[k, v] for k, v in figures.items() if k != "machine"]))
    ok = once == len(plan.question_ts) and failures == 0
    print("\nPASS: every question answered exactly once" if ok else "\nFAIL: see the table")


if __name__ == "__main__":
    main()
