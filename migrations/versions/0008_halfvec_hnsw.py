"""HNSW indexes on half-precision copies of the embeddings.

A 1,024-float vector is 4 KB, so each HNSW element took a whole 8 KB index page: 794 MB for the
101,615-chunk bench collection, more than the cache, so searches read pages from the operating
system and every ingested chunk dirtied a page per graph neighbour it touched. As halfvec the
same index is 265 MB (three elements a page), and cosine ranking is unchanged at this precision
(retrieval quality was re-measured, see bench/retrieval_eval.py). halfvec also indexes up to
4,000 dimensions, so 3,072 (text-embedding-3-large) gets an index too.

The table keeps full-precision vectors; only the indexes change. Rebuilding an index reads every
chunk of its dimension: about a minute per 100,000 chunks on 2 cores.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_DIMENSIONS = (384, 768, 1024, 1536)
NEW_DIMENSIONS = (384, 768, 1024, 1536, 3072)


def upgrade() -> None:
    for dim in OLD_DIMENSIONS:
        op.execute(f"DROP INDEX IF EXISTS ix_document_chunks_embedding_{dim}")
    for dim in NEW_DIMENSIONS:
        op.execute(
            f"CREATE INDEX ix_document_chunks_embedding_{dim} ON document_chunks "
            f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) WHERE vector_dims(embedding) = {dim}"
        )


def downgrade() -> None:
    for dim in NEW_DIMENSIONS:
        op.execute(f"DROP INDEX IF EXISTS ix_document_chunks_embedding_{dim}")
    for dim in OLD_DIMENSIONS:
        op.execute(
            f"CREATE INDEX ix_document_chunks_embedding_{dim} ON document_chunks "
            f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE vector_dims(embedding) = {dim}"
        )
