"""Start-up time of the real `docrag` console command, as a whole process.

    python bench/startup.py [--runs 15] [--query "how do I ingest a folder"]

Runs the `docrag` console script installed next to this Python (the editable install), with this
checkout first on ``PYTHONPATH`` so its code is the one measured, in a temporary folder (no
``.env``, no ``DATABASE_URL``: the embedded database in a temporary data folder). It first
prepares that database (``docrag db upgrade``, ``docrag ingest docs/``: DocRag's own docs), then
times each command ``--runs`` times and prints median and p90 wall-clock seconds, and the median
CPU time of the command's process (steadier than wall-clock time on a shared machine):

* ``docrag --help``
* ``docrag search QUERY``, server cold: no other process holds the embedded server, so each run
  starts it and stops it on exit (a lone terminal user);
* ``docrag search QUERY``, server running: another process keeps it up (as ``docrag serve`` or a
  ``docrag chat`` in another terminal does); the command reuses it.

Targets (issue 10): ``--help`` under 0.3 s, ``search`` under 1 s on a ready embedded database.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine, table  # noqa: E402

HOLD_SERVER = """
import sys, time
from pathlib import Path
from core.storage.embedded import start_embedded_postgres
start_embedded_postgres(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()  # until the bench closes our stdin
"""


def console_script() -> Path:
    script = Path(sys.executable).parent / "docrag"
    if not script.exists():
        sys.exit(f"no docrag console script next to {sys.executable}: install the project first")
    return script


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith(("DOCRAG_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["DOCRAG_DATA_DIR"] = str(data_dir)
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of the command's own process: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@contextmanager
def server_held(data_dir: Path, env: dict[str, str], cwd: Path) -> Iterator[None]:
    """Another process keeping the embedded server up while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SERVER, str(data_dir)], env=env, cwd=cwd, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )
    try:
        if holder.stdout is None or holder.stdout.readline().strip() != "ready":
            sys.exit("the process holding the embedded server did not start")
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def summary(label: str, runs: list[tuple[float, float]]) -> list[object]:
    ordered = sorted(wall for wall, _ in runs)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return [label, len(runs), statistics.median(ordered), p90, ordered[0], statistics.median(cpu for _, cpu in runs)]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--query", default="how do I ingest a folder")
    args = parser.parse_args()

    docrag = str(console_script())
    work = Path(tempfile.mkdtemp(prefix="docrag-startup-"))
    data_dir = work / "data"
    env = environment(data_dir)
    try:
        run([docrag, "db", "upgrade"], env, work)
        run([docrag, "ingest", str(ROOT / "docs"), "--collection", "bench"], env, work)
        search = [docrag, "search", args.query, "--collection", "bench"]
        rows = [summary("docrag --help", [run([docrag, "--help"], env, work) for _ in range(args.runs)])]
        rows.append(summary(f"docrag search {args.query!r} (server cold)", [run(search, env, work) for _ in range(args.runs)]))
        with server_held(data_dir, env, work):
            rows.append(summary(f"docrag search {args.query!r} (server running)", [run(search, env, work) for _ in range(args.runs)]))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {cpu_model()}, {machine()}; load average {load}")
    print(f"command: {docrag} (code from {ROOT}), embedded database in a temporary folder, docs/ ingested")
    print(table(["command", "runs", "median s", "p90 s", "min s", "median CPU s"], rows))
    print("CPU s: user + system time of the docrag process itself (not the database server's), which")
    print("depends less than wall-clock time on what else the machine runs.")


if __name__ == "__main__":
    main()
