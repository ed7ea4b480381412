"""Hybrid search inside PostgreSQL: pgvector cosine + full text, fused by reciprocal rank.

Each leg returns its best candidates for one collection; reciprocal rank fusion (RRF) rewards
chunks both legs like without having to calibrate their scores against each other. Then the
fused list is diversified (a cap per document) and neighbouring chunks of one document are
merged into one passage, so the context reads as the document does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.embeddings import Embedder
from core.models import SIGN_BITS_DIMENSIONS, TS_CONFIG, Collection, TermStat, sign_bits
from core.types import Passage

Mode = Literal["hybrid", "vector", "text"]

# k=60 as in the RRF paper. A deep candidate list from each leg lets fusion rescue a chunk
# that one leg ranks low (measured: 100 beats 50 on every metric; see bench/retrieval_eval.py).
RRF_K = 60
CANDIDATES_PER_LEG = 100
# Sign bits (see migration 0006) only approximate cosine, so their index shortlists this many
# times the candidates and exact cosine picks among them. Measured against exact cosine on 50,000
# bench chunks (100 queries), recall@10 / recall@100: 4x 0.56 / 0.42, 5x 0.61 / 0.47, 6x 0.63 /
# 0.51; the float index this replaced, 0.59 / 0.50. 5x keeps the top about as good as it was.
SIGN_BITS_SHORTLIST_FACTOR = 5
BM25_K1 = 1.2
BM25_B = 0.75
# Scoring a candidate means unpacking its terms (~30 µs), so candidates are bounded: the rarest
# query terms select them until their chunk counts add up to this budget; chunks holding every
# query term are always candidates. Common terms still add to the score of every candidate.
CANDIDATE_BUDGET = 5000


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
    def __init__(self, *, sessions: sessionmaker[Session], embedder: Embedder, candidates: int = CANDIDATES_PER_LEG):
        self.sessions = sessions
        self.embedder = embedder
        self.candidates = candidates

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
        with self.sessions() as session:
            session.execute(sa.text("SET LOCAL hnsw.ef_search = 100"))
            # pgvector 0.8: keep scanning the HNSW graph until enough rows pass the tenant filter.
            session.execute(sa.text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            ranked_lists: list[list[int]] = []
            similarity = 0.0
            if mode in ("hybrid", "vector"):
                ids, similarity = self._vector_leg(session, query, collection_id)
                ranked_lists.append(ids)
            if mode in ("hybrid", "text"):
                ranked_lists.append(self._text_leg(session, query, collection_id))
            fused = reciprocal_rank_fusion(ranked_lists)
            candidates = self._load(session, [chunk_id for chunk_id, _ in fused])
            scores = dict(fused)
            chosen = _diversify([candidates[i] for i, _ in fused if i in candidates], max_per_document, limit)
            passages = self._passages(session, chosen, scores, merge_neighbours)
            terms, coverage = self._coverage(session, query, [p.chunk_id for p in passages])
        return SearchResult(passages, terms, coverage, similarity)

    def _vector_leg(self, session: Session, query: str, collection_id: int) -> tuple[list[int], float]:
        dim = int(self.embedder.dimension)  # an int from our own embedder, safe to inline in the cast
        vector = self.embedder.embed_query(query)
        if not any(vector):  # no features (e.g. only symbols): cosine is undefined
            return [], 0.0
        exact = f"embedding::vector({dim}) <=> CAST(:q AS vector({dim}))"
        if dim in SIGN_BITS_DIMENSIONS:
            rows = self._sign_bits_candidates_reranked(session, exact, dim, vector, collection_id)
        else:
            rows = session.execute(
                sa.text(
                    f"SELECT id, {exact} AS distance "
                    "FROM document_chunks WHERE collection_id = :c AND vector_dims(embedding) = :dim "
                    f"ORDER BY {exact} LIMIT :n"
                ),
                {"q": _vector_literal(vector), "c": collection_id, "dim": dim, "n": self.candidates},
            ).all()
        # relaxed_order may return rows slightly out of order; sort them exactly.
        rows = sorted(rows, key=lambda row: row.distance)
        best = 1.0 - rows[0].distance if rows else 0.0
        return [row.id for row in rows], best

    def _sign_bits_candidates_reranked(
        self, session: Session, exact: str, dim: int, vector: Sequence[float], collection_id: int
    ) -> Sequence[sa.Row]:
        """Nearest by sign bits through their HNSW index (migration 0006), then re-ranked by exact cosine."""
        shortlist = self.candidates * SIGN_BITS_SHORTLIST_FACTOR
        # The graph search must look at least as far as the shortlist is long (pgvector's maximum is
        # 1000). An int of our own, safe to inline; a SET like search()'s, so bench/query.py's
        # EXPLAIN replays it.
        session.execute(sa.text(f"SET LOCAL hnsw.ef_search = {int(min(shortlist, 1000))}"))
        indexed, probe = sign_bits(f"embedding::vector({dim})", dim), sign_bits(f"CAST(:q AS vector({dim}))", dim)
        return session.execute(
            sa.text(
                f"SELECT id, {exact} AS distance FROM ("
                "  SELECT id, embedding FROM document_chunks "
                "  WHERE collection_id = :c AND vector_dims(embedding) = :dim "
                f"  ORDER BY {indexed} <%> {probe} LIMIT :shortlist"
                ") AS shortlist ORDER BY distance LIMIT :n"
            ),
            {"q": _vector_literal(vector), "c": collection_id, "dim": dim, "shortlist": shortlist, "n": self.candidates},
        ).all()

    def _text_leg(self, session: Session, query: str, collection_id: int) -> list[int]:
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
        chunk_count, avg_tokens = session.execute(
            sa.select(Collection.chunk_count, Collection.avg_chunk_tokens).where(Collection.id == collection_id)
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
        candidates_query = _candidate_tsquery(terms, frequencies)
        rows = session.execute(
            sa.text(
                "WITH q AS (SELECT * FROM unnest(CAST(:terms AS text[]), CAST(:idfs AS float8[])) AS q(lexeme, idf)) "
                "SELECT c.id, sum(q.idf * t.tf * (:k1 + 1) / "
                "  (t.tf + :k1 * (1 - :b + :b * c.token_count / :avgdl))) AS score "
                "FROM document_chunks c "
                "CROSS JOIN LATERAL ("
                # Title and heading words (weight A) count three times: they say what a chunk is about.
                "  SELECT u.lexeme, cardinality(u.positions) + 2 * cardinality(array_positions(u.weights, 'A')) AS tf "
                "  FROM unnest(c.tsv) AS u) t "
                "JOIN q ON q.lexeme = t.lexeme "
                "WHERE c.collection_id = :c AND c.tsv @@ CAST(:candidates AS tsquery) "
                "GROUP BY c.id ORDER BY score DESC, c.id LIMIT :n"
            ),
            {
                "terms": list(idf),
                "idfs": list(idf.values()),
                "candidates": candidates_query,
                "k1": BM25_K1,
                "b": BM25_B,
                "avgdl": max(avg_tokens, 1.0),
                "c": collection_id,
                "n": self.candidates,
            },
        ).all()
        return [row.id for row in rows]

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


def _tsquery_literal(lexeme: str) -> str:
    """A lexeme quoted for tsquery input, taken as is (no second normalisation)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


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
