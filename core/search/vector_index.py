"""One HNSW index per collection, built once the collection is large enough to need one.

A shared index per dimension had to take every chunk into its graph one by one as it was
ingested: about 4.5 ms of server CPU a chunk at 1,024 dimensions, which capped a first ingest at
~290 chunks/s on 2 cores. Building the graph from the finished collection instead (as pgvector
advises for initial loads) costs a third of that. So:

* a collection below ``VECTOR_INDEX_MIN_CHUNKS`` has no index: the vector leg scans it exactly,
  as fast as a graph search at that size (~5 us a chunk) and with perfect recall;
* when an ingest leaves it at or above that size, its index is built from all its chunks; from
  then on PostgreSQL keeps the index current as chunks change, which costs only per changed chunk;
* the index covers the chunks of one collection and one dimension (a partial index), so searches
  need no filter inside the graph, and a re-embedded collection gets an index for its new size.

The graph is built with ef_construction 32 instead of pgvector's 64. Measured on the 101,615-chunk
bench collection (hashing embedder, ef_search 100, 100 questions): the build takes 41 instead of
63 s, and the share of the exact 10 nearest chunks found falls from 0.532 to 0.513 (0.454 to
0.416 of the nearest 100). That recall is low either way: hashed word vectors are sparse, and
short questions have few features, so the graph routes poorly to them (0.86 needs ef_search 800,
26 ms); the full-text leg finds those chunks by their words. A first ingest of 50,365 chunks
takes 44 s instead of 57 s.

Vectors are indexed as halfvec: half the index of full floats (three 1,024-dimension elements
a page instead of one), the same ranking to three decimals on bench/retrieval_eval.py, and
indexable up to 4,000 dimensions.
"""
from __future__ import annotations

import logging
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.tenancy.collections import VECTOR_INDEX_LOCK, lock_collection

log = logging.getLogger(__name__)

VECTOR_INDEX_MIN_CHUNKS = 2000  # exact scan of 2,000 chunks: ~11 ms, like a graph search
MAX_INDEXED_DIMENSION = 4000  # pgvector's HNSW limit for halfvec
INDEX_PREFIX = "ix_chunk_vectors_c"


def index_name(collection_id: int, dimension: int) -> str:
    return f"{INDEX_PREFIX}{int(collection_id)}_d{int(dimension)}"


def index_definition(collection_id: int, dimension: int) -> str:
    """The DDL of a collection's index (see the module docstring for ef_construction).

    Ids are ints, so inlining them is safe; DDL takes no bound parameters.
    """
    c, d = int(collection_id), int(dimension)
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(c, d)} ON document_chunks "
        f"USING hnsw ((embedding::halfvec({d})) halfvec_cosine_ops) WITH (ef_construction = 32) "
        f"WHERE collection_id = {c} AND vector_dims(embedding) = {d}"
    )


def ensure_vector_index(
    sessions: sessionmaker[Session],
    collection_id: int,
    *,
    min_chunks: int = VECTOR_INDEX_MIN_CHUNKS,
    announce: Callable[[str], None] | None = None,
) -> bool:
    """Give the collection an index for its dimension if it is large enough; drop ones it outgrew.

    Returns whether an index was built. A plain CREATE INDEX, not CONCURRENTLY: it never waits
    for unrelated open transactions, and searches go on meanwhile; only other ingests' writes to
    chunks wait for it (~20 s per 50,000 chunks on 2 cores). Dropping an index locks out searches
    of every collection, so drops commit at once, before any build.
    """
    with sessions.begin() as session:
        _lock(session, collection_id)
        dimension, chunks, existing = _state(session, collection_id)
        wanted = index_name(collection_id, dimension)
        for name, valid in existing.items():
            if name != wanted or not valid:  # another dimension (re-embedded), or a build that died
                session.execute(sa.text(f'DROP INDEX IF EXISTS "{name}"'))
    if existing.get(wanted) or chunks < min_chunks or dimension > MAX_INDEXED_DIMENSION:
        return False
    with sessions.begin() as session:
        _lock(session, collection_id)  # a concurrent ingest of the same collection builds it only once
        log.info("vector_index.build collection=%s chunks=%s dimension=%s", collection_id, chunks, dimension)
        if announce:
            announce(f"Building the collection's vector index ({chunks:,} chunks; ~20 s per 50,000 on 2 cores)")
        # The graph is built in memory when it fits: ~2.5 KB a 1,024-dimension chunk.
        needed_kb = min(2 * 2**20, chunks * (dimension * 2 + 512) * 3 // 2 // 1024)
        current_kb = session.scalar(sa.text("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'"))
        if needed_kb > current_kb:
            session.execute(sa.text(f"SET LOCAL maintenance_work_mem = '{int(needed_kb)}kB'"))
        session.execute(sa.text(index_definition(collection_id, dimension)))  # IF NOT EXISTS
    return True


def _lock(session: Session, collection_id: int) -> None:
    lock_collection(session, VECTOR_INDEX_LOCK, collection_id)


def _state(session: Session, collection_id: int) -> tuple[int, int, dict[str, bool]]:
    """The collection's dimension, its chunk count, and its vector indexes with their validity."""
    # chunk_count is kept by refresh_term_stats, which every changing ingest runs first.
    dimension, chunks = session.execute(
        sa.text("SELECT dimension, chunk_count FROM collections WHERE id = :c"), {"c": collection_id}
    ).one()
    existing = session.execute(
        sa.text(
            "SELECT i.relname, x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'document_chunks'::regclass AND i.relname LIKE :pattern"
        ),
        {"pattern": f"{INDEX_PREFIX}{int(collection_id)}\\_d%"},
    ).all()
    return dimension, chunks, dict(existing)
