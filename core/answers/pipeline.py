"""The answering pipeline: standalone query, retrieval, evidence, generation. No storage.

Given a question, its history and a collection, it returns the search query used and the
answer (with the time each stage took). It neither reads nor writes questions: that is the
store's job (core/questions/store.py).
"""
from __future__ import annotations

import time
from collections.abc import Generator as Streamed
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from core.answers import evidence
from core.search.embeddings import Embedder
from core.errors import UpstreamUnavailable
from core.answers.extractive import extractive_answer
from core.answers.llm import (
    Generator,
    build_answer_messages,
    build_rewrite_messages,
    renumber_citations,
    strip_invalid_citations,
)
from core.questions.conversations import Turn, heuristic_standalone_query
from core.questions.follow_ups import depends_on_history
from core.search.options import held_in, options_in
from core.search.retrieval import Retriever, SearchResult
from core.types import Answer, Citation, Passage

# A semantic embedder this sure of the best passage answers even when the words differ.
CONFIDENT_SIMILARITY = {"sentence-transformers": 0.55, "openai": 0.5}

NOT_COVERED = "I couldn't find this in the documentation, so I won't guess."
NOT_COVERED_NOTHING = "I couldn't find this in the documentation, so I won't guess: nothing in it matches the question."
CLOSEST_SOURCES = 3


@dataclass(frozen=True)
class PipelineOptions:
    context_passages: int = 6
    max_chunks_per_document: int = 2


@dataclass(frozen=True)
class Composed:
    query: str  # what was searched (a follow-up's standalone form)
    answer: Answer  # with timings_ms, not stored yet
    found: SearchResult | None = None  # the passages it was written from, with their scores (for the console)
    generated: bool = False  # written by the language model (not an extract, not "not covered")


class AnswerPipeline:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        retriever: Retriever,
        generator: Generator | None,
        options: PipelineOptions,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.retriever = retriever
        self.generator = generator
        self.options = options

    def compose(
        self, question: str, history: list[Turn], collection_id: int, *, on_writing: Callable[[], None] | None = None
    ) -> Composed:
        """``on_writing`` is called once the search is done and the answer is being written (a door's
        status line: "searching", then "writing")."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        query = self._standalone_query(question, history, timings)
        found = self._retrieve(query, collection_id, timings)
        if on_writing is not None:
            on_writing()
        answer = self._compose(question, query, found, history, timings, collection_id=collection_id)
        timings["total_ms"] = _ms_since(started)
        return Composed(query, replace(answer, timings_ms=timings), found, generated="llm_ms" in timings)

    def compose_stream(self, question: str, history: list[Turn], collection_id: int) -> Streamed[str, None, Composed]:
        """:meth:`compose`, yielding the answer's text as the model writes it (already with its final
        citation numbers). Nothing is yielded when no model writes (extract, not covered)."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        query = self._standalone_query(question, history, timings)
        found = self._retrieve(query, collection_id, timings)
        answer = yield from self._compose_streamed(question, query, found, history, timings, collection_id)
        timings["total_ms"] = _ms_since(started)
        return Composed(query, replace(answer, timings_ms=timings), found, generated="llm_ms" in timings)

    def _standalone_query(self, question: str, history: list[Turn], timings: dict[str, float]) -> str:
        # A question that stands on its own (a new topic too) searches as in a fresh thread:
        # neither the history nor a rewrite can pull the previous topic back in.
        if not history or not depends_on_history(question):
            return question
        if self.generator is None:
            return heuristic_standalone_query(question, history)
        started = time.perf_counter()
        try:
            rewritten = self.generator.complete(build_rewrite_messages(question, history)).strip().strip('"')
        except UpstreamUnavailable:
            # The answer step will meet the same outage and report it; retrieval can still work.
            return heuristic_standalone_query(question, history)
        finally:
            timings["rewrite_ms"] = _ms_since(started)
        return rewritten[:1000] or question

    def _retrieve(self, query: str, collection_id: int, timings: dict[str, float]) -> SearchResult:
        started = time.perf_counter()
        result = self.retriever.search(
            query,
            collection_id=collection_id,
            limit=self.options.context_passages,
            max_per_document=self.options.max_chunks_per_document,
        )
        timings["retrieval_ms"] = _ms_since(started)
        return result

    def _is_weak(self, query: str, found: SearchResult, collection_id: int, timings: dict[str, float]) -> bool:
        """No passage answers the question: see core/answers/evidence.py for the measurements and their calibration."""
        if not found.passages:
            return True
        started = time.perf_counter()
        with self.sessions() as session:
            measured = evidence.measure(session, query, collection_id, found.passages)
        timings["evidence_ms"] = _ms_since(started)
        return weak_evidence(measured, found.best_similarity, self.embedder.name, query=query, passages=found.passages)

    def _compose(
        self,
        question: str,
        query: str,
        found: SearchResult,
        history: list[Turn],
        timings: dict[str, float],
        *,
        collection_id: int,
    ) -> Answer:
        passages = found.passages
        if self._is_weak(query, found, collection_id, timings):
            return not_covered(passages[:CLOSEST_SOURCES])
        if self.generator is None:
            text, cited = extractive_answer(query, passages)
            return Answer(text, _citations(passages, cited))
        started = time.perf_counter()
        try:
            raw = self.generator.complete(build_answer_messages(question, passages, history))
        finally:
            timings["llm_ms"] = _ms_since(started)
        text, cited = strip_invalid_citations(raw, len(passages))
        if not cited:  # an answer that cites nothing still lists what it was written from
            return Answer(text, _citations(passages, range(1, len(passages) + 1)))
        return Answer(renumber_citations(text, cited), _citations(passages, cited))


    def _compose_streamed(
        self, question: str, query: str, found: SearchResult, history: list[Turn], timings: dict[str, float],
        collection_id: int,
    ) -> Streamed[str, None, Answer]:
        from core.answers.live_citations import LiveCitations
        from core.answers.llm import clean_citations

        stream = getattr(self.generator, "stream", None)
        if stream is None:  # no model (the extract), or one that cannot stream: immediate
            return self._compose(question, query, found, history, timings, collection_id=collection_id)
        if self._is_weak(query, found, collection_id, timings):
            return not_covered(found.passages[:CLOSEST_SOURCES])
        passages = found.passages
        live = LiveCitations(len(passages))
        started = time.perf_counter()
        try:
            pieces = stream(build_answer_messages(question, passages, history))
            while True:
                try:
                    shown = live.feed(next(pieces))
                except StopIteration as done:
                    raw = done.value
                    break
                if shown:
                    timings.setdefault("first_text_ms", _ms_since(started))
                    yield shown
        finally:
            timings["llm_ms"] = _ms_since(started)
        text, cited = clean_citations(raw, len(passages))
        rest = live.finish(text)
        if rest:
            yield rest
        return Answer(text, _citations(passages, cited or range(1, len(passages) + 1)))


def weak_evidence(
    measured: evidence.Evidence, best_similarity: float, embedder_name: str, *, query: str, passages: list[Passage]
) -> bool:
    """The "not covered" decision from the measurements and the passages alone (bench/answer_eval.py
    --replay runs it on recorded ones)."""
    if evidence.asks_what_no_passage_states(query, passages):
        return True  # however sure the ranking is, the kind of value asked for is not there
    if _top_passage_names_the_options(query, passages) and not measured.unknown_terms:
        return False  # "what is -s for": the option's letters are no words, but the passage holds it
    threshold = next((value for prefix, value in CONFIDENT_SIMILARITY.items() if embedder_name.startswith(prefix)), 2.0)
    if best_similarity >= threshold and not measured.unknown_terms:
        return False  # a semantic embedder is sure, and the question names nothing the documents never mention
    return not evidence.answers_question(measured)


def _top_passage_names_the_options(query: str, passages: list[Passage]) -> bool:
    named = options_in(query)
    return bool(named and passages) and all(held_in(option, passages[0].text) for option in named)


def not_covered(closest: list[Passage]) -> Answer:
    """Say plainly that the documents do not answer this; point to the closest sources (listed as
    links by every door), quote none of them."""
    if not closest:
        return Answer(NOT_COVERED_NOTHING, [], grounded=False)
    numbers = [f"[{n}]" for n in range(1, len(closest) + 1)]
    named = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
    text = f"{NOT_COVERED} The closest sources I found are {named}, listed below; they may still help."
    return Answer(text, _citations(closest, range(1, len(closest) + 1)), grounded=False)


def _citations(passages: list[Passage], shown: Iterable[int]) -> list[Citation]:
    """Sources numbered 1..n in the order shown; ``shown`` holds the 1-based passage numbers."""
    picked = [passages[p - 1] for p in shown if 1 <= p <= len(passages)]
    return [Citation(n=n, title=p.title, source=p.source, heading=p.heading) for n, p in enumerate(picked, start=1)]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
