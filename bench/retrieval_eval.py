"""Retrieval quality per search leg and fused: recall@5, recall@10, MRR@10, nDCG@10, dev and test apart.

    python bench/retrieval_eval.py [BEIR_DIR] [--embedder hashing|sentence-transformers|openai]
        [--fusion convex|rrf] [--vector-weight W] [--sweep] [--json FILE [--pseudo N]]
    python bench/retrieval_eval.py --questions bench/sets/attrs.jsonl --corpus attrs [...]

Two kinds of evaluation set:

* a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), each corpus entry ingested as
  one Markdown document. Queries are halved into dev and test by their id: an id that reads as a
  hexadecimal number is dev when even, test when odd; any other id by the parity of its CRC-32.
* a question set (JSON lines: id, question, answerable, facts, source, split) over a real corpus
  from bench/corpus_cache.py, ingested through the real loaders and chunking. ``source`` is the
  relevant file, relative to the corpus folder; ``split`` says dev or test. Unanswerable questions
  have no relevant document and are left out.

Scoring is at document level (a chunk counts for the document it came from; the first 10 distinct
documents), as in shared/eval/README.md. Each query's two legs are fetched once, as deep as the
retriever fetches them, and fused here by the retriever's own code (``Retriever.fuse``); ``--sweep``
re-fuses the same legs with other weights, fusions and candidate depths, to choose on dev and report
on test. The ingest line gives the embedder's load time and the process's peak memory.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import sys
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench._common import fresh_database, machine, table  # noqa: E402
from core.tenancy.collections import get_collection  # noqa: E402
from core.search.embeddings import build_embedder  # noqa: E402
from core.search.fusion import Scored, convex_combination_fusion, reciprocal_rank_fusion  # noqa: E402
from core.storage.timeouts import Work  # noqa: E402
from core.ingest.pipeline import ChunkingOptions, IngestReport, Ingestor  # noqa: E402
from core.ingest.sources import SourceItem  # noqa: E402
from core.storage.models import Document, DocumentChunk  # noqa: E402
from core.search.retrieval import CANDIDATES_PER_LEG, Retriever  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "anthropic_docs"
MODES = ("text", "vector", "hybrid")
SPLITS = ("dev", "test", "all")
METRICS = ("recall@5", "recall@10", "mrr@10", "ndcg@10")
SWEEP_WEIGHTS = [round(w / 10, 1) for w in range(11)]
SWEEP_DEPTHS = (20, 50, CANDIDATES_PER_LEG)


@dataclass
class EvalSet:
    name: str
    ingest: Callable[[Ingestor], IngestReport]
    queries: dict[str, str]
    qrels: dict[str, set[str]]
    split: dict[str, str]
    key: Callable[[str], str] = field(default=lambda uri: uri)  # document source URI -> qrels id


# --------------------------------------------------------------------------- evaluation sets


def corpus_items(beir: Path) -> list[SourceItem]:
    """Each corpus entry of a BEIR folder as one Markdown document (its title as the heading)."""
    items = []
    with open(beir / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            body = f"# {entry.get('title') or entry['_id']}\n\n{entry['text']}".encode()
            items.append(
                SourceItem(uri=entry["_id"], name="doc.md", link=entry["_id"], fetch=lambda b=body: (b, "text/markdown"), root="beir")
            )
    return items


def beir_set(beir: Path) -> EvalSet:
    items = corpus_items(beir)
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
    queries = {q: t for q, t in queries.items() if q in qrels}
    return EvalSet(
        name=beir.name,
        ingest=lambda ingestor: ingestor.ingest_items(items, collection="eval"),
        queries=queries,
        qrels=qrels,
        split={q: _parity_split(q) for q in queries},
    )


def _parity_split(query_id: str) -> str:
    try:
        number = int(query_id, 16)
    except ValueError:
        number = zlib.crc32(query_id.encode())
    return "dev" if number % 2 == 0 else "test"


def question_set(path: Path, folder: Path, name: str) -> EvalSet:
    queries, qrels, split = {}, {}, {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            entry = json.loads(line)
            sources = entry.get("source") or []
            sources = [sources] if isinstance(sources, str) else list(sources)
            if not entry.get("answerable", True) or not sources:
                continue
            queries[entry["id"]] = entry["question"]
            qrels[entry["id"]] = {s.strip("/") for s in sources}
            split[entry["id"]] = entry.get("split", "test")
    root = folder.resolve().as_posix().rstrip("/") + "/"
    missing = {s for rel in qrels.values() for s in rel if not (folder / s).is_file()}
    if missing:
        raise SystemExit(f"{path}: sources not in {folder}: {', '.join(sorted(missing))}")
    return EvalSet(
        name=name,
        ingest=lambda ingestor: ingestor.ingest([str(folder.resolve())], collection="eval"),
        queries=queries,
        qrels=qrels,
        split=split,
        key=lambda uri: uri[len(root):] if uri.startswith(root) else uri,
    )


# --------------------------------------------------------------------------- scoring


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


def documents_in_order(fused: list[tuple[int, float]], document_of: dict[int, str], limit: int = 10) -> list[str]:
    """The first ``limit`` distinct documents of a chunk ranking (a search with one chunk per document)."""
    ranked: list[str] = []
    for chunk_id, _ in fused:
        document = document_of[chunk_id]
        if document not in ranked:
            ranked.append(document)
            if len(ranked) == limit:
                break
    return ranked


def chunk_documents(database, collection_id: int, key: Callable[[str], str]) -> dict[int, str]:
    """Chunk id -> the qrels id of its document (by document, not by link: a chunk under a
    sub-heading links to its own anchor, so links would miss relevant entries)."""
    with database.sessions() as session:
        rows = session.execute(
            sa.select(DocumentChunk.id, Document.source_uri)
            .join(Document, Document.id == DocumentChunk.document_id)
            .where(DocumentChunk.collection_id == collection_id)
        )
        return {chunk_id: key(uri) for chunk_id, uri in rows}


def mean_scores(rankings: dict[str, list[str]], eval_set: EvalSet) -> dict[str, dict[str, float]]:
    """Mean of each metric over the dev queries, the test queries and all of them."""
    out = {}
    for split in SPLITS:
        chosen = [q for q in rankings if split == "all" or eval_set.split[q] == split]
        totals: dict[str, float] = defaultdict(float)
        for qid in chosen:
            for name, value in score(rankings[qid], eval_set.qrels[qid]).items():
                totals[name] += value
        out[split] = {name: totals[name] / len(chosen) if chosen else 0.0 for name in METRICS}
        out[split]["queries"] = len(chosen)
    return out


SWEEP_FUSIONS = ("convex", "zscore", "rrf")


def fused_with(legs: tuple[Scored, Scored], fusion: str, weight: float, depth: int) -> list[tuple[int, float]]:
    vector, text = (leg[:depth] for leg in legs)
    if fusion == "rrf":
        return reciprocal_rank_fusion([[c for c, _ in vector], [c for c, _ in text]], weights=(weight, 1 - weight))
    if fusion == "zscore":
        return _zscore_fusion([vector, text], (weight, 1 - weight))
    return convex_combination_fusion([vector, text], (weight, 1 - weight))


def _zscore_fusion(legs: list[Scored], weights: tuple[float, float]) -> list[tuple[int, float]]:
    """A weighted sum of z-scores, a chunk a leg did not return getting that leg's lowest: a
    normalisation one outlying score cannot stretch, tried against min-max in the sweep."""
    per_leg = [_zscores(leg) for leg in legs]
    floors = [min(leg.values(), default=0.0) for leg in per_leg]
    chunks = {chunk_id for leg in per_leg for chunk_id in leg}
    scores = {c: sum(w * leg.get(c, floor) for w, leg, floor in zip(weights, per_leg, floors)) for c in chunks}
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _zscores(leg: Scored) -> dict[int, float]:
    if not leg:
        return {}
    mean = sum(s for _, s in leg) / len(leg)
    spread = math.sqrt(sum((s - mean) ** 2 for _, s in leg) / len(leg))
    return {c: (s - mean) / spread if spread > 1e-12 else 0.0 for c, s in leg}


def sweep(legs: dict[str, tuple[Scored, Scored]], document_of, eval_set: EvalSet) -> list[dict]:
    rows = []
    for fusion in SWEEP_FUSIONS:
        for depth in SWEEP_DEPTHS:
            for weight in SWEEP_WEIGHTS:
                rankings = {q: documents_in_order(fused_with(pair, fusion, weight, depth), document_of) for q, pair in legs.items()}
                scores = mean_scores(rankings, eval_set)
                rows.append({"fusion": fusion, "depth": depth, "weight": weight,
                             **{split: scores[split]["ndcg@10"] for split in SPLITS}})
    return rows


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beir_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--questions", type=Path, help="a question set (JSON lines) instead of a BEIR folder")
    parser.add_argument("--corpus", help="the bench/corpus_cache.py corpus the question set is about")
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--chunk-tokens", type=int, default=ChunkingOptions.max_tokens)
    parser.add_argument("--chunk-overlap", type=int, default=ChunkingOptions.overlap_tokens)
    parser.add_argument("--fusion", choices=["convex", "rrf"], default="convex", help="how the hybrid mode fuses its legs")
    parser.add_argument("--vector-weight", type=float, help="the vector leg's share (default: the embedder kind's)")
    parser.add_argument("--sweep", action="store_true", help="also nDCG@10 per fusion, candidate depth and vector weight")
    parser.add_argument("--json", type=Path, help="also write every figure, and each query's legs, to this file")
    parser.add_argument("--pseudo", type=int, default=0, metavar="N",
                        help="also write the legs of pseudo-queries from N sampled chunks (bench/autoweight.py)")
    args = parser.parse_args()

    if args.questions:
        from bench.corpus_cache import ensure_corpus

        eval_set = question_set(args.questions, ensure_corpus(args.corpus or args.questions.stem), args.questions.stem)
    else:
        eval_set = beir_set(args.beir_dir)

    database = fresh_database()
    started = time.perf_counter()
    embedder = build_embedder(args.embedder)
    load_s = time.perf_counter() - started
    ingestor = Ingestor(sessions=database.sessions_for(Work.INGESTION), embedder=embedder, chunking=ChunkingOptions(args.chunk_tokens, args.chunk_overlap))
    report = eval_set.ingest(ingestor)
    if report.failed:
        print(f"warning: {len(report.failed)} documents failed: {report.failed[:3]}", file=sys.stderr)
    with database.sessions() as session:
        collection_id = get_collection(session, "eval").id
    retriever = Retriever(sessions=database.sessions, embedder=embedder, fusion=args.fusion, vector_weight=args.vector_weight)
    document_of = chunk_documents(database, collection_id, eval_set.key)

    started = time.perf_counter()
    legs = {q: retriever.legs(text, collection_id=collection_id) for q, text in eval_set.queries.items()}
    search_ms = (time.perf_counter() - started) * 1000 / max(len(legs), 1)
    rankings = {
        "text": {q: documents_in_order(text, document_of) for q, (_, text) in legs.items()},
        "vector": {q: documents_in_order(vector, document_of) for q, (vector, _) in legs.items()},
        "hybrid": {q: documents_in_order(retriever.fuse(*pair), document_of) for q, pair in legs.items()},
    }
    results = {mode: mean_scores(rankings[mode], eval_set) for mode in MODES}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ingest = {"documents": report.added, "chunks": report.chunks, "seconds": report.seconds,
              "chunks_per_s": report.chunks / report.seconds if report.seconds else 0.0}
    out = {"set": eval_set.name, "embedder": embedder.name, "fusion": args.fusion, "vector_weight": retriever.vector_weight,
           "embedder_load_s": load_s, "peak_rss_mb": peak_mb, "ingest": ingest, "legs_ms_per_query": search_ms,
           "results": results, "machine": machine()}

    counts = ", ".join(f"{results['text'][s]['queries']} {s}" for s in ("dev", "test"))
    print(f"{eval_set.name}: {len(legs)} queries ({counts}), {report.added} documents, {report.chunks} chunks "
          f"({ingest['chunks_per_s']:.0f} chunks/s); embedder {embedder.name} (loaded in {load_s:.1f}s, peak RSS "
          f"{peak_mb:.0f} MB); {args.fusion} fusion, vector weight {retriever.vector_weight:g}; {machine()}")
    rows = [[split, mode] + [results[mode][split][m] for m in METRICS] for split in SPLITS for mode in MODES]
    print(table(["split", "mode", *METRICS], rows))
    if args.sweep:
        out["sweep"] = sweep(legs, document_of, eval_set)
        print("\nnDCG@10 by vector weight (the text leg has the rest)")
        headers = ["fusion", "depth", "split"] + [f"{w:g}" for w in SWEEP_WEIGHTS]
        grid = []
        for fusion in SWEEP_FUSIONS:
            for depth in SWEEP_DEPTHS:
                for split in ("dev", "test"):
                    cells = [r[split] for r in out["sweep"] if r["fusion"] == fusion and r["depth"] == depth]
                    grid.append([fusion, depth, split, *cells])
        print(table(headers, grid))
    if args.json:
        # With what it takes to fuse again without ingesting again (bench/fusion_choice.py).
        out["replay"] = {"legs": legs, "document_of": document_of, "qrels": {q: sorted(r) for q, r in eval_set.qrels.items()},
                         "split": eval_set.split}
        if args.pseudo:
            from bench.pseudo_queries import pseudo_queries, sample_chunks

            queries = pseudo_queries(sample_chunks(database, collection_id, args.pseudo))
            for entry in queries.values():
                entry["legs"] = retriever.legs(entry["text"], collection_id=collection_id)
            out["replay"]["pseudo"] = queries
        args.json.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
