"""Source re-syncs (issue 13): what an unchanged source costs, and that a change costs only itself.

    python bench/sync.py [--files 2000] [--pages 500] [--runs 5]

On a private embedded PostgreSQL (or DATABASE_URL), with the hashing embedder:

1. **Unchanged repository.** A git repository of ``--files`` Markdown files (a local bare
   repository, fetched as a remote would be) is added and synced once; then
   ``python -m bots.cli source sync ID`` runs ``--runs`` times as a whole process, with no new
   commit. Goal: under 1 s.
2. **Changed repository.** A commit touching 10 files; the sync, in this process with a counting
   embedder, must read exactly 10 files and re-embed exactly their chunks.
3. **Unchanged sitemap.** A ``--pages``-page sitemap on a loopback server (tests/fakes/site_server.py,
   ETag and Last-Modified on every response) is synced, then synced again: every request of the
   re-sync must be conditional (answered 304), and nothing re-embedded.
4. **Worker crash.** A worker process (``python -m bots.worker``) runs a queued first sync of a new
   copy of the repository and is killed (SIGKILL) once part of it is stored; the next sync
   (``source sync``) must end with every file stored exactly once.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench._common import fresh_database, machine, table  # noqa: E402
from tests.builders import CountingEmbedder  # noqa: E402

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.com"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def page(n: int, revision: int = 0) -> str:
    return (f"# Topic {n}\n\n## Overview\n\nTopic {n} covers part {n % 97} of the handbook, revision {revision}. "
            + "It explains configuration, deployment and troubleshooting in plain words. " * 6
            + f"\n\n## Details\n\nStep {n}: run the command, check the output, repeat for section {n % 13}.\n")


def make_repo(root: Path, files: int) -> tuple[Path, Path]:
    work, bare = root / "work", root / "handbook.git"
    root.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", str(work), cwd=root)
    for n in range(files):
        folder = work / "docs" / f"part-{n // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"topic-{n:04d}.md").write_text(page(n))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "handbook", cwd=work)
    git("init", "--bare", "-q", "-b", "main", str(bare), cwd=root)
    git("push", "-q", str(bare), "main", cwd=work)
    return work, bare


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last command's process


def cli(env: dict[str, str], *args: str) -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bots.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"`docrag {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def container_for(url: str, data_dir: Path):
    from bots.wiring import Container
    from core.config import Settings
    from core.storage.db import connect

    settings = Settings(_env_file=None, database_url=url, data_dir=data_dir, sync_politeness_s=0)  # type: ignore[call-arg]
    container = Container(settings=settings, database=connect(url))
    container.embedder = CountingEmbedder(container.embedder)  # type: ignore[misc]
    return container


def source_documents(container, source_id: int) -> tuple[int, int]:
    with container.database.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT source_uri) FROM documents WHERE source_id = :s"), {"s": source_id}).one()
    return row[0], row[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    database = fresh_database()
    url = database.url
    tmp = Path(tempfile.mkdtemp(prefix="docrag-sync-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    env = {**os.environ, "DATABASE_URL": url, "DOCRAG_DATA_DIR": str(tmp / "data"), "DOCRAG_LLM": "extractive",
           "PYTHONPATH": str(ROOT)}
    rows: list[list[object]] = []

    # 1. unchanged repository, as a whole process
    work, bare = make_repo(tmp / "repo", args.files)
    seconds, out = cli(env, "source", "add", "git", str(bare), "--branch", "main", "--collection", "handbook", "--json")
    added = json.loads(out)
    source_id = added["source"]["id"]
    rows.append([f"first sync, {args.files} files (CLI process)", f"{seconds:.2f} s",
                 f"{added['sync']['counts']['added']} added", "-"])
    timings, cpu, inside = [], [], []
    for _ in range(args.runs):
        seconds, out = cli(env, "source", "sync", str(source_id), "--json")
        synced = json.loads(out)
        assert synced["counts"]["read"] == 0, out
        timings.append(seconds)
        cpu.append(LAST_CPU[0])
        inside.append(synced["seconds"])
    floor, floor_cpu = [], []
    for _ in range(args.runs):  # the same process start-up, database connection and schema check, no sync
        seconds, _ = cli(env, "search", "topic 7", "--collection", "handbook")
        floor.append(seconds)
        floor_cpu.append(LAST_CPU[0])
    median = statistics.median(timings)
    rows.append([f"unchanged re-sync (whole process, median of {args.runs})", f"{median:.3f} s",
                 f"CPU {statistics.median(cpu):.2f} s; the sync itself {statistics.median(inside):.3f} s; 0 read",
                 "PASS" if median < 1 else "FAIL (goal < 1 s)"])
    rows.append([f"reference: `docrag search` (whole process, median of {args.runs})", f"{statistics.median(floor):.3f} s",
                 f"CPU {statistics.median(floor_cpu):.2f} s: the start-up every command pays", "-"])

    # 2. a commit touching 10 files: exactly those re-read and re-embedded
    container = container_for(url, tmp / "data")
    touched = [work / "docs" / f"part-{n // 100:02d}" / f"topic-{n:04d}.md" for n in range(0, args.files, args.files // 10)][:10]
    for n, path in enumerate(touched):
        path.write_text(page(n * (args.files // 10), revision=1))
    git("commit", "-q", "-am", "touch 10 files", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    before = container.embedder.texts
    result = container.syncer.sync(source_id)
    counts = result.counts
    embedded_texts = container.embedder.texts - before
    ok = counts["read"] == 10 and counts["updated"] == 10 and embedded_texts == counts["chunks"]
    rows.append(["commit touching 10 files", f"{result.seconds:.2f} s",
                 f"{counts['read']} read, {counts['updated']} re-embedded ({embedded_texts} chunks)",
                 "PASS" if ok else "FAIL"])

    # 3. unchanged sitemap on loopback
    from tests.fakes.site_server import FakeSite

    with FakeSite() as site:
        for n in range(args.pages):
            site.pages[f"/docs/page-{n:03d}.html"] = f"<html><body><h1>Page {n}</h1><p>{page(n)}</p></body></html>"
        site.robots = "User-agent: *\nAllow: /\n"
        from core.sources.registry import SourceSpec

        sitemap = container.sources.add(SourceSpec(kind="url", target=site.publish_sitemap(), collection="site"))
        first = container.syncer.sync(sitemap.id)
        site.reset_requests()
        before = container.embedder.texts
        again = container.syncer.sync(sitemap.id)
        requests = list(site.requests)
    conditional = sum(r.conditional for r in requests)
    not_modified = sum(r.status == 304 for r in requests)
    ok = conditional == len(requests) == not_modified and container.embedder.texts == before
    rows.append([f"sitemap of {args.pages} pages: first sync", f"{first.seconds:.2f} s", f"{first.counts['added']} added", "-"])
    rows.append([f"unchanged sitemap re-sync", f"{again.seconds:.2f} s",
                 f"{len(requests)} requests, {conditional} conditional, {not_modified} answered 304, "
                 f"{container.embedder.texts - before} re-embedded", "PASS" if ok else "FAIL"])

    # 4. kill a worker mid-sync; the next sync finishes with no duplicates and no losses
    copy = container.sources.add(SourceSpec(kind="git", target=str(bare), collection="crash", options={"branch": "main"}))
    from bots.worker import open_job_queue
    from core.sources.jobs import defer_sync

    worker = subprocess.Popen([sys.executable, "-m", "bots.worker", "--concurrency", "1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jobs = open_job_queue(container)
    defer_sync(jobs, copy.id)
    jobs.close()
    deadline, stored_at_kill = time.monotonic() + 300, 0
    while time.monotonic() < deadline:
        stored_at_kill = source_documents(container, copy.id)[0]
        if stored_at_kill >= args.files // 4:
            break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    stored_after_kill = source_documents(container, copy.id)[0]
    seconds, out = cli(env, "source", "sync", str(copy.id), "--json")
    finished = json.loads(out)
    total, distinct = source_documents(container, copy.id)
    ok = finished["status"] == "ok" and total == distinct == args.files
    rows.append(["worker killed mid-sync, then `source sync`", f"{seconds:.2f} s",
                 f"{stored_after_kill} stored at the kill; after: {total} documents, {distinct} distinct "
                 f"({finished['counts']['added']} added, {finished['counts']['unchanged']} unchanged)",
                 "PASS" if ok else "FAIL"])

    print(f"bench/sync.py on {machine()}; database {'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded'}")
    print(table(["case", "time", "what happened", "verdict"], rows))
    container.database.dispose()


if __name__ == "__main__":
    main()
