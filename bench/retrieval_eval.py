"""Retrieval quality on a BEIR-layout folder: recall@5, recall@10, MRR@10, nDCG@10 per mode.

    python bench/retrieval_eval.py [BEIR_DIR] [--embedder hashing|sentence-transformers|openai]
        [--fusion convex|rrf] [--json]

Scoring is at document level (a chunk counts for the corpus entry it came from; the first 10
distinct documents), as in shared/eval/README.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench._common import fresh_database, machine, table  # noqa: E402
from core.embeddings import build_embedder  # noqa: E402
from core.ingest.pipeline import ChunkingOptions, Ingestor  # noqa: E402
from core.ingest.sources import SourceItem  # noqa: E402
from core.models import Document  # noqa: E402
from core.retrieval import Retriever  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "anthropic_docs"
MODES = ("text", "vector", "hybrid")


def corpus_items(beir: Path) -> list[SourceItem]:
    items = []
    with open(beir / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            body = f"# {entry.get('title') or entry['_id']}\n\n{entry['text']}".encode()
            items.append(
                SourceItem(uri=entry["_id"], name="doc.md", link=entry["_id"], fetch=lambda b=body: (b, "text/markdown"), root="beir")
            )
    return items


def load_queries(beir: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    queries = {}
    with open(beir / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            queries[entry["_id"]] = entry["text"]
    qrels: dict[str, set[str]] = defaultdict(set)
    with open(beir / "qrels" / "test.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels[row["query-id"]].add(row["corpus-id"])
    return {q: t for q, t in queries.items() if q in qrels}, qrels


def score(ranked: list[str], relevant: set[str]) -> dict[str, float]:
    top = ranked[:10]
    dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(top) if doc in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    rr = next((1 / (i + 1) for i, doc in enumerate(top) if doc in relevant), 0.0)
    return {
        "recall@5": len(set(ranked[:5]) & relevant) / len(relevant),
        "recall@10": len(set(top) & relevant) / len(relevant),
        "mrr@10": rr,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def corpus_ids(database, collection_id: int) -> dict[int, str]:
    """Document id -> the corpus entry it was ingested from (its ``_id``, kept as the source URI)."""
    with database.sessions() as session:
        rows = session.execute(sa.select(Document.id, Document.source_uri).where(Document.collection_id == collection_id))
        return {document_id: uri for document_id, uri in rows}


def evaluate(retriever: Retriever, collection_id: int, corpus_id: dict[int, str], queries, qrels, mode: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for qid, text in queries.items():
        result = retriever.search(text, collection_id=collection_id, limit=10, max_per_document=1, mode=mode, merge_neighbours=False)
        # By document, not by the passage's link: corpus ids carry a fragment (url#section), and a
        # chunk under a sub-heading links to its own anchor, so links would miss relevant entries.
        ranked = [corpus_id[p.document_id] for p in result.passages]
        for name, value in score(ranked, qrels[qid]).items():
            totals[name] += value
    return {name: value / len(queries) for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beir_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--chunk-tokens", type=int, default=ChunkingOptions.max_tokens)
    parser.add_argument("--chunk-overlap", type=int, default=ChunkingOptions.overlap_tokens)
    parser.add_argument("--fusion", choices=["convex", "rrf"], default="convex", help="how the hybrid mode fuses its legs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    database = fresh_database()
    embedder = build_embedder(args.embedder)
    ingestor = Ingestor(sessions=database.sessions, embedder=embedder, chunking=ChunkingOptions(args.chunk_tokens, args.chunk_overlap))
    started = time.perf_counter()
    report = ingestor.ingest_items(corpus_items(args.beir_dir), collection="eval")
    ingest_s = time.perf_counter() - started
    from core.collections import get_collection

    with database.sessions() as session:
        collection_id = get_collection(session, "eval").id
    queries, qrels = load_queries(args.beir_dir)
    retriever = Retriever(sessions=database.sessions, embedder=embedder, fusion=args.fusion)
    corpus_id = corpus_ids(database, collection_id)
    results = {mode: evaluate(retriever, collection_id, corpus_id, queries, qrels, mode) for mode in MODES}
    if args.json:
        print(json.dumps({"embedder": embedder.name, "fusion": args.fusion, "results": results, "chunks": report.chunks}))
        return
    print(f"{args.beir_dir.name}: {len(queries)} queries, {report.added} documents, {report.chunks} chunks "
          f"(ingested in {ingest_s:.1f}s); embedder {embedder.name}; chunks of {args.chunk_tokens} tokens; "
          f"{args.fusion} fusion; {machine()}")
    metrics = ["recall@5", "recall@10", "mrr@10", "ndcg@10"]
    print(table(["mode"] + metrics, [[mode] + [results[mode][m] for m in metrics] for mode in MODES]))


if __name__ == "__main__":
    main()
