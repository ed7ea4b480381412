"""One halfvec HNSW index per collection instead of one shared full-precision index per dimension.

Why (details in core/search/vector_index.py):
- A shared index took every ingested chunk into its graph one by one (~4.5 ms of server CPU a
  chunk at 1,024 dimensions). A collection's own index is built from all its chunks at once,
  when an ingest first leaves it with VECTOR_INDEX_MIN_CHUNKS chunks; smaller ones are scanned exactly.
- halfvec halves the index: a 1,024-float element filled an 8 KB page (794 MB for 101,615
  chunks); as halfvec it is 265 MB, so the graph stays in cache. Ranking is unchanged to three
  decimals on bench/retrieval_eval.py. It also indexes up to 4,000 dimensions.
- ef_construction 32: builds a third faster for slightly lower graph recall (figures in core/search/vector_index.py).

Upgrading builds the index of every collection that already has 2,000 chunks or more: about a
minute per 100,000 chunks on 2 cores.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SHARED_DIMENSIONS = (384, 768, 1024, 1536)
MIN_CHUNKS = 2000  # core/search/vector_index.py VECTOR_INDEX_MIN_CHUNKS at the time of writing
MAX_DIMENSION = 4000


def upgrade() -> None:
    for dim in SHARED_DIMENSIONS:
        op.execute(f"DROP INDEX IF EXISTS ix_document_chunks_embedding_{dim}")
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.id, c.dimension FROM collections c "
            "WHERE (SELECT count(*) FROM document_chunks d WHERE d.collection_id = c.id) >= :n AND c.dimension <= :max"
        ),
        {"n": MIN_CHUNKS, "max": MAX_DIMENSION},
    ).all()
    for collection_id, dim in rows:
        c, d = int(collection_id), int(dim)
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_chunk_vectors_c{c}_d{d} ON document_chunks "
            f"USING hnsw ((embedding::halfvec({d})) halfvec_cosine_ops) WITH (ef_construction = 32) "
            f"WHERE collection_id = {c} AND vector_dims(embedding) = {d}"
        )


def downgrade() -> None:
    names = op.get_bind().execute(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'document_chunks' AND indexname LIKE 'ix_chunk_vectors_c%'")
    ).scalars().all()
    for name in names:
        op.execute(f'DROP INDEX IF EXISTS "{name}"')
    for dim in SHARED_DIMENSIONS:
        op.execute(
            f"CREATE INDEX ix_document_chunks_embedding_{dim} ON document_chunks "
            f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE vector_dims(embedding) = {dim}"
        )
