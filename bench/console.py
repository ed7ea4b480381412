"""The console at scale: page times with 1,000,000 stored questions, gap grouping over 100,000
"not covered" questions, and the grouping's quality on a labelled question set.

    python bench/console.py [--questions 1000000] [--gaps 100000] [--repeat 30]

Runs on its own embedded PostgreSQL (deleted at exit; or DATABASE_URL, which it fills). The rows
are generated inside the server (INSERT ... SELECT generate_series), all within the console's
default 30-day window: the worst case for the overview. Prints tables; see docs/console.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402

from adapters.web.console import Viewer, console_blueprint  # noqa: E402
from bench._common import fresh_database, machine, table  # noqa: E402
from core.console import gaps  # noqa: E402
from core.storage.timeouts import Work, database_work  # noqa: E402
from core.search.embeddings import HashingEmbedder  # noqa: E402

LABELLED = REPO / "bench" / "gaps" / "questions.jsonl"
DOCUMENTS = 300
FEEDBACK = 30_000
# Two of these follow each generated question, so that 100,000 of them are (nearly) all distinct.
WORDS = [f"{w}{n}" for w in ("please", "again", "today", "in ci", "on windows", "with tox", "v", "for py", "when run",
                             "on linux") for n in range(30)]


def generate(database, questions: int, not_covered_share: float) -> None:
    pool = [json.loads(line)["question"] for line in LABELLED.open()]
    with database.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO collections (id, name, embedder, dimension) VALUES (1, 'bench', 'hashing-v1-1024', 1024)"))
        conn.execute(sa.text(
            "INSERT INTO documents (id, collection_id, source_uri, link, title, content_hash)"
            " SELECT d, 1, 'doc' || d, 'https://docs.example.com/' || d, 'Document ' || d, md5(d::text)"
            " FROM generate_series(1, :n) d"), {"n": DOCUMENTS})
        conn.execute(sa.text(
            "INSERT INTO conversations (id, platform, workspace, channel, thread, collection_id)"
            " VALUES (1, 'slack', 'T1', 'C1', 'bench', 1)"))
        conn.execute(sa.text(
            "INSERT INTO messages (id, conversation_id, role, user_id, text)"
            " SELECT m, 1, 'assistant', '', 'an answer' FROM generate_series(1, :n) m"), {"n": FEEDBACK})
        conn.execute(sa.text(
            "INSERT INTO feedback_daily (collection_id, day, up, down)"
            " SELECT 1, (now() AT TIME ZONE 'UTC')::date - d, 750, 250 FROM generate_series(0, 29) d"))
        conn.execute(sa.text(
            "INSERT INTO feedback (message_id, platform, user_id, score, created_at)"
            " SELECT m, 'slack', 'u' || m, CASE WHEN m % 4 = 0 THEN -1 ELSE 1 END, now() - (m % 30) * interval '1 day'"
            " FROM generate_series(1, :n) m"), {"n": FEEDBACK})
        # Every 1/share-th question is "not covered" (gap candidates); answered ones are confident.
        every = round(1 / not_covered_share)
        conn.execute(sa.text(f"""
            INSERT INTO question_traces (collection_id, platform, workspace, user_id, question_id, answer_id, asked_at,
                outcome, confidence, question, standalone_query, passages, cited_documents, prompt_tokens, timings, total_ms)
            SELECT 1, (ARRAY['slack','discord','web','api','cli'])[1 + i % 5], 'T1', 'u' || (i % 5000), i,
                CASE WHEN i <= {FEEDBACK} * {every} AND i % {every} = 1 THEN (i / {every}) + 1 ELSE i + 10000000 END,
                now() - (i % 30) * interval '1 day' - (i % 86400) * interval '1 second',
                CASE WHEN i % {every} = 0 THEN 'not_covered' WHEN i % 97 = 0 THEN 'rate_limited' ELSE 'answered' END,
                CASE WHEN i % {every} = 0 THEN 0.1 ELSE 0.6 END,
                (:pool)[1 + (hashint4(i) & 2147483647) % :pool_size] || ' ' || (:words)[1 + (hashint4(i + 1) & 2147483647) % :word_count]
                    || ' ' || (:words)[1 + (hashint4(i + 2) & 2147483647) % :word_count],
                NULL,
                jsonb_build_array(jsonb_build_object('chunk_id', i, 'document_id', 1 + i % {DOCUMENTS},
                    'title', 'Document ' || (1 + i % {DOCUMENTS}), 'heading', '', 'source', 'https://docs.example.com/'
                    || (1 + i % {DOCUMENTS}), 'score', 0.5)),
                CASE WHEN i % {every} = 0 THEN '{{}}'::int[] ELSE ARRAY[1 + i % ({DOCUMENTS} - 50)] END,
                600, jsonb_build_object('total_ms', 200 + i % 3000), 200 + i % 3000
            FROM generate_series(1, :n) i"""),
            {"n": questions, "pool": pool, "pool_size": len(pool), "words": WORDS, "word_count": len(WORDS)})
        conn.execute(sa.text(
            "INSERT INTO question_daily SELECT collection_id, (asked_at AT TIME ZONE 'UTC')::date, platform, outcome,"
            " width_bucket(total_ms, ARRAY[50,100,200,300,500,750,1000,1500,2000,3000,5000,7500,10000,15000,30000,60000]::real[]),"
            " count(*) FROM question_traces GROUP BY 1, 2, 3, 4, 5"))
        conn.execute(sa.text(
            "INSERT INTO document_citations (document_id, collection_id, cited, up, down)"
            " SELECT d, 1, count(*), count(*) / 40, count(*) / 120 FROM question_traces, unnest(cited_documents) d GROUP BY d"))
        conn.execute(sa.text("ANALYZE"))


def page_times(database, repeat: int) -> list[list[object]]:
    app = Flask("bench")
    app.register_blueprint(console_blueprint(database.sessions, lambda: Viewer("bench", ("bench",))))
    client = app.test_client()
    with database.engine.connect() as conn:
        some = conn.execute(sa.text("SELECT max(id) FROM question_traces")).scalar_one()
    pages = ["/console/", "/console/?days=7", "/console/documents", "/console/questions",
             "/console/questions?outcome=not_covered", f"/console/questions?before={some // 2}",
             f"/console/questions/{some // 3}", "/console/gaps"]
    rows = []
    for path in pages:
        client.get(path)  # warm the connection and the caches
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        times.sort()
        rows.append([path, round(statistics.median(times), 1), round(times[int(0.95 * (len(times) - 1))], 1)])
    return rows


def grouping_time(database) -> list[list[object]]:
    embedder = HashingEmbedder(1024)
    started = time.perf_counter()
    with database_work(Work.INGESTION):  # the time limits the periodic job runs with
        count = gaps.refresh_gaps(database.sessions, embedder, 1, progress=lambda line: print("  " + line))
    total = time.perf_counter() - started
    with database.engine.connect() as conn:
        topics = conn.execute(sa.text("SELECT jsonb_array_length(topics) FROM knowledge_gaps")).scalar_one()
    return [["refresh_gaps (load + embed + agglomerative + store)", count, round(total, 1), topics]]


def _check_ari() -> None:
    from sklearn.metrics import adjusted_rand_score as reference

    truth, labels = ["a", "a", "b", "b", "c"], np.array([0, 0, 1, 2, 2])
    assert abs(adjusted_rand_score(truth, labels) - reference(truth, labels)) < 1e-9


def _purity(truth: list[str], labels: np.ndarray) -> float:
    hits = 0
    for label in set(labels.tolist()):
        hits += Counter(t for t, x in zip(truth, labels) if x == label).most_common(1)[0][1]
    return hits / len(truth)


def adjusted_rand_score(truth: list[str], labels: np.ndarray) -> float:
    """Hubert and Arabie's adjusted Rand index, from the contingency table."""
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(labels, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1))
    np.add.at(table, (t, p), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index, rows, cols, n = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0)), pairs(np.array([len(t)]))
    expected = rows * cols / n
    return float((index - expected) / ((rows + cols) / 2 - expected))


def quality() -> list[list[object]]:
    rows_in = [json.loads(line) for line in LABELLED.open()]
    texts, truth = [r["question"] for r in rows_in], [r["topic"] for r in rows_in]
    embedders = [HashingEmbedder(1024)]
    try:
        from core.search.embeddings import SentenceTransformerEmbedder

        embedders.append(SentenceTransformerEmbedder())
    except Exception as exc:  # the local extra is optional
        print(f"(sentence-transformers not available: {exc})")
    rows = []
    for embedder in embedders:
        vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
        for method in ("agglomerative", "greedy", "kmeans"):
            started = time.perf_counter()
            labels = gaps.group(vectors, embedder.name, method)
            rows.append([embedder.name, method, len(set(labels.tolist())), round(adjusted_rand_score(truth, labels), 3),
                         round(_purity(truth, labels), 3), round((time.perf_counter() - started) * 1000, 1)])
    return rows


def method_times(n: int) -> list[list[object]]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 1024)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, n)] + 0.8 * rng.normal(size=(n, 1024)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = []
    for method in ("agglomerative", "kmeans", "greedy"):
        started = time.perf_counter()
        labels = gaps.group(vectors, "hashing", method)
        rows.append([method, n, round(time.perf_counter() - started, 2), len(set(labels.tolist()))])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=1_000_000)
    parser.add_argument("--gaps", type=int, default=100_000, help="how many of them are 'not covered'")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("\nGrouping quality on bench/gaps/questions.jsonl (120 pytest questions, 12 topics):")
    print(table(["embedder", "method", "topics", "ARI", "purity", "ms"], quality()))
    print("\nGrouping methods alone on synthetic vectors (200 topics, 1024 dimensions):")
    print(table(["method", "vectors", "seconds", "topics"], method_times(10_000)))
    database = fresh_database()
    started = time.perf_counter()
    with database_work(Work.MIGRATION):  # a bulk load: the longest time limits DocRag knows
        generate(database, args.questions, args.gaps / args.questions)
    print(f"\ngenerated {args.questions} questions in {time.perf_counter() - started:.0f} s")
    print("\nGap grouping over the stored 'not covered' questions (hashing embedder):")
    print(table(["step", "questions", "seconds", "topics kept"], grouping_time(database)))
    print(f"\nConsole pages with {args.questions} stored questions ({args.repeat} requests each, goal p95 < 200 ms):")
    print(table(["page", "p50 ms", "p95 ms"], page_times(database, args.repeat)))
    database.dispose()


if __name__ == "__main__":
    main()
