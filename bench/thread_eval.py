"""Threads that follow the topic: multi-turn conversations replayed through the real Engine.

    python bench/thread_eval.py [CORPUS ...] [--threads FILE.jsonl ...] [--embedder hashing] [--json]

Each corpus (bench/corpus_cache.py names; default: pytest click) is ingested into a fresh
database, and its threads (bench/threads/<corpus>.jsonl, plus any --threads file named
<corpus>.jsonl) are asked turn by turn, one session key per thread, without an LLM, three ways:

- fresh: every turn asked alone in a new thread (what a question retrieves on its own);
- main:  the thread, with the follow-up rule main had before (any question of at most eight
         words, or holding a word such as "it", "that" or "one", borrowed the previous query);
- new:   the thread, with the rule of core/follow_ups.py;
- new-q: as new, but the extractive answer is chosen for the question as asked rather than for
         the query searched (an experiment on the answer step, which the engine does not do yet).

Per turn kind (first, followup, new_topic) it reports hit@5 (the turn's source document among
the first five documents retrieved for the query the engine searched) and fact rate (every fact
of the turn verbatim in the answer text, inline-code and emphasis marks aside), and how often
the rule folded history in.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench._common import fresh_database, machine, table  # noqa: E402
from bench.corpus_cache import ensure_corpus  # noqa: E402
from bots.wiring import Container  # noqa: E402
from core.tenancy.collections import get_collection  # noqa: E402
from core.config import Settings  # noqa: E402
from core.questions.conversations import Turn  # noqa: E402
from core.answers.pipeline import AnswerPipeline  # noqa: E402
from core.questions.engine import Engine  # noqa: E402
from core.questions.follow_ups import depends_on_history  # noqa: E402
from core.storage.models import TS_CONFIG, Document, Message  # noqa: E402
from core.types import SessionKey  # noqa: E402

THREADS_DIR = Path(__file__).resolve().parent / "threads"
MODES = ("fresh", "main", "new", "new-q")
KINDS = ("first", "followup", "new_topic")
METRICS = ("hit@1", "hit@5", "facts")

_MAIN_HINTS = re.compile(
    r"^(and|also|what about|how about|but|then|so|why|same|ok|okay)\b|\b(it|its|that|this|those|these|they|them|there|one)\b",
    re.IGNORECASE,
)


def main_rule_query(question: str, history: list[Turn]) -> str:
    """main's heuristic_standalone_query before core/follow_ups.py (commit 6b72e87), verbatim."""
    previous = next((turn for turn in reversed(history) if turn.role == "user"), None)
    if previous is None:
        return question
    if not (len(question.split()) <= 8 or _MAIN_HINTS.search(question)):
        return question
    return f"{question} {(previous.search_query or previous.text)[:400]}"


class QuestionExtractEngine(AnswerPipeline):
    """The new rule, but the extract is chosen for the question as asked, not the folded query
    (what the retrieval searched): measures whether a fold drags the old topic into the answer."""

    def _compose(self, question, query, *rest, **options):  # type: ignore[no-untyped-def]
        return super()._compose(question, question, *rest, **options)


class MainRuleEngine(AnswerPipeline):
    """The engine with main's old follow-up rule, for comparison (no LLM)."""

    def _standalone_query(self, question: str, history: list[Turn], timings: dict[str, float]) -> str:
        return main_rule_query(question, history) if history else question


@dataclass
class Outcome:
    kind: str
    top: bool
    hit: bool
    fact: bool
    folded: bool


def load_threads(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plain(text: str) -> str:
    """Text as a reader sees it: no inline-code or emphasis marks, whitespace collapsed (a fact
    written from the rendered page, "override for get_settings", matches "override for `get_settings`")."""
    return " ".join(text.replace("`", "").replace("*", "").split())


def check_facts(threads: list[dict], root: Path) -> None:
    for thread in threads:
        for turn in thread["turns"]:
            text = plain((root / turn["source"]).read_text(encoding="utf-8"))
            missing = [fact for fact in turn["facts"] if plain(fact) not in text]
            if missing:
                raise SystemExit(f"{thread['id']}: {missing} not verbatim in {turn['source']}")


def build_engine(container: Container, pipeline_class: type[AnswerPipeline]) -> Engine:
    """The production engine, with its answering pipeline swapped for ``pipeline_class`` (no LLM)."""
    built = container.engine  # the production wiring; reuse its collaborators
    p = built.pipeline
    pipeline = pipeline_class(sessions=p.sessions, embedder=p.embedder, retriever=p.retriever, generator=None,
                              options=p.options)
    return Engine(store=built.store, admission=built.admission, pipeline=pipeline, options=built.options)


def document_paths(container: Container, collection_id: int, root: Path) -> dict[int, str]:
    """Document id -> its path relative to the corpus root (how the threads name sources)."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    with container.database.sessions() as session:
        rows = session.execute(sa.select(Document.id, Document.source_uri).where(Document.collection_id == collection_id))
        return {doc_id: uri.removeprefix("file://").removeprefix(prefix) for doc_id, uri in rows}


def replay(
    engine: Engine, threads: list[dict], mode: str, corpus: str, collection_id: int, paths: dict[int, str], verbose: bool
) -> list[Outcome]:
    outcomes = []
    for thread in threads:
        for n, turn in enumerate(thread["turns"]):
            thread_key = f"{thread['id']}-{n}" if mode == "fresh" else thread["id"]
            key = SessionKey("bench", corpus, mode, thread_key, thread["id"])
            question_id = engine.accept(key, turn["question"], collection=corpus)
            answer = engine.answer(question_id)
            with engine.sessions() as session:
                query = session.scalar(sa.select(Message.search_query).where(Message.id == question_id))
            found = engine.pipeline.retriever.search(query, collection_id=collection_id, limit=5, max_per_document=1, merge_neighbours=False)
            documents = [paths[p.document_id] for p in found.passages]
            text = plain(answer.text)
            if verbose:
                print(f"  {mode:5} {thread['id']:11} {turn['kind']:9} top={documents[:1]} {turn['source']} | {query[:90]}")
            outcomes.append(
                Outcome(
                    kind=turn["kind"],
                    top=documents[:1] == [turn["source"]],
                    hit=turn["source"] in documents,
                    fact=all(plain(fact) in text for fact in turn["facts"]),
                    folded=query != engine.clean_question(turn["question"]),
                )
            )
    return outcomes


_IN_COLLECTION = sa.text(
    "WITH q AS (SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :question)) AS terms) "
    "SELECT cardinality(q.terms), (SELECT count(*) FROM term_stats t"
    " WHERE t.collection_id = :collection_id AND t.lexeme = ANY(q.terms) AND t.df > 0) FROM q"
)


def rule_table(container: Container, threads: list[dict], collection_id: int) -> list[list[object]]:
    """Per turn kind: how often each rule says "depends on history", and how much of the
    question's vocabulary the collection holds (the signal a vocabulary rule would use)."""
    rows: dict[str, list[tuple[bool, bool, float]]] = defaultdict(list)
    with container.database.sessions() as session:
        for thread in threads:
            for turn in thread["turns"][1:]:
                question = turn["question"]
                terms, known = session.execute(
                    _IN_COLLECTION, {"cfg": TS_CONFIG, "question": question, "collection_id": collection_id}
                ).one()
                share = known / terms if terms else 0.0
                main_folds = main_rule_query(question, [Turn("user", "previous")]) != question
                rows[turn["kind"]].append((main_folds, depends_on_history(question), share))
    return [
        [kind, len(group), sum(g[0] for g in group) / len(group), sum(g[1] for g in group) / len(group),
         sum(g[2] for g in group) / len(group), sum(g[2] < 0.75 for g in group) / len(group)]
        for kind, group in rows.items()
    ]


def summarise(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.kind].append(outcome)
        by_kind["all"].append(outcome)
    return {
        kind: {
            "n": len(group),
            "hit@1": sum(o.top for o in group) / len(group),
            "hit@5": sum(o.hit for o in group) / len(group),
            "facts": sum(o.fact for o in group) / len(group),
            "folded": sum(o.folded for o in group) / len(group),
        }
        for kind, group in by_kind.items()
    }


def evaluate_corpus(corpus: str, threads: list[dict], embedder: str, verbose: bool = False) -> tuple[dict, dict]:
    root = ensure_corpus(corpus)
    check_facts(threads, root)
    database = fresh_database()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database.engine.url.render_as_string(hide_password=False),
        data_dir=Path(tempfile.mkdtemp(prefix="docrag-threads-")),
        llm="extractive",
        embedder=embedder,
        rate_user_per_min=0,
        rate_channel_per_min=0,
        rate_workspace_per_hour=0,
    )
    container = Container(settings=settings, database=database)
    started = time.perf_counter()
    report = container.ingestor.ingest([str(root)], collection=corpus)
    info = {"documents": report.added, "chunks": report.chunks, "ingest_s": time.perf_counter() - started}
    with database.sessions() as session:
        collection_id = get_collection(session, corpus).id
    paths = document_paths(container, collection_id, root)
    engines = {"fresh": build_engine(container, AnswerPipeline), "main": build_engine(container, MainRuleEngine),
               "new": build_engine(container, AnswerPipeline),
               "new-q": build_engine(container, QuestionExtractEngine)}
    results = {mode: summarise(replay(engines[mode], threads, mode, corpus, collection_id, paths, verbose)) for mode in MODES}
    info["rules"] = rule_table(container, threads, collection_id)
    return results, info


def threads_for(corpus: str, extra: list[Path]) -> list[dict]:
    files = [THREADS_DIR / f"{corpus}.jsonl"] + [p for p in extra if p.stem == corpus]
    threads = [thread for path in files if path.exists() for thread in load_threads(path)]
    if not threads:
        raise SystemExit(f"no threads for {corpus}: write {THREADS_DIR / (corpus + '.jsonl')}")
    return threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", default=["pytest", "click"])
    parser.add_argument("--threads", type=Path, action="append", default=[], help="extra <corpus>.jsonl thread files")
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every turn's top document and query")
    args = parser.parse_args()
    corpora = list(dict.fromkeys(args.corpora + [p.stem for p in args.threads]))

    everything = {}
    for corpus in corpora:
        threads = threads_for(corpus, args.threads)
        results, info = evaluate_corpus(corpus, threads, args.embedder, args.verbose)
        everything[corpus] = {"threads": len(threads), **info, "results": results}
        if not args.json:
            print(f"\n{corpus}: {len(threads)} threads, {results['fresh']['all']['n']} turns, {info['documents']} documents, "
                  f"{info['chunks']} chunks (ingested in {info['ingest_s']:.0f}s); embedder {args.embedder}; no LLM")
            rows = [
                [kind, int(results["fresh"][kind]["n"])]
                + [results[mode][kind][metric] for metric in METRICS for mode in MODES]
                + [results["main"][kind]["folded"], results["new"][kind]["folded"]]
                for kind in KINDS + ("all",)
                if kind in results["fresh"]
            ]
            headers = ["turn kind", "n"] + [f"{metric} {mode}" for metric in METRICS for mode in MODES]
            print(table(headers + ["folded main", "folded new"], rows))
            print(table(["turn kind", "n", "main says follow-up", "new says follow-up", "terms in collection",
                         "turns <75% in collection"], info["rules"]))
    if args.json:
        print(json.dumps(everything))
    else:
        print(f"\nmachine: {machine()}\ncommand: python bench/thread_eval.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
