"""How well do the retrieved passages cover the question? The measurements "not covered" is decided on.

Retrieval always returns its best passages, even for a question the documents never discuss; fused
scores are relative (the best is near 1 whatever it holds), so they cannot tell. What can: whether
the passages hold the question's words, weighed as BM25 weighs them (a word in few chunks of the
collection says more than one in many). A question about something the documents do not discuss
has rare words that no passage holds; a question they answer has its rare words in the top passage.

The words are PostgreSQL's lexemes of the question (the configuration the text leg searches with),
their document frequencies the collection's ``term_stats`` (core/search/term_stats.py).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.storage.models import TS_CONFIG
from core.types import Passage


@dataclass(frozen=True)
class Evidence:
    terms: int  # distinct lexemes of the question
    top_coverage: float  # IDF-weighted share of those lexemes in the top passage (title and heading included)
    best_coverage: float  # the same, for the best-covering passage
    unknown_terms: int  # lexemes of the question that no chunk of the collection holds
    chunks: int = 0  # chunks in the collection


NO_EVIDENCE = Evidence(0, 0.0, 0.0, 0)

# Calibrated on the dev split of bench/answers (four third-party corpora, 90 answerable and 27
# unanswerable questions; bench/answer_eval.py): below MIN_TOP_COVERAGE the top passage shares
# too little of the question to answer it. A question naming something the collection never
# mentions (a product, a protocol, a place) asks about what the documents do not discuss unless
# the top passage still covers most of it: everyday words a user adds ("stuff", "weird") are also
# unknown, which is why an unknown word alone is not enough.
MIN_TOP_COVERAGE = 0.15
MIN_TOP_COVERAGE_WITH_UNKNOWN = 0.55
# A word's absence says something only of a collection with a vocabulary: in a handful of pages
# most everyday words are absent (the calibration corpora hold 487 to 3,617 chunks).
MIN_CHUNKS_FOR_UNKNOWN = 100


def answers_question(evidence: Evidence) -> bool:
    """Does the top passage carry enough of the question to quote it as the answer?"""
    if evidence.terms == 0:
        return False
    if evidence.top_coverage < MIN_TOP_COVERAGE:
        return False
    names_the_unknown = evidence.unknown_terms and evidence.chunks >= MIN_CHUNKS_FOR_UNKNOWN
    return not (names_the_unknown and evidence.top_coverage < MIN_TOP_COVERAGE_WITH_UNKNOWN)


# A question that asks for a price is answered by an amount of money (or by "free"); documentation
# that states none in the passages retrieved for it does not answer it, however many of its words
# those passages share ("how much does commercial Celery support cost?" retrieves the support page).
# The other answer types on the bench's dev split (release dates, versions, addresses) are already
# caught by their words, so only the price is checked here.
_ASKS_PRICE = re.compile(
    r"\bhow much (?:does|do|is|are|would|will|did)\b.*\b(?:cost|costs|charge|charges|pay|paid)\b"
    r"|\b(?:price|prices|pricing|priced)\b",
    re.IGNORECASE,
)
_STATES_PRICE = re.compile(
    r"[$€£¥]\s?\d|\d\s?(?:USD|EUR|GBP|dollars?|euros?)\b"
    r"|\bfree (?:of charge|to use|and open|software)\b|\bno cost\b|\bcosts? nothing\b",
    re.IGNORECASE,
)


def asks_what_no_passage_states(question: str, passages: Sequence[Passage]) -> bool:
    """The question asks for a kind of value (a price) that none of the passages states."""
    if not _ASKS_PRICE.search(question):
        return False
    return not any(_STATES_PRICE.search(f"{p.heading}\n{p.text}") for p in passages)


_STATISTICS = sa.text(
    "WITH q AS (SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :query)) AS terms) "
    "SELECT q.terms, c.chunk_count,"
    " (SELECT json_object_agg(t.lexeme, t.df) FROM term_stats t"
    "  WHERE t.collection_id = c.id AND t.lexeme = ANY(q.terms)) AS frequencies,"
    " ARRAY(SELECT array_to_string(ARRAY(SELECT l FROM unnest(tsvector_to_array("
    "   to_tsvector(CAST(:cfg AS regconfig), p.text))) l WHERE l = ANY(q.terms)), ' ')"
    "   FROM unnest(CAST(:texts AS text[])) WITH ORDINALITY AS p(text, i) ORDER BY p.i) AS held "
    "FROM q CROSS JOIN collections c WHERE c.id = :collection_id"
)


@dataclass(frozen=True)
class TermStatistics:
    """What the evidence is computed from: the question's lexemes, their document frequencies in the
    collection, and which of them each passage holds. Kept apart so a recording of it (bench/
    answer_eval.py --record) can re-run the decision offline."""

    terms: tuple[str, ...]
    frequencies: dict[str, int]
    held: tuple[frozenset[str], ...]  # per passage, in rank order
    chunks: int


def term_statistics(session: Session, query: str, collection_id: int, passages: Sequence[Passage]) -> TermStatistics | None:
    if not passages:
        return None
    texts = [f"{p.title}\n{p.heading}\n{p.text}" for p in passages]
    row = session.execute(
        _STATISTICS, {"cfg": TS_CONFIG, "query": query, "collection_id": collection_id, "texts": texts}
    ).one_or_none()
    if row is None or not row.terms:
        return None
    return TermStatistics(
        terms=tuple(dict.fromkeys(row.terms)),
        frequencies={t: int(df) for t, df in (row.frequencies or {}).items()},
        held=tuple(frozenset(h.split()) for h in row.held),
        chunks=max(int(row.chunk_count or 0), 1),
    )


def from_statistics(stats: TermStatistics | None) -> Evidence:
    if stats is None:
        return NO_EVIDENCE
    terms, frequencies, total = stats.terms, stats.frequencies, stats.chunks
    idf = {t: math.log(1 + (total - frequencies.get(t, 0) + 0.5) / (frequencies.get(t, 0) + 0.5)) for t in terms}
    mass = sum(idf.values()) or 1.0
    shares = [sum(idf[t] for t in terms if t in found) / mass for found in stats.held]
    return Evidence(
        terms=len(terms),
        top_coverage=shares[0],
        best_coverage=max(shares),
        unknown_terms=sum(1 for t in terms if not frequencies.get(t)),
        chunks=total,
    )


def measure(session: Session, query: str, collection_id: int, passages: Sequence[Passage]) -> Evidence:
    return from_statistics(term_statistics(session, query, collection_id, passages))
