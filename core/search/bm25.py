"""BM25 over PostgreSQL full text: the text leg of hybrid search.

PostgreSQL's ``ts_rank`` gives a rare word no more weight than a common one; BM25 weighs each
query term by its inverse document frequency (kept per collection in ``term_stats``, see
core/search/term_stats.py). Candidates come from the GIN index on the chunks' tsvectors, or, for words
in many chunks, from their impact-ordered postings; every candidate is then scored exactly.
"""
from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, TSQUERY
from sqlalchemy.orm import Session

from core.storage import prepared
from core.search import options
from core.search.fusion import Scored
from core.storage.models import TS_CONFIG, DocumentChunk

BM25_K1 = 1.2
BM25_B = 0.75
# Every candidate is fetched and scored, so candidates are bounded: the rarest query terms select
# them until their chunk counts add up to this budget; chunks holding every query term are always
# candidates. Common terms still add to the score of every candidate.
CANDIDATE_BUDGET = 5000
# With postings (see core/search/term_stats.py), a common term's candidates are its postings: the chunks
# where it weighs most. Their partial scores (from the postings alone) pick this many of them to
# score exactly, beside every chunk matching a rarer term.
POSTINGS_SHORTLIST = 500
# Rarer terms bring all their chunks, but with postings a smaller budget suffices: measured on
# 101,615 chunks, 2000 instead of 5000 cut the text leg's p95 from ~195 to ~77 ms (load 5) and
# kept the top-10 overlap with exhaustive BM25 at 0.90.
POSTINGS_CANDIDATE_BUDGET = 2000
# Scoring costs about a microsecond per candidate and query term, so long questions (15-20 terms)
# get fewer rare-term candidates: at most this many (candidate, term) pairs in all (12,000: p95
# 48 instead of 57 ms but overlap 0.888 instead of 0.895; 30,000: 81 ms, 0.906).
POSTINGS_SCORING_BUDGET = 20_000


def rank(session: Session, query: str, collection_id: int, *, limit: int) -> Scored:
    """The ``limit`` best chunks of the collection for ``query`` by BM25, best first, with their scores.

    ``websearch_to_tsquery`` ANDs every term, and questions rarely have all their words in
    one chunk, so candidates match any of the rarer query terms (see CANDIDATE_BUDGET) or
    all of them; common terms add to the score but do not pull in half the collection.
    Command-line options the query names (``-x``, ``--lf``) are terms of their own, matched as
    written (core/search/options.py), instead of the bare letters PostgreSQL makes of them.
    """
    wanted = options.options_in(query)
    statistics = _statistics(session, options.without_options(query, wanted), collection_id)
    if statistics is None:
        return []
    matches = options.find(session, wanted, collection_id, statistics.chunk_count) if wanted else []
    if not matches:
        if wanted:  # no chunk holds them as written: their words are all the text leg has
            statistics = _statistics(session, query, collection_id)
        return _rank_terms(session, statistics, collection_id, limit) if statistics and statistics.terms else []
    if len(matches) < len(wanted):  # the options no chunk holds count by their words, as before
        statistics = _statistics(session, options.without_options(query, [m.option for m in matches]), collection_id)
    return _rank_with_options(session, statistics, matches, collection_id, limit)


@dataclass(frozen=True)
class _Statistics:
    terms: list[str]  # the query's lexemes
    chunk_count: int
    avg_tokens: float
    depth: int | None  # postings depth, None without current postings
    frequencies: dict[str, int]  # document frequency of each lexeme the collection has

    def idf(self) -> dict[str, float]:
        total = max(self.chunk_count, 1)
        return {t: _idf(total, self.frequencies.get(t, 0)) for t in self.terms}


def _idf(total_chunks: int, frequency: int) -> float:
    return math.log(1 + (total_chunks - frequency + 0.5) / (frequency + 0.5))


def _statistics(session: Session, query: str, collection_id: int) -> _Statistics | None:
    row = session.execute(_QUERY_STATISTICS, {"cfg": TS_CONFIG, "query": query, "collection_id": collection_id}).one_or_none()
    if row is None:
        return None
    terms, chunk_count, avg_tokens, depth, frequencies = row
    return _Statistics(list(terms or []), chunk_count or 0, avg_tokens or 0.0, depth, frequencies or {})


def _rank_terms(session: Session, statistics: _Statistics, collection_id: int, limit: int) -> Scored:
    """BM25 over the query's lexemes: the chunks matching the rarer ones, or the postings of the common ones."""
    idf, frequencies = statistics.idf(), statistics.frequencies
    depth = statistics.depth
    common = [t for t in statistics.terms if depth is not None and frequencies.get(t, 0) > depth]
    total = max(statistics.chunk_count, 1)
    if common:
        return _rank_with_postings(session, idf, frequencies, common, collection_id, statistics.avg_tokens, total, limit)
    parameters = _bm25_parameters(
        idf,
        candidates=_candidate_tsquery(statistics.terms, frequencies),
        collection_id=collection_id,
        average_tokens=max(statistics.avg_tokens, 1.0),
        limit=limit,
    )
    rows = prepared.execute(session, _bm25_statement(len(idf)), parameters)
    return [(row.id, float(row.score)) for row in rows]


def _rank_with_options(
    session: Session, statistics: _Statistics, matches: list[options.OptionMatches], collection_id: int, limit: int
) -> Scored:
    """BM25 with each matched option as one more term: its chunks join the candidates.

    A chunk's score is its BM25 over the query's other words plus, per option it holds, the
    option's BM25 part (its document frequency is the number of chunks holding it as written,
    counted up to options.MAX_MATCHES: a rarer option weighs more, a very common one about the same).
    The best ``limit`` are among the best ``limit`` by the words alone and the options' chunks,
    whose word scores are computed for them alone.
    """
    scores = dict(_rank_terms(session, statistics, collection_id, limit)) if statistics.terms else {}
    holding = {chunk_id for m in matches for chunk_id in m.counts}
    unscored = sorted(holding - scores.keys())
    if unscored and statistics.terms:
        scores.update(_score_chunks(session, statistics, unscored, collection_id))
    average = max(statistics.avg_tokens, 1.0)
    total = max(statistics.chunk_count, 1)
    for match in matches:
        weight = _idf(total, len(match.counts)) * (BM25_K1 + 1)
        for chunk_id, (tf, tokens) in match.counts.items():
            norm = BM25_K1 * (1 - BM25_B + BM25_B * tokens / average)
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * tf / (tf + norm)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]


def _score_chunks(session: Session, statistics: _Statistics, chunk_ids: list[int], collection_id: int) -> Scored:
    """BM25 over the query's lexemes for these chunks alone (a chunk holding none of them scores 0)."""
    parameters = _bm25_parameters(
        statistics.idf(), candidates=None, collection_id=collection_id,
        average_tokens=max(statistics.avg_tokens, 1.0), limit=len(chunk_ids),
    )
    parameters["shortlist"] = "{" + ",".join(map(str, chunk_ids)) + "}"
    statement = _bm25_statement(len(statistics.terms), with_shortlist=True, with_tsquery=False)
    rows = prepared.execute(session, statement, parameters)
    return [(row.id, float(row.score)) for row in rows]


def _rank_with_postings(
    session: Session,
    idf: dict[str, float],
    frequencies: dict[str, int],
    common: list[str],
    collection_id: int,
    avg_tokens: float,
    total_chunks: int,
    limit: int,
) -> Scored:
    """BM25 over the chunks matching a rare term plus the best-placed chunks in the common terms' postings.

    A rare term (in at most the postings depth of chunks) brings all its chunks, as without
    postings; a common one only its postings, of which the best POSTINGS_SHORTLIST by partial
    score are kept, with the chunks holding every term if they are likely few. Every candidate
    is then scored exactly over all terms.
    """
    shortlist = [
        row.chunk_id
        for row in prepared.execute(
            session,
            _POSTINGS_SHORTLIST,
            {
                "collection_id": collection_id,
                "lexemes": common,
                "weights": [idf[t] for t in common],
                "limit": POSTINGS_SHORTLIST,
            },
        )
    ]
    candidates = _postings_candidate_tsquery(list(idf), common, frequencies, total_chunks)
    parameters = _bm25_parameters(
        idf,
        candidates=candidates,
        collection_id=collection_id,
        average_tokens=max(avg_tokens, 1.0),
        limit=limit,
    )
    # As array text: PostgreSQL reads '{1,2,...}' in ~0.1 ms, psycopg2's ARRAY[1, 2, ...] of 500 in ~1 ms.
    parameters["shortlist"] = "{" + ",".join(map(str, shortlist)) + "}"
    statement = _bm25_statement(len(idf), with_shortlist=True, with_tsquery=candidates is not None)
    rows = prepared.execute(session, statement, parameters)
    return [(row.id, float(row.score)) for row in rows]


# In one round trip: the query's lexemes; the collection's size, average chunk length and
# postings depth (NULL unless its postings were built from its current term statistics); and the
# document frequency of each lexeme the collection has.
_QUERY_STATISTICS = sa.text(
    "WITH q AS (SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :query)) AS terms) "
    "SELECT q.terms, c.chunk_count, c.avg_chunk_tokens,"
    " CASE WHEN c.postings_version = c.term_stats_version THEN c.postings_depth END AS postings_depth,"
    " (SELECT json_object_agg(t.lexeme, t.df) FROM term_stats t"
    "  WHERE t.collection_id = c.id AND t.lexeme = ANY(q.terms)) AS frequencies "
    "FROM q CROSS JOIN collections c WHERE c.id = :collection_id"
)


# The common terms' postings, best partial score first: sum of idf * impact over the terms whose
# postings hold the chunk (a lower bound of its score from those terms). The lexeme = ANY condition
# repeats the join's on purpose: without it the planner may expect thousands of postings per term
# and scan all of the collection's (a parallel sequential scan: 37 instead of 6 ms for 16 terms).
# The primary key carries impact, so this reads the index alone (migration 0009).
_POSTINGS_SHORTLIST = sa.text(
    "SELECT p.chunk_id FROM term_postings p"
    " JOIN unnest(CAST(:lexemes AS text[]), CAST(:weights AS float8[])) AS q(lexeme, weight) ON q.lexeme = p.lexeme"
    " WHERE p.collection_id = :collection_id AND p.lexeme = ANY(CAST(:lexemes AS text[]))"
    " GROUP BY p.chunk_id ORDER BY sum(q.weight * p.impact) DESC, p.chunk_id LIMIT :limit"
)


@functools.lru_cache(maxsize=128)
def _bm25_statement(term_count: int, with_shortlist: bool = False, with_tsquery: bool = True) -> sa.Select:
    """Best ``:limit`` chunks among the ``:candidates`` tsquery's matches, by BM25 over ``term_count`` terms.

    Built once per term count (building it costs milliseconds of Python); the terms, weights and
    collection are bound at execution (see _bm25_parameters). It runs as a prepared statement
    (core/storage/prepared.py): for long questions PostgreSQL took as long to plan it as to run it.
    Term frequencies come from two ``ts_rank`` calls per term (see _term_frequency) computed once
    per chunk in an inner query (OFFSET 0 keeps the planner from inlining them into the score,
    which uses each twice).
    Constants are cast to float8 so the arithmetic is not ``numeric``. ``with_shortlist`` adds the
    chunks listed in ``:shortlist`` to the candidates; without ``with_tsquery`` they are the only ones.
    """
    chunks = DocumentChunk.__table__
    thresholds = sa.select(_array_literal(RANK_THRESHOLDS, "float8").label("th")).subquery("rank_thresholds")
    conditions = [chunks.c.tsv.op("@@")(sa.cast(sa.bindparam("candidates"), TSQUERY))] if with_tsquery else []
    if with_shortlist:
        # An OR of two indexable conditions: a BitmapOr of the GIN and primary key indexes.
        conditions.append(chunks.c.id == sa.func.any(sa.cast(sa.bindparam("shortlist"), ARRAY(sa.BigInteger))))
    candidates = sa.or_(*conditions)
    frequencies = [
        _term_frequency(chunks.c.tsv, sa.bindparam(f"lexeme_{i}"), thresholds.c.th).label(f"tf{i}")
        for i in range(term_count)
    ]
    per_chunk = (
        sa.select(chunks.c.id, chunks.c.token_count, *frequencies)
        .select_from(chunks.join(thresholds, sa.true()))
        .where(
            chunks.c.collection_id == sa.bindparam("collection_id"),
            candidates,
        )
        .offset(0)
        .subquery("per_chunk")
    )
    # BM25: idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average length)).
    length_norm = _float8("length_base") + _float8("length_slope") * per_chunk.c.token_count
    score = sum(
        (
            _float8(f"weight_{i}") * per_chunk.c[f"tf{i}"] / (per_chunk.c[f"tf{i}"] + length_norm)
            for i in range(term_count)
        ),
        start=sa.cast(0.0, DOUBLE_PRECISION),
    ).label("score")
    return sa.select(per_chunk.c.id, score).order_by(score.desc(), per_chunk.c.id).limit(sa.bindparam("limit"))


def _bm25_parameters(
    idf: dict[str, float], *, candidates: str | None, collection_id: int, average_tokens: float, limit: int
) -> dict[str, object]:
    parameters: dict[str, object] = {
        "candidates": candidates,
        "collection_id": collection_id,
        "length_base": BM25_K1 * (1 - BM25_B),
        "length_slope": BM25_K1 * BM25_B / average_tokens,
        "limit": limit,
    }
    for i, (lexeme, weight) in enumerate(idf.items()):
        parameters[f"lexeme_{i}"] = _tsquery_literal(lexeme)
        parameters[f"weight_{i}"] = weight * (BM25_K1 + 1)
    return parameters


# Term frequencies without unnesting each candidate's tsvector (~30 µs per chunk). For a one-lexeme
# query, PostgreSQL's ts_rank (calc_rank_or in tsrank.c) is sum(weight_j / j^2) / (pi^2 / 6) over
# the lexeme's positions j = 1..n in position order. With every weight 1 that strictly increases
# with n, so width_bucket over the midpoints between consecutive values recovers n exactly; with
# only weight A at 1 it recovers the number of A positions, because title and heading words (A)
# come first in the tsvector (see TSV_EXPRESSION). Title and heading words count three times, as
# they say what a chunk is about: tf = positions + 2 * A positions.
MAX_POSITIONS = 256  # a tsvector keeps at most 256 positions per lexeme
EVERY_WEIGHT = [1.0, 1.0, 1.0, 1.0]  # ts_rank weights in {D, C, B, A} order
ONLY_A = [0.0, 0.0, 0.0, 1.0]


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _one_lexeme_ranks() -> list[float]:
    """ts_rank of a lexeme with n = 1..MAX_POSITIONS equally weighted positions, in the C float arithmetic."""
    ranks, partial = [], 0.0
    for n in range(1, MAX_POSITIONS + 1):
        partial = _float32(partial + _float32(1.0 / (n * n)))
        ranks.append(_float32(_float32(_float32(1.0 + partial) - 1.0) / 1.64493406685))
    return ranks


_RANKS = _one_lexeme_ranks()
RANK_THRESHOLDS = [(low + high) / 2 for low, high in zip([0.0] + _RANKS, _RANKS)]


def _term_frequency(tsv: sa.ColumnElement, lexeme: sa.ColumnElement, thresholds: sa.ColumnElement) -> sa.ColumnElement:
    """How often the lexeme (a bound tsquery literal) occurs in ``tsv``, title and heading occurrences counted thrice."""
    query = sa.cast(lexeme, TSQUERY)

    def positions(weights: list[float]) -> sa.ColumnElement:
        rank = sa.func.ts_rank(_array_literal(weights, "real"), tsv, query)
        return sa.func.width_bucket(sa.cast(rank, DOUBLE_PRECISION), thresholds)

    return positions(EVERY_WEIGHT) + 2 * positions(ONLY_A)


def _array_literal(values: Sequence[float], element_type: str) -> sa.ColumnElement:
    """Constant floats written into the SQL: parsed once when prepared, not bound at every execution."""
    return sa.literal_column(f"CAST('{{{', '.join(repr(float(v)) for v in values)}}}' AS {element_type}[])")


def _float8(name: str) -> sa.ColumnElement:
    return sa.cast(sa.bindparam(name), DOUBLE_PRECISION)


def _candidate_tsquery(terms: Sequence[str], frequencies: dict[str, int]) -> str:
    """(rarest terms OR-ed, up to the budget) OR (every term AND-ed), as tsquery text."""
    by_rarity = sorted(terms, key=lambda t: frequencies.get(t, 0))
    chosen, matched = [], 0
    for term in by_rarity:
        if chosen and matched + frequencies.get(term, 0) > CANDIDATE_BUDGET:
            break
        chosen.append(term)
        matched += frequencies.get(term, 0)
    any_rare = " | ".join(_tsquery_literal(t) for t in chosen)
    if len(chosen) == len(terms):
        return any_rare
    return f"{any_rare} | ({' & '.join(_tsquery_literal(t) for t in terms)})"


def _postings_candidate_tsquery(
    terms: Sequence[str], common: Sequence[str], frequencies: dict[str, int], total_chunks: int
) -> str | None:
    """With postings: (rarest non-common terms OR-ed, up to the budget) OR (every term AND-ed, if likely few); None if neither.

    Chunks holding every query term are usually the best, but when all terms are common they can
    be thousands (two terms in a quarter of the chunks each: ~6,000); their number is estimated as
    if terms occurred independently, and above the budget they are left to the postings, where the
    best of them rank high anyway.
    """
    rare = [t for t in terms if t not in common]
    budget = min(POSTINGS_CANDIDATE_BUDGET, max(POSTINGS_SCORING_BUDGET // len(terms) - POSTINGS_SHORTLIST, 0))
    chosen, matched = [], 0
    for term in sorted(rare, key=lambda t: frequencies.get(t, 0)):
        if chosen and matched + frequencies.get(term, 0) > budget:
            break
        chosen.append(term)
        matched += frequencies.get(term, 0)
    parts = [_tsquery_literal(t) for t in chosen]
    holding_every_term = float(total_chunks)
    for term in terms:
        holding_every_term *= frequencies.get(term, 0) / max(total_chunks, 1)
    if len(chosen) < len(terms) and holding_every_term <= budget:
        parts.append("(" + " & ".join(_tsquery_literal(t) for t in terms) + ")")
    return " | ".join(parts) or None


def _tsquery_literal(lexeme: str) -> str:
    """A lexeme quoted for tsquery input, taken as is (no second normalisation)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
