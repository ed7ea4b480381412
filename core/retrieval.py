"""Hybrid search inside PostgreSQL: pgvector cosine + BM25 full text, fused by score.

Each leg returns its best candidates for one collection with their scores. Each leg's scores are
min-max normalised over its own candidates and the two are averaged (a convex combination, Bruch
et al. 2022, "An Analysis of Fusion Functions for Hybrid Retrieval"): unlike reciprocal rank
fusion it keeps how far apart the scores are, so a chunk one leg is sure about is not ranked as if
it were merely first by a hair. Then the fused list is diversified (a cap per document) and
neighbouring chunks of one document are merged into one passage, so the context reads as the
document does.
"""
from __future__ import annotations

import functools
import math
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, REAL, TSQUERY
from sqlalchemy.orm import Session, sessionmaker

from core.embeddings import Embedder
from core.models import TS_CONFIG, Collection, DocumentChunk, TermStat
from core.types import Passage

Mode = Literal["hybrid", "vector", "text"]
Fusion = Literal["convex", "rrf"]
# One leg's candidates, best first: (chunk id, the leg's own score, higher is better).
Scored = list[tuple[int, float]]

# k=60 as in the RRF paper (kept for comparison: bench/retrieval_eval.py --fusion rrf).
RRF_K = 60
# A deep candidate list from each leg lets fusion rescue a chunk that one leg ranks low
# (measured: 100 beats 50 on every metric; see bench/retrieval_eval.py).
CANDIDATES_PER_LEG = 100
BM25_K1 = 1.2
BM25_B = 0.75
# Every candidate is fetched and scored, so candidates are bounded: the rarest query terms select
# them until their chunk counts add up to this budget; chunks holding every query term are always
# candidates. Common terms still add to the score of every candidate.
CANDIDATE_BUDGET = 5000
# With postings (see core/search_stats.py), a common term's candidates are its postings: the chunks
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
# The text leg runs on its own connection while the vector leg runs on the caller's: the two
# queries overlap instead of adding up. Bounded so a burst of searches cannot open unbounded
# connections; a search waiting for a worker is no slower than running its legs one after the other.
TEXT_LEG_WORKERS = 8


@dataclass(frozen=True)
class SearchResult:
    passages: list[Passage]
    query_terms: int  # distinct search terms in the query after stemming and stopwords
    best_coverage: float  # share of those terms found in the best-covering passage
    best_similarity: float  # highest vector cosine similarity among the candidates


@dataclass(frozen=True)
class _Candidate:
    chunk_id: int
    document_id: int
    position: int


class Retriever:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        candidates: int = CANDIDATES_PER_LEG,
        fusion: Fusion = "convex",
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion
        self._text_legs = ThreadPoolExecutor(max_workers=TEXT_LEG_WORKERS, thread_name_prefix="text-leg")

    def search(
        self,
        query: str,
        *,
        collection_id: int,
        limit: int = 10,
        max_per_document: int = 2,
        mode: Mode = "hybrid",
        merge_neighbours: bool = True,
    ) -> SearchResult:
        # The legs overlap: the text leg runs on a pool thread while this one runs the vector leg.
        # Neither waits for the other while holding a connection, so a burst of searches cannot
        # take every pooled connection and then wait for one more.
        text_leg = self._text_legs.submit(self._text_leg_alone, query, collection_id) if mode != "vector" else None
        vector = self._vector_leg(query, collection_id) if mode != "text" else []
        text = text_leg.result() if text_leg is not None else []
        similarity = vector[0][1] if vector else 0.0
        fused = self._fuse({"hybrid": [vector, text], "vector": [vector], "text": [text]}[mode])
        with self.sessions() as session:
            candidates = self._load(session, [chunk_id for chunk_id, _ in fused])
            scores = dict(fused)
            chosen = _diversify([candidates[i] for i, _ in fused if i in candidates], max_per_document, limit)
            passages = self._passages(session, chosen, scores, merge_neighbours)
            terms, coverage = self._coverage(session, query, [p.chunk_id for p in passages])
        return SearchResult(passages, terms, coverage, similarity)

    def _fuse(self, legs: Sequence[Scored]) -> list[tuple[int, float]]:
        if self.fusion == "rrf":
            return reciprocal_rank_fusion([[chunk_id for chunk_id, _ in leg] for leg in legs])
        return convex_combination_fusion(legs)

    def _vector_leg(self, query: str, collection_id: int) -> Scored:
        """Nearest chunks by cosine similarity, best first, with their similarity."""
        dim = int(self.embedder.dimension)  # an int from our own embedder, safe to inline in the cast
        vector = self.embedder.embed_query(query)  # before taking a connection: it may be an API call
        if not any(vector):  # no features (e.g. only symbols): cosine is undefined
            return []
        with self.sessions() as session:
            session.execute(sa.text("SET LOCAL hnsw.ef_search = 100"))
            # pgvector 0.8: keep scanning the HNSW graph until enough rows pass the tenant filter.
            session.execute(sa.text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = session.execute(
                sa.text(
                    f"SELECT id, embedding::vector({dim}) <=> CAST(:q AS vector({dim})) AS distance "
                    "FROM document_chunks WHERE collection_id = :c AND vector_dims(embedding) = :dim "
                    f"ORDER BY embedding::vector({dim}) <=> CAST(:q AS vector({dim})) LIMIT :n"
                ),
                {"q": _vector_literal(vector), "c": collection_id, "dim": dim, "n": self.candidates},
            ).all()
        # relaxed_order may return rows slightly out of order; sort them exactly.
        rows = sorted(rows, key=lambda row: row.distance)
        return [(row.id, 1.0 - row.distance) for row in rows]

    def _text_leg_alone(self, query: str, collection_id: int) -> Scored:
        with self.sessions() as session:
            return self._text_leg(session, query, collection_id)

    def _text_leg(self, session: Session, query: str, collection_id: int) -> Scored:
        """BM25 over PostgreSQL full text: candidates from the GIN index, scored with IDF.

        ``websearch_to_tsquery`` ANDs every term, and questions rarely have all their words in
        one chunk, so candidates match any of the rarer query terms (see CANDIDATE_BUDGET) or
        all of them; common terms add to the score but do not pull in half the collection.
        """
        terms = session.scalar(
            sa.text("SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :query))"),
            {"cfg": TS_CONFIG, "query": query},
        )
        if not terms:
            return []
        chunk_count, avg_tokens, depth = session.execute(
            sa.select(Collection.chunk_count, Collection.avg_chunk_tokens, _usable_postings_depth()).where(
                Collection.id == collection_id
            )
        ).one()
        frequencies = dict(
            session.execute(
                sa.select(TermStat.lexeme, TermStat.df).where(
                    TermStat.collection_id == collection_id, TermStat.lexeme.in_(terms)
                )
            ).all()
        )
        total = max(chunk_count, 1)
        idf = {t: math.log(1 + (total - frequencies.get(t, 0) + 0.5) / (frequencies.get(t, 0) + 0.5)) for t in terms}
        common = [t for t in terms if depth is not None and frequencies.get(t, 0) > depth]
        if common:
            return self._text_leg_with_postings(session, idf, frequencies, common, collection_id, avg_tokens, total)
        parameters = _bm25_parameters(
            idf,
            candidates=_candidate_tsquery(terms, frequencies),
            collection_id=collection_id,
            average_tokens=max(avg_tokens, 1.0),
            limit=self.candidates,
        )
        rows = session.execute(_bm25_statement(len(idf)), parameters).all()
        return [(row.id, float(row.score)) for row in rows]

    def _text_leg_with_postings(
        self,
        session: Session,
        idf: dict[str, float],
        frequencies: dict[str, int],
        common: list[str],
        collection_id: int,
        avg_tokens: float,
        total_chunks: int,
    ) -> Scored:
        """BM25 over the chunks matching a rare term plus the best-placed chunks in the common terms' postings.

        A rare term (in at most the postings depth of chunks) brings all its chunks, as without
        postings; a common one only its postings, of which the best POSTINGS_SHORTLIST by partial
        score are kept, with the chunks holding every term if they are likely few. Every candidate
        is then scored exactly over all terms.
        """
        shortlist = session.scalars(
            _POSTINGS_SHORTLIST,
            {
                "collection_id": collection_id,
                "lexemes": common,
                "weights": [idf[t] for t in common],
                "limit": POSTINGS_SHORTLIST,
            },
        ).all()
        candidates = _postings_candidate_tsquery(list(idf), common, frequencies, total_chunks)
        parameters = _bm25_parameters(
            idf,
            candidates=candidates,
            collection_id=collection_id,
            average_tokens=max(avg_tokens, 1.0),
            limit=self.candidates,
        )
        parameters["shortlist"] = shortlist
        statement = _bm25_statement(len(idf), with_shortlist=True, with_tsquery=candidates is not None)
        rows = session.execute(statement, parameters).all()
        return [(row.id, float(row.score)) for row in rows]

    def _load(self, session: Session, chunk_ids: Sequence[int]) -> dict[int, _Candidate]:
        if not chunk_ids:
            return {}
        rows = session.execute(
            sa.text("SELECT id, document_id, position FROM document_chunks WHERE id = ANY(:ids)"),
            {"ids": list(chunk_ids)},
        )
        return {row.id: _Candidate(row.id, row.document_id, row.position) for row in rows}

    def _passages(
        self, session: Session, chosen: list[_Candidate], scores: dict[int, float], merge: bool
    ) -> list[Passage]:
        """Turn chosen chunks into passages; adjacent chunks of one document become one passage."""
        if not chosen:
            return []
        groups: list[list[_Candidate]] = []
        for candidate in chosen:
            for group in groups if merge else []:
                if group[0].document_id == candidate.document_id and any(
                    abs(member.position - candidate.position) == 1 for member in group
                ):
                    group.append(candidate)
                    break
            else:
                groups.append([candidate])
        ids = [c.chunk_id for c in chosen]
        rows = {
            row.id: row
            for row in session.execute(
                sa.text(
                    "SELECT id, document_id, position, title, heading, link, text "
                    "FROM document_chunks WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        }
        passages = []
        for group in groups:
            ordered = sorted(group, key=lambda c: c.position)
            first = rows[ordered[0].chunk_id]
            passages.append(
                Passage(
                    chunk_id=group[0].chunk_id,
                    document_id=first.document_id,
                    title=first.title,
                    heading=first.heading,
                    source=first.link,
                    text="\n\n".join(rows[c.chunk_id].text for c in ordered),
                    score=max(scores[c.chunk_id] for c in group),
                )
            )
        return passages

    def _coverage(self, session: Session, query: str, chunk_ids: list[int]) -> tuple[int, float]:
        """How many query terms exist, and the largest share of them one passage contains."""
        row = session.execute(
            sa.text(
                "WITH q AS (SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :query)) AS terms) "
                "SELECT cardinality(q.terms) AS n, coalesce(("
                "  SELECT max((SELECT count(*) FROM unnest(tsvector_to_array(c.tsv)) l WHERE l = ANY(q.terms)))"
                "  FROM document_chunks c WHERE c.id = ANY(:ids)), 0) AS best "
                "FROM q"
            ),
            {"cfg": TS_CONFIG, "query": query, "ids": chunk_ids},
        ).one()
        return row.n, (row.best / row.n if row.n else 0.0)


def _usable_postings_depth() -> sa.ColumnElement:
    """The collection's postings depth if its postings were built from its current term statistics, else NULL."""
    return sa.case(
        (Collection.postings_version == Collection.term_stats_version, Collection.postings_depth), else_=sa.null()
    ).label("postings_depth")


# The common terms' postings, best partial score first: sum of idf * impact over the terms whose
# postings hold the chunk (a lower bound of its score from those terms).
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
    collection are bound at execution (see _bm25_parameters). Term frequencies come from two
    ``ts_rank`` calls per term (see _term_frequency) computed once per chunk in an inner query
    (OFFSET 0 keeps the planner from inlining them into the score, which uses each twice).
    Constants are cast to float8 so the arithmetic is not ``numeric``. ``with_shortlist`` adds the
    chunks listed in ``:shortlist`` to the candidates; without ``with_tsquery`` they are the only ones.
    """
    chunks = DocumentChunk.__table__
    thresholds = sa.select(
        sa.cast(sa.bindparam("rank_thresholds", RANK_THRESHOLDS), ARRAY(DOUBLE_PRECISION)).label("th")
    ).subquery("rank_thresholds")
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
        rank = sa.func.ts_rank(sa.cast(weights, ARRAY(REAL)), tsv, query)
        return sa.func.width_bucket(sa.cast(rank, DOUBLE_PRECISION), thresholds)

    return positions(EVERY_WEIGHT) + 2 * positions(ONLY_A)


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


def convex_combination_fusion(legs: Sequence[Scored]) -> list[tuple[int, float]]:
    """Average of each leg's min-max normalised score; a chunk a leg did not return gets 0 there.

    Equal weights: no leg is known in advance to be the better one for an unseen collection and
    question (a learned weight would fit whatever data it was learned on).
    """
    scores: dict[int, float] = {}
    for leg in legs:
        for chunk_id, normalised in _min_max(leg).items():
            scores[chunk_id] = scores.get(chunk_id, 0.0) + normalised / len(legs)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _min_max(leg: Scored) -> dict[int, float]:
    """Scores mapped onto [0, 1] over this leg's candidates: the best gets 1, the last 0.

    Cosine similarities and BM25 scores live on unrelated scales; this puts them on one. When all
    candidates score the same (e.g. a single full-text match) each gets 1: it is the leg's best.
    """
    if not leg:
        return {}
    high = max(score for _, score in leg)
    low = min(score for _, score in leg)
    if high - low <= 1e-12:
        return {chunk_id: 1.0 for chunk_id, _ in leg}
    return {chunk_id: (score - low) / (high - low) for chunk_id, score in leg}


def reciprocal_rank_fusion(ranked_lists: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _diversify(candidates: list[_Candidate], max_per_document: int, limit: int) -> list[_Candidate]:
    per_document: dict[int, int] = {}
    chosen = []
    for candidate in candidates:
        if per_document.get(candidate.document_id, 0) >= max_per_document:
            continue
        per_document[candidate.document_id] = per_document.get(candidate.document_id, 0) + 1
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return chosen


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.6g}" for x in vector) + "]"
