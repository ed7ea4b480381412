"""Query latency with a large collection: hybrid retrieval, each leg, and the engine's overhead per answer.

    python bench/query.py [--chunks 100000] [--queries 200] [--seed 7] [--budget 150] [--json]

Ingests the generated corpus of ``bench/ingest.py`` (in memory, hashing embedder) into one
collection of a fresh embedded database, then measures, one query at a time:

* ``Retriever.search`` with the engine's defaults (limit 6, max_per_document 2): hybrid, and each
  leg alone (``mode="text"``, ``mode="vector"``), p50/p95/p99, with a per-stage breakdown;
* ``Engine.ask`` without an LLM (extractive answers): validation, rate limiting (limits off),
  persistence, retrieval and composition; i.e. the engine's overhead per answer excluding the LLM;
* ``EXPLAIN (ANALYZE, BUFFERS)`` of one typical vector-leg and text-leg query, captured from the
  retriever's own SQL, to show whether the HNSW and GIN indexes are used.

The ingest builds the collection's HNSW index at its end, as any large ingest does (see
core/search/vector_index.py). With ``DATABASE_URL`` set, an earlier run's database is searched as it is
(nothing is ingested again when the collection already holds the corpus).

Targets (issue 3): hybrid p95 < 50 ms; engine overhead p50 < 30 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench._common import fresh_database, machine, table  # noqa: E402
from bench.ingest import (  # noqa: E402
    ADJECTIVES,
    AREA_TERMS,
    AREAS,
    NOUNS,
    PRODUCTS,
    VERBS,
    CpuClock,
    _s,
    document,
    documents_for,
)
from core.search.embeddings import build_embedder  # noqa: E402
from core.answers.pipeline import AnswerPipeline, PipelineOptions  # noqa: E402
from core.questions.admission import Admission  # noqa: E402
from core.questions.engine import Engine, EngineOptions  # noqa: E402
from core.questions.store import QuestionStore  # noqa: E402
from core.storage.timeouts import Work  # noqa: E402
from core.ingest.pipeline import ChunkingOptions, Ingestor  # noqa: E402
from core.ingest.sources import SourceItem  # noqa: E402
from core.tenancy.ratelimit import RateLimiter, RateLimitPolicy  # noqa: E402
from core.search.retrieval import Retriever  # noqa: E402
from core.search.term_stats import refresh_stale_postings  # noqa: E402
from core.types import SessionKey  # noqa: E402

COLLECTION = "bench"
MODES = ("hybrid", "text", "vector")
STAGES = ("embed_query", "_vector_leg", "_text_leg", "_load")
_IDENT = re.compile(r"`([A-Za-z][\w.]*[_.A-Z][\w.]*)`")
_CODE = re.compile(r"\b([A-Z]{3}-\d{4}|E\d{3}_[A-Z]+|HTTP \d{3})\b")


# --------------------------------------------------------------------------- corpus and queries


def corpus_items(chunks: int, seed: int) -> tuple[list[SourceItem], list[str]]:
    """In-memory Markdown documents (the bench/ingest.py corpus) and their texts (for queries)."""
    items, texts = [], []
    for index in range(documents_for(chunks, seed)):
        rel, text = document(seed, index)
        body = text.encode()
        items.append(SourceItem(uri=f"bench://{rel}", name=rel, link=f"https://docs.example.com/{rel[:-3]}",
                                fetch=lambda b=body: (b, "text/markdown"), root="bench://"))
        texts.append(text)
    return items, texts


def make_queries(texts: list[str], n: int, seed: int) -> list[str]:
    """Varied questions: natural questions, identifier and error-code look-ups, short keywords, long ones."""
    rng = random.Random(f"queries:{seed}")
    sample = [texts[rng.randrange(len(texts))] for _ in range(200)]
    identifiers = sorted({m for t in sample for m in _IDENT.findall(t)})
    codes = sorted({m for t in sample for m in _CODE.findall(t)})
    topical = sorted({w.replace("-", " ") for words in AREA_TERMS.values() for w in words.split()})
    templates: list[Callable[[], str]] = [
        lambda: f"How do I set up {rng.choice(topical)} for the {rng.choice(NOUNS)}?",
        lambda: f"{rng.choice(topical)} {rng.choice(topical)}",
        lambda: f"Does {rng.choice(PRODUCTS)} support {rng.choice(topical)} with {rng.choice(ADJECTIVES)} {_s(rng.choice(NOUNS))}?",
        lambda: f"How do I {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} in {rng.choice(PRODUCTS)}?",
        lambda: f"What does {rng.choice(codes)} mean and how do I fix it?",
        lambda: f"What is the default value of {rng.choice(identifiers)}?",
        lambda: rng.choice(identifiers),
        lambda: f"{rng.choice(NOUNS)} {rng.choice(NOUNS)}",
        lambda: f"{rng.choice(PRODUCTS)} {rng.choice(AREAS).replace('-', ' ')}",
        lambda: f"Why is my {rng.choice(NOUNS)} {rng.choice(ADJECTIVES)} after I {rng.choice(VERBS)} the {rng.choice(NOUNS)}?",
        lambda: (f"We run {rng.choice(PRODUCTS)} with a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} in {rng.randint(2, 9)} regions. "
                 f"When we {rng.choice(VERBS)} the {rng.choice(NOUNS)}, requests fail with {rng.choice(codes)}. "
                 f"Should we change {rng.choice(identifiers)} or {rng.choice(VERBS)} the {rng.choice(NOUNS)} first?"),
        lambda: f"can i {rng.choice(VERBS)} a {rng.choice(NOUNS)} without downtime",
        lambda: f"{rng.choice(codes)} {rng.choice(NOUNS)}",
    ]
    return [templates[i % len(templates)]() for i in range(n)]


# --------------------------------------------------------------------------- loading


def _vector_index(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT i.indexname FROM pg_indexes i JOIN collections c ON i.indexname LIKE 'ix_chunk_vectors_c' || c.id || '\\_d%' "
            "WHERE c.name = :name"), {"name": COLLECTION}).scalar()


def load(database, embedder, chunks: int, seed: int) -> dict:
    items, texts = corpus_items(chunks, seed)
    ingestor = Ingestor(sessions=database.sessions_for(Work.INGESTION), embedder=embedder, chunking=ChunkingOptions())
    started = time.perf_counter()
    report = ingestor.ingest_items(items, collection=COLLECTION)
    ingest_s = time.perf_counter() - started
    with database.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE document_chunks"))
    # What the worker's minutely job does after a large ingest; until then searches skip postings.
    started = time.perf_counter()
    refresh_stale_postings(database.sessions)
    postings_s = time.perf_counter() - started
    with database.engine.connect() as conn:  # what is searched: with DATABASE_URL, an earlier run's load
        documents, chunk_count = conn.execute(sa.text(
            "SELECT count(DISTINCT c.document_id), count(*) FROM document_chunks c "
            "JOIN collections k ON k.id = c.collection_id WHERE k.name = :name"), {"name": COLLECTION}).one()
    return {"documents": documents, "chunks": chunk_count, "written": report.chunks, "ingest_s": round(ingest_s, 1),
            "vector_index": _vector_index(database.engine),
            "postings_build_s": round(postings_s, 1), "texts": texts}


# --------------------------------------------------------------------------- measuring


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        k = (len(ordered) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    return {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "mean": statistics.fmean(ordered), "max": ordered[-1]}


class StageTimer:
    """Wraps the retriever's steps (bench-side, on the instance) to see where a search spends its time."""

    def __init__(self, retriever: Retriever) -> None:
        self.totals: dict[str, list[float]] = defaultdict(list)
        self.current: dict[str, float] = {}
        for name in STAGES:
            owner = retriever.embedder if name == "embed_query" else retriever
            setattr(owner, name, self._wrap(name, getattr(owner, name)))

    def _wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[name] = self.current.get(name, 0.0) + (time.perf_counter() - started) * 1000

        return timed

    @contextmanager
    def query(self) -> Iterator[None]:
        self.current = {}
        yield
        for name in STAGES:
            self.totals[name].append(self.current.get(name, 0.0))


def _within(started: float, budget_s: float, done: int) -> bool:
    """Keep the run bounded: stop after ``budget_s`` once at least 20 queries are measured."""
    return done < 20 or time.perf_counter() - started < budget_s


def time_search(
    retriever: Retriever, stages: StageTimer, collection_id: int, queries: list[str], mode: str, budget_s: float
) -> tuple[list[float], dict]:
    for query in queries[-5:]:  # warm caches and connections; not counted
        retriever.search(query, collection_id=collection_id, limit=6, max_per_document=2, mode=mode)
    stages.totals.clear()
    samples: list[float] = []
    began = time.perf_counter()
    for query in queries:
        if not _within(began, budget_s, len(samples)):
            break
        with stages.query():
            started = time.perf_counter()
            retriever.search(query, collection_id=collection_id, limit=6, max_per_document=2, mode=mode)
            samples.append((time.perf_counter() - started) * 1000)
    breakdown = {name: statistics.median(values) for name, values in stages.totals.items() if any(values)}
    return samples, breakdown


def time_engine(engine: Engine, queries: list[str], budget_s: float) -> tuple[list[float], list[float], int]:
    for i, query in enumerate(queries[-3:]):
        engine.ask(SessionKey("bench", "ws", "warmup", f"w{i}", "u0"), query)
    totals: list[float] = []
    retrieval: list[float] = []
    grounded = 0
    began = time.perf_counter()
    for i, query in enumerate(queries):
        if not _within(began, budget_s, len(totals)):
            break
        key = SessionKey("bench", "ws", f"c{i % 7}", f"t{i}", f"u{i % 13}")
        started = time.perf_counter()
        answer = engine.ask(key, query)
        totals.append((time.perf_counter() - started) * 1000)
        retrieval.append(answer.timings_ms.get("retrieval_ms", 0.0))
        grounded += answer.grounded
    return totals, retrieval, grounded


# --------------------------------------------------------------------------- plans


def explain(database, retriever: Retriever, collection_id: int, query: str) -> dict[str, dict]:
    """EXPLAIN ANALYZE the retriever's own vector-leg and text-leg statements for ``query``.

    The text leg's BM25 statement is a prepared statement (core/storage/prepared.py): it is prepared on a
    connection of its own and run five times first, so the plan shown is the generic plan that
    searches reuse, not a first execution's.
    """
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    database.engine.dispose()  # new connections: the search prepares its statements again, in sight
    sa.event.listen(database.engine, "before_cursor_execute", capture)
    try:
        retriever.search(query, collection_id=collection_id, limit=6, max_per_document=2, mode="hybrid")
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", capture)
    prepare = next((s for s, _ in captured if s.startswith("PREPARE") and "ts_rank" in s), None)
    name = prepare.split()[1] if prepare else None
    legs = {
        "vector": next((s for s in captured if "<=>" in s[0]), None),
        "text": next((s for s in captured if name and s[0].startswith(f"EXECUTE {name}(")), None),
    }
    settings = [s for s in captured if s[0].lstrip().upper().startswith("SET ")]
    plans = {}
    # Not a pooled connection: what is prepared here must not outlive this function.
    raw = sa.create_engine(database.url, poolclass=sa.pool.NullPool).raw_connection()
    try:
        for leg, found in legs.items():
            if found is None:
                continue
            statement, parameters = found
            cursor = raw.cursor()
            for setting, _ in settings:  # the same SET LOCALs the search ran under
                cursor.execute(setting)
            if leg == "text":
                cursor.execute(prepare)
                for _ in range(5):
                    cursor.execute(statement, parameters)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            plan = re.sub(r"'\[[-0-9.,e]{200,}\]'", lambda m: f"'[{m.group(0).count(',') + 1} values]'", plan)
            raw.rollback()
            plans[leg] = {
                "plan": plan,
                "hnsw_used": bool(re.search(r"Index Scan using ix_chunk_vectors_c\d+_d\d+", plan)),
                "gin_used": "ix_document_chunks_tsv" in plan,
                "execution_ms": float(m.group(1)) if (m := re.search(r"Execution Time: ([\d.]+) ms", plan)) else None,
            }
    finally:
        raw.close()
    return plans


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="at least this many chunks (default 100000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget", type=float, default=150.0,
                        help="seconds per measured series; stops early (after >= 20 queries) when exceeded")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    database = fresh_database()
    embedder = build_embedder("hashing")
    loaded = load(database, embedder, args.chunks, args.seed)
    texts = loaded.pop("texts")
    queries = make_queries(texts, args.queries, args.seed)
    from core.tenancy.collections import get_collection

    with database.sessions() as session:
        collection_id = get_collection(session, COLLECTION).id

    options = EngineOptions(default_collection=COLLECTION)
    retriever = Retriever(sessions=database.sessions, embedder=embedder)
    stages = StageTimer(retriever)
    clock = CpuClock(database.engine)
    load_before = os.getloadavg()[0]
    latency: dict[str, dict] = {}
    breakdowns: dict[str, dict] = {}
    per_query: dict[str, list[float]] = {}
    for mode in MODES:
        cpu0, server0 = clock.read()
        samples, breakdowns[mode] = time_search(retriever, stages, collection_id, queries, mode, args.budget)
        cpu1, server1 = clock.read()
        latency[mode] = percentiles(samples)
        latency[mode]["n"] = len(samples)
        per_query[mode] = samples
        latency[mode]["client_cpu_ms"] = (cpu1 - cpu0) * 1000 / (len(samples) + 5)
        latency[mode]["server_cpu_ms"] = None if server0 is None else (server1 - server0) * 1000 / (len(samples) + 5)

    engine = Engine(
        store=QuestionStore(database.sessions),
        admission=Admission(database.sessions, RateLimiter(database.sessions),
                            RateLimitPolicy(user_per_min=0, channel_per_min=0, workspace_per_hour=0),
                            default_collection=COLLECTION),
        pipeline=AnswerPipeline(sessions=database.sessions, embedder=embedder,
                                retriever=Retriever(sessions=database.sessions, embedder=embedder), generator=None,
                                options=PipelineOptions()),
        options=options,
    )
    totals, retrieval_ms, grounded = time_engine(engine, queries, args.budget)
    overhead = [t - r for t, r in zip(totals, retrieval_ms)]
    engine_stats = {"ask": percentiles(totals), "ask_minus_retrieval": percentiles(overhead), "grounded": grounded,
                    "n": len(totals)}
    load_after = os.getloadavg()[0]

    # The query whose hybrid latency is the median one: what a typical search costs.
    hybrid = per_query["hybrid"]
    typical = queries[sorted(range(len(hybrid)), key=hybrid.__getitem__)[len(hybrid) // 2]]
    plans = explain(database, retriever, collection_id, typical)
    database.dispose()

    result = {
        "machine": machine(),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "embedder": embedder.name,
        "corpus": loaded,
        "queries": len(queries),
        "latency_ms": {m: {k: (round(v, 2) if isinstance(v, float) else v) for k, v in s.items()} for m, s in latency.items()},
        "stages_median_ms": {m: {k: round(v, 2) for k, v in b.items()} for m, b in breakdowns.items()},
        "engine_ms": {k: ({n: round(v, 2) for n, v in s.items()} if isinstance(s, dict) else s) for k, s in engine_stats.items()},
        "explain": {"query": typical, **{leg: {k: v for k, v in p.items()} for leg, p in plans.items()}},
        "targets": {
            "hybrid_p95<50ms": latency["hybrid"]["p95"] < 50,
            "engine_overhead_p50<30ms": engine_stats["ask"]["p50"] < 30,
        },
    }
    if args.json:
        print(json.dumps(result))
        return

    print(
        f"Collection: {loaded['documents']:,} documents, {loaded['chunks']:,} chunks (ingested in {loaded['ingest_s']}s"
        + f", its HNSW index {loaded['vector_index'] or 'missing'}"
        + f"; postings built in {loaded['postings_build_s']}s"
        + f"); embedder {embedder.name}; {len(queries)} queries, one at a time"
    )
    print(f"{machine()}; load average {load_before:.2f} before, {load_after:.2f} after (other jobs share the CPUs)")
    print()
    print("Retriever.search (limit 6, max_per_document 2), ms")
    rows = []
    for mode in MODES:
        s = latency[mode]
        rows.append([mode, s["n"], s["p50"], s["p95"], s["p99"], s["mean"], s["max"], s["client_cpu_ms"],
                     "-" if s["server_cpu_ms"] is None else s["server_cpu_ms"]])
    print(table(["mode", "queries", "p50", "p95", "p99", "mean", "max", "client CPU/query", "server CPU/query"], rows))
    print()
    print("Median time per step, ms (embed_query is inside _vector_leg)")
    print(table(["mode"] + list(STAGES), [[m] + [breakdowns[m].get(s, 0.0) for s in STAGES] for m in MODES]))
    print()
    print("Engine.ask without an LLM (extractive; rate limits off), ms")
    e = engine_stats
    print(table(["measure", "p50", "p95", "p99", "mean", "max"], [
        ["ask (total)", e["ask"]["p50"], e["ask"]["p95"], e["ask"]["p99"], e["ask"]["mean"], e["ask"]["max"]],
        ["ask minus retrieval", e["ask_minus_retrieval"]["p50"], e["ask_minus_retrieval"]["p95"],
         e["ask_minus_retrieval"]["p99"], e["ask_minus_retrieval"]["mean"], e["ask_minus_retrieval"]["max"]],
    ]))
    print(f"{e['n']} questions; grounded answers: {grounded}/{e['n']}")
    for leg, p in plans.items():
        print()
        print(f"EXPLAIN ANALYZE, {leg} leg, query {typical!r}: "
              f"HNSW index used: {p['hnsw_used']}; GIN index used: {p['gin_used']}")
        print(p["plan"])
    print()
    for name, ok in result["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
