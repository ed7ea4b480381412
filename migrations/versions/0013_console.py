"""The console's tables (issue 14): question traces, daily counts (questions and feedback), citations and votes per document, the
latest knowledge gaps, and each workspace's privacy choice. All new tables: nothing existing changes.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def _collection() -> sa.Column:
    return sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False)


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "question_traces",
        sa.Column("id", sa.BigInteger, primary_key=True),
        _collection(),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("workspace", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("question_id", sa.BigInteger),
        sa.Column("answer_id", sa.BigInteger),
        _now("asked_at"),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("confidence", REAL),
        sa.Column("question", sa.Text),
        sa.Column("standalone_query", sa.Text),
        sa.Column("passages", JSONB, server_default="[]", nullable=False),
        sa.Column("cited_documents", ARRAY(sa.Integer), server_default="{}", nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("timings", JSONB, server_default="{}", nullable=False),
        sa.Column("total_ms", REAL),
    )
    op.create_index("ix_question_traces_collection_asked", "question_traces", ["collection_id", "asked_at"])
    op.create_index("ix_question_traces_user", "question_traces", ["platform", "user_id"])
    op.create_index("ix_question_traces_asked", "question_traces", ["asked_at"])
    op.create_index("ix_question_traces_answer", "question_traces", ["answer_id"])
    op.create_table(
        "question_daily",
        _collection(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("latency_bucket", sa.SmallInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "day", "platform", "outcome", "latency_bucket"),
    )
    op.create_table(
        "document_citations",
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
        _collection(),
        sa.Column("cited", sa.Integer, nullable=False),
        sa.Column("up", sa.Integer, server_default="0", nullable=False),
        sa.Column("down", sa.Integer, server_default="0", nullable=False),
        _now("last_cited_at"),
    )
    op.create_table(
        "feedback_daily",
        _collection(),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("up", sa.Integer, nullable=False),
        sa.Column("down", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "day"),
    )
    op.create_table(
        "knowledge_gaps",
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
        _now("computed_at"),
        sa.Column("questions", sa.Integer, nullable=False),
        sa.Column("topics", JSONB, server_default="[]", nullable=False),
    )
    op.create_table(
        "workspace_privacy",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("workspace", sa.String(128), primary_key=True),
        sa.Column("store_question_text", sa.Boolean, nullable=False),
        _now("updated_at"),
    )
    op.create_table(
        "digest_channels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("workspace", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        _collection(),
        sa.Column("last_week", sa.Date),
        _now("created_at"),
        sa.UniqueConstraint("platform", "workspace", "channel", name="uq_digest_channels"),
    )


def downgrade() -> None:
    for table in ("digest_channels", "workspace_privacy", "knowledge_gaps", "feedback_daily", "document_citations", "question_daily", "question_traces"):
        op.drop_table(table)
