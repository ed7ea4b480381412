"""Signed-in web sessions: the playground and the console open only to signed-in people.

A session row is found by the SHA-256 of the random token in the browser's cookie: a copy of the
table (a backup, a read replica) does not let anyone sign in. ``workspaces`` are the Slack
workspaces or Discord servers that granted access at sign-in; the collections they may read are
looked up on every request, so unmapping a workspace takes effect at once.

Revision ID: 0012
Revises: 0015
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("workspaces", JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_table("web_sessions")
