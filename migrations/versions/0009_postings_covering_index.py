"""Carry each posting's impact in the term_postings primary key, so the shortlist reads only the index.

The text leg's postings shortlist (core/search/bm25.py) reads every posting of a question's common words
(up to the postings depth, 1,000, per word: 12,000-16,000 rows for a long question) for their
chunk and impact. The primary key (collection_id, lexeme, chunk_id) found them, but each row's
impact cost a visit to its heap page (~12,000 buffer hits); with impact INCLUDEd, an index-only
scan reads ~150 index pages. On a copy of the 101,615-chunk bench collection's postings
(605,000 rows): the shortlist for the questions with 10+ common words took 9.3 instead of 15.3 ms
(median). A separate covering index read as fast but made every postings rebuild maintain two
indexes (inserting 605,000 postings: +1.1-1.7 s against +0.5 s for the wider key).

Index-only scans skip the heap only on pages the visibility map marks all-visible: right after a
postings rebuild the shortlist reads the heap as before, until autovacuum has been through.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE term_postings DROP CONSTRAINT term_postings_pkey,"
        " ADD CONSTRAINT term_postings_pkey PRIMARY KEY (collection_id, lexeme, chunk_id) INCLUDE (impact)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE term_postings DROP CONSTRAINT term_postings_pkey,"
        " ADD CONSTRAINT term_postings_pkey PRIMARY KEY (collection_id, lexeme, chunk_id)"
    )
