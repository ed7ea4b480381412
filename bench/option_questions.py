"""Questions that name a command-line option (``-x``, ``-k``, ``--lf``, ``--tb=short``): where is the page that documents it?

    python bench/option_questions.py [--questions bench/sets/options.jsonl] [--split dev|test|holdout|all]

Each question (JSON lines: id, corpus, question, sources, split) names a short or long option of a
real corpus from bench/corpus_cache.py; ``sources`` are the files that document it, relative to
the corpus folder. Every corpus is ingested once into a fresh embedded database (or
``DATABASE_URL``) through the normal folder ingestion (real loaders and chunking, hashing embedder),
then each question is searched three ways, and the rank of the first relevant document printed:

* text: the BM25 leg alone, by document (its chunks' first appearance);
* fused: both legs fused by ``Retriever.fuse``, by document, as bench/retrieval_eval.py ranks them;
* search: ``Retriever.search`` with the answer pipeline's defaults (6 passages, at most 2 per
  document), what an answer is composed from: the position of the first relevant passage.

"-" is a miss (not in the first 10 documents, or not among the passages). The first line gives the
text leg's time per question (best of 3). The summary gives, per way, how many questions had a relevant document first, in the top 3, anywhere shown, and the MRR.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import fresh_database, machine, table  # noqa: E402
from bench.corpus_cache import ensure_corpus  # noqa: E402
from bench.retrieval_eval import chunk_documents, documents_in_order  # noqa: E402
from core.ingest.pipeline import ChunkingOptions, Ingestor  # noqa: E402
from core.search.embeddings import build_embedder  # noqa: E402
from core.search.retrieval import Retriever  # noqa: E402
from core.storage.timeouts import Work  # noqa: E402
from core.tenancy.collections import get_collection  # noqa: E402

DEFAULT_SET = Path(__file__).resolve().parent / "sets" / "options.jsonl"
PASSAGES, PER_DOCUMENT = 6, 2  # the answer pipeline's defaults (core/answers/pipeline.py)
WAYS = ("text", "fused", "search")


def load(path: Path, split: str) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if split == "all" or row["split"] == split]


def first_relevant(ranked: list[str], relevant: set[str]) -> int | None:
    return next((at for at, doc in enumerate(ranked, start=1) if doc in relevant), None)


def text_leg_ms(retriever: Retriever, collection_id: int, question: str, tries: int = 3) -> float:
    """The text leg's time for the question, best of ``tries`` (its statements prepared by the first)."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        retriever.legs(question, collection_id=collection_id, mode="text")
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def ranks_for(retriever: Retriever, collection_id: int, document_of: dict[int, str], key, question: dict) -> dict:
    relevant = set(question["sources"])
    vector, text = retriever.legs(question["question"], collection_id=collection_id)
    found = retriever.search(question["question"], collection_id=collection_id, limit=PASSAGES, max_per_document=PER_DOCUMENT)
    shown = [key(p.source.split("#", 1)[0]) for p in found.passages]
    return {
        "text": first_relevant(documents_in_order(text, document_of), relevant),
        "fused": first_relevant(documents_in_order(retriever.fuse(vector, text), document_of), relevant),
        "search": first_relevant(shown, relevant),
        "top": shown[0] if shown else "",
        "text_ms": text_leg_ms(retriever, collection_id, question["question"]),
    }


def summary(results: list[dict]) -> list[list[object]]:
    rows = []
    for way in WAYS:
        ranks = [r[way] for r in results]
        rows.append([
            way,
            sum(r == 1 for r in ranks),
            sum(r is not None and r <= 3 for r in ranks),
            sum(r is not None for r in ranks),
            sum(1 / r for r in ranks if r) / max(len(ranks), 1),
        ])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_SET)
    parser.add_argument("--split", choices=["dev", "test", "holdout", "all"], default="all")
    args = parser.parse_args()
    questions = load(args.questions, args.split)

    database = fresh_database()
    embedder = build_embedder("hashing")
    ingestor = Ingestor(sessions=database.sessions_for(Work.INGESTION), embedder=embedder, chunking=ChunkingOptions())
    retriever = Retriever(sessions=database.sessions, embedder=embedder)
    results, started = [], time.perf_counter()
    for corpus in sorted({q["corpus"] for q in questions}):
        folder = ensure_corpus(corpus)
        root = folder.resolve().as_posix().rstrip("/") + "/"
        key = lambda uri, root=root: uri[len(root):] if uri.startswith(root) else uri  # noqa: E731
        ingestor.ingest([str(folder.resolve())], collection=corpus)
        with database.sessions() as session:
            collection_id = get_collection(session, corpus).id
        document_of = chunk_documents(database, collection_id, key)
        for question in (q for q in questions if q["corpus"] == corpus):
            results.append({**question, **ranks_for(retriever, collection_id, document_of, key, question)})

    def cell(rank: int | None) -> str:
        return "-" if rank is None else str(rank)

    timings = sorted(r["text_ms"] for r in results)
    print(f"{len(results)} option questions ({args.split}), hashing embedder; {machine()}; "
          f"{time.perf_counter() - started:.0f}s with ingestion; text leg {sum(timings) / len(timings):.1f} ms mean, "
          f"{timings[len(timings) // 2]:.1f} median, {timings[-1]:.1f} max (best of 3 per question)")
    print(table(["id", "question", *WAYS, "top passage's document"],
                [[r["id"], r["question"][:44], *(cell(r[w]) for w in WAYS), r["top"]] for r in results]))
    print()
    print(table(["way", "first", "top 3", "shown", "MRR"], summary(results)))


if __name__ == "__main__":
    main()
