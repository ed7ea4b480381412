"""Question deliveries: where each accepted chat question is answered, and whether it was.

A new table (nothing reads it before this release): one row per question a chat platform awaits,
holding the serialisable way back to its thread, the placeholder message to replace, the attempts
made and when it was delivered. Any worker can then finish a question after a crash, by updating
the placeholder. The previous release neither reads nor writes it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "question_deliveries",
        sa.Column("question_id", sa.BigInteger(), sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("where", postgresql.JSONB(), nullable=False),
        sa.Column("placeholder", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_question_deliveries_undelivered", "question_deliveries", ["created_at"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("question_deliveries")
