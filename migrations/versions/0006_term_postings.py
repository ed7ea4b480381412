"""Impact-ordered postings for common lexemes, so the BM25 leg need not visit every chunk holding them.

A common lexeme (in more chunks than a collection's postings depth) matches thousands of chunks;
fetching all of them is most of a text search's cost. ``term_postings`` keeps, per common lexeme,
only the chunks where it weighs most in BM25 (see core/search/term_stats.py). The collection records
which version of its term statistics the postings were built from: queries use them only while
they match, and otherwise fall back to the path without postings.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("collections", sa.Column("term_stats_version", sa.Integer, nullable=False, server_default="0"))
    op.add_column("collections", sa.Column("postings_version", sa.Integer, nullable=True))
    op.add_column("collections", sa.Column("postings_depth", sa.Integer, nullable=True))
    op.create_table(
        "term_postings",
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lexeme", sa.Text, primary_key=True),
        sa.Column("chunk_id", sa.BigInteger, primary_key=True),
        sa.Column("impact", sa.REAL, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("term_postings")
    op.drop_column("collections", "postings_depth")
    op.drop_column("collections", "postings_version")
    op.drop_column("collections", "term_stats_version")
