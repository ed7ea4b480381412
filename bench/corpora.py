"""Robustness on real documentation: ingest each cached third-party corpus and report what happened.

    python bench/corpora.py [NAME ...] [--json]

Each corpus (bench/corpus_cache.py: Sphinx rST, MyST and MkDocs Markdown, built HTML, PDF
manuals) goes into its own collection of one fresh embedded database, with the default hashing
embedder. The bar: no crash, and every failed document explained by its reason.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import fresh_database, machine, table  # noqa: E402
from bench.corpus_cache import CORPORA, CorpusUnavailable, ensure_corpus, include_root  # noqa: E402
from core.search.embeddings import build_embedder  # noqa: E402
from core.storage.timeouts import Work  # noqa: E402
from core.ingest.pipeline import ChunkingOptions, Ingestor  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"corpora (default: all): {', '.join(CORPORA)}")
    parser.add_argument("--json", action="store_true", help="one JSON object per corpus instead of the table")
    args = parser.parse_args()
    names = args.names or list(CORPORA)

    database = fresh_database()
    ingestor = Ingestor(sessions=database.sessions_for(Work.INGESTION), embedder=build_embedder("hashing"), chunking=ChunkingOptions())
    rows, failures, skipped, crashes = [], [], [], 0
    for name in names:
        try:
            folder = ensure_corpus(name)
        except CorpusUnavailable as exc:
            rows.append([name, CORPORA[name].markup, "unavailable", "", "", "", "", ""])
            failures.append((name, "", str(exc)))
            continue
        started = time.perf_counter()
        try:
            wider = include_root(name)
            report = ingestor.ingest([str(folder)], collection=f"corpus-{name}", include_root=str(wider) if wider else None)
        except Exception as exc:  # exactly what this bench exists to catch
            crashes += 1
            rows.append([name, CORPORA[name].markup, "CRASH", "", "", "", "", f"{time.perf_counter() - started:.1f}"])
            failures.append((name, "(the whole run)", f"{type(exc).__name__}: {exc}"))
            continue
        documents = report.added + report.updated + report.unchanged
        rows.append([name, CORPORA[name].markup, "ok", documents, report.chunks, len(report.skipped),
                     len(report.failed), f"{report.seconds:.1f}"])
        failures += [(name, _relative(f.source, folder), f.reason) for f in report.failed]
        skipped += [(name, _relative(f.source, folder), f.reason) for f in report.skipped]
        if args.json:
            print(json.dumps({"corpus": name, **report.as_dict()}))
    if not args.json:
        print(f"Real-corpus ingestion on {machine()}, hashing embedder, one fresh embedded database\n")
        print(table(["corpus", "markup", "run", "documents", "chunks", "skipped", "failed", "seconds"], rows))
        print()
        for name, source, reason in failures:
            print(f"failed  {name}  {source}: {reason}")
        for (name, reason), sources in _grouped(skipped).items():
            print(f"skipped {name}  {len(sources)} x {reason}: {', '.join(sources[:4])}{' ...' if len(sources) > 4 else ''}")
        print(f"\n{crashes} crashed runs, {len(failures)} failures listed with their reasons")
    return 1 if crashes else 0


def _grouped(rows: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, source, reason in rows:
        grouped.setdefault((name, reason), []).append(source)
    return grouped


def _relative(source: str, folder: Path) -> str:
    try:
        return str(Path(source).relative_to(folder))
    except ValueError:
        return source


if __name__ == "__main__":
    raise SystemExit(main())
