"""Keep each chunk's tsvector in its table row, not in the TOAST table.

Scoring a BM25 candidate reads its tsvector once per query term and weight. A row holds the text,
the tsvector and a 1,024-float embedding, so PostgreSQL moved the largest tsvectors (17% of a
100,000-chunk bench collection) out of line, and every read of one fetched it from the TOAST
table again: 6 ts_rank calls took ~35 us per such row against ~3 us inline. With storage MAIN,
the text (read only for the final passages) leaves the row before the tsvector does.

Applies to rows written from now on: a document's chunks are rewritten when it changes. Existing
rows are left where they are rather than rewriting every chunk (and its index entries) here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE document_chunks ALTER COLUMN tsv SET STORAGE MAIN")


def downgrade() -> None:
    op.execute("ALTER TABLE document_chunks ALTER COLUMN tsv SET STORAGE EXTENDED")
