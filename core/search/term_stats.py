"""Per-collection term statistics: what BM25 needs and PostgreSQL's own ranking lacks.

``ts_rank`` gives a rare word no more weight than a common one; BM25 weighs each query term by
its inverse document frequency. Document frequencies are recomputed after every ingest that
changed something (a few seconds for 100,000 chunks), so queries only look them up.

Postings for common lexemes: a lexeme in thousands of chunks would make the text leg fetch every
one of them. For each lexeme in more than ``POSTINGS_DEPTH`` chunks, ``term_postings`` keeps the
``POSTINGS_DEPTH`` chunks where it weighs most (its BM25 impact without idf, which is the same for
every chunk of a term, so the order is that of the BM25 contribution). Building them sorts every
occurrence of every common lexeme (~25 s for 100,000 chunks on a loaded 2-core machine), too slow
for the ingest path: small builds run inline, larger ones in a background job (see
refresh_stale_postings), and queries ignore postings built from older statistics.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.search.bm25 import BM25_B, BM25_K1
from core.tenancy.collections import TERM_STATS_LOCK, lock_collection
from core.storage.models import Collection, DocumentChunk, TermPosting, TermStat

log = logging.getLogger(__name__)

# Measured on 101,615 chunks (see docs/RETRIEVAL.md): 1000 keeps p95 of the text leg under 50 ms
# with top-10 overlap ~0.84 against exhaustive BM25; 500 was slower overall and lost quality.
POSTINGS_DEPTH = 1000
# Occurrences of common lexemes a build may sort inside the ingest path (~0.5 s at load 5);
# more than this is left to the background job so ingestion keeps its throughput.
INLINE_POSTINGS_LIMIT = 100_000
# A build holds the occurrences of every common lexeme in memory to rank them.
BUILD_WORK_MEM = "256MB"


def refresh_term_stats(sessions: sessionmaker[Session], collection_id: int) -> None:
    with sessions.begin() as session:
        # Two ingests of one collection finishing together would both delete and re-insert the
        # same rows (a unique violation for the second): one refresh at a time, the later one
        # seeing the earlier one's chunks and statistics.
        lock_collection(session, TERM_STATS_LOCK, collection_id)
        session.execute(sa.delete(TermStat).where(TermStat.collection_id == collection_id))
        lexeme = sa.func.unnest(sa.func.tsvector_to_array(DocumentChunk.tsv)).label("lexeme")
        per_chunk = (
            sa.select(lexeme).where(DocumentChunk.collection_id == collection_id).subquery()
        )
        session.execute(
            sa.insert(TermStat).from_select(
                ["collection_id", "lexeme", "df"],
                sa.select(sa.literal(collection_id), per_chunk.c.lexeme, sa.func.count()).group_by(per_chunk.c.lexeme),
            )
        )
        count, average = session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.avg(DocumentChunk.token_count), 0.0)).where(
                DocumentChunk.collection_id == collection_id
            )
        ).one()
        session.execute(
            sa.update(Collection)
            .where(Collection.id == collection_id)
            .values(
                chunk_count=count,
                avg_chunk_tokens=float(average),
                term_stats_version=Collection.term_stats_version + 1,
            )
        )
    if common_occurrences(sessions, collection_id) <= INLINE_POSTINGS_LIMIT:
        refresh_term_postings(sessions, collection_id)


def postings_depth(collection: Collection) -> int:
    """The collection's depth: ``settings["postings_depth"]`` overrides the default (tests use tiny ones)."""
    return int((collection.settings or {}).get("postings_depth", POSTINGS_DEPTH))


def common_occurrences(sessions: sessionmaker[Session], collection_id: int) -> int:
    """How many (chunk, lexeme) pairs a postings build would rank: the occurrences of common lexemes."""
    with sessions() as session:
        depth = postings_depth(session.get_one(Collection, collection_id))
        return session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(TermStat.df), 0)).where(
                TermStat.collection_id == collection_id, TermStat.df > depth
            )
        )


def refresh_term_postings(sessions: sessionmaker[Session], collection_id: int) -> bool:
    """Rebuild the collection's postings from its current chunks; False if its statistics changed meanwhile.

    One REPEATABLE READ snapshot: the chunks ranked, the statistics deciding which lexemes are
    common and the version recorded all agree. If term statistics are refreshed concurrently, the
    final update conflicts and the build is dropped (the next one sees the new chunks).
    """
    try:
        with sessions.begin() as session:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            session.execute(sa.text(f"SET LOCAL work_mem = '{BUILD_WORK_MEM}'"))
            collection = session.get_one(Collection, collection_id)
            depth, version = postings_depth(collection), collection.term_stats_version
            session.execute(sa.delete(TermPosting).where(TermPosting.collection_id == collection_id))
            session.execute(_build_statement(), {
                "collection_id": collection_id,
                "depth": depth,
                "length_base": BM25_K1 * (1 - BM25_B),
                "length_slope": BM25_K1 * BM25_B / max(collection.avg_chunk_tokens, 1.0),
            })
            session.execute(
                sa.update(Collection)
                .where(Collection.id == collection_id)
                .values(postings_version=version, postings_depth=depth)
            )
        return True
    except sa.exc.OperationalError as error:
        if getattr(error.orig, "pgcode", None) == "40001":  # serialization failure: a refresh won the race
            log.info("postings.build_superseded collection=%s", collection_id)
            return False
        raise


def refresh_stale_postings(sessions: sessionmaker[Session]) -> list[int]:
    """Rebuild the postings of every collection whose term statistics moved on; the background job's body."""
    with sessions() as session:
        stale = session.scalars(
            sa.select(Collection.id).where(Collection.postings_version.is_distinct_from(Collection.term_stats_version))
        ).all()
    return [collection_id for collection_id in stale if refresh_term_postings(sessions, collection_id)]


def _build_statement() -> sa.TextClause:
    # Term frequency as the text leg counts it (title and heading words, weight A, thrice). The
    # common lexemes are numbered so the ranking sorts integers, not text (several times faster).
    return sa.text(
        "WITH common AS MATERIALIZED ("
        "  SELECT lexeme, CAST(row_number() OVER () AS int) AS term_no FROM term_stats"
        "  WHERE collection_id = :collection_id AND df > :depth),"
        " occurrences AS MATERIALIZED ("
        "  SELECT common.term_no, c.id AS chunk_id,"
        "   CAST(u.tf AS float8) / (u.tf + CAST(:length_base AS float8) + CAST(:length_slope AS float8) * c.token_count)"
        "    AS impact"
        "  FROM document_chunks c CROSS JOIN LATERAL ("
        "   SELECT u.lexeme, cardinality(u.positions) + 2 * cardinality(array_positions(u.weights, 'A')) AS tf"
        "   FROM unnest(c.tsv) u) u"
        "  JOIN common ON common.lexeme = u.lexeme"
        "  WHERE c.collection_id = :collection_id)"
        " INSERT INTO term_postings (collection_id, lexeme, chunk_id, impact)"
        " SELECT :collection_id, common.lexeme, ranked.chunk_id, ranked.impact FROM ("
        "  SELECT term_no, chunk_id, impact,"
        "   row_number() OVER (PARTITION BY term_no ORDER BY impact DESC, chunk_id) AS rank"
        "  FROM occurrences) ranked"
        " JOIN common USING (term_no) WHERE ranked.rank <= :depth"
    )
