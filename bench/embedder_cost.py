"""What an embedder costs: start-up, memory, chunks embedded per second, one query's embedding.

    python bench/embedder_cost.py [--kinds hashing,sentence-transformers] [--chunks 256]

Each kind is measured in a process of its own (so imports and memory are its own): the time to
import and build it (what every DocRag process pays at start-up), the process's peak resident
memory after building it and after embedding, then ``--chunks`` chunk-sized passages of
shared/eval/anthropic_docs embedded in batches of 64, and the median of 20 single-query embeddings.
The load average is printed with the table: on a shared machine it explains slow figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine, table  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "anthropic_docs" / "corpus.jsonl"
CHUNK_CHARS = 800  # about the 160 tokens of a default chunk


def passages(count: int) -> list[str]:
    out: list[str] = []
    with open(CORPUS, encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line)["text"]
            out += [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
            if len(out) >= count:
                break
    return out[:count]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, count: int) -> dict:
    texts = passages(count)
    base_mb = peak_mb()
    started = time.perf_counter()
    from core.search.embeddings import build_embedder

    embedder = build_embedder(kind)
    start_s = time.perf_counter() - started
    built_mb = peak_mb()
    started = time.perf_counter()
    for i in range(0, len(texts), 64):
        embedder.embed_documents(texts[i : i + 64])
    embed_s = time.perf_counter() - started
    query_ms = []
    for i in range(20):
        started = time.perf_counter()
        embedder.embed_query(f"how do I stream responses with tool use {i}")
        query_ms.append((time.perf_counter() - started) * 1000)
    return {"kind": kind, "name": embedder.name, "start_s": start_s, "base_mb": base_mb, "built_mb": built_mb,
            "peak_mb": peak_mb(), "chunks_per_s": len(texts) / embed_s, "query_ms": statistics.median(query_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="hashing,sentence-transformers")
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure this kind, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.chunks)))
        return
    rows = []
    for kind in args.kinds.split(","):
        child = subprocess.run([sys.executable, __file__, "--one", kind, "--chunks", str(args.chunks)],
                               capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append([r["name"], r["start_s"], f"{r['built_mb'] - r['base_mb']:.0f}", f"{r['peak_mb']:.0f}",
                     f"{r['chunks_per_s']:.1f}", f"{r['query_ms']:.1f}"])
    print(f"{args.chunks} passages of {CHUNK_CHARS} characters; {machine()}; load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(table(["embedder", "start-up s", "memory for it MB", "peak RSS MB", "chunks/s", "query ms"], rows))


if __name__ == "__main__":
    main()
