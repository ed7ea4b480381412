"""Channels choose whether their resolved threads become learned answers (default: they do).

A constant server default keeps the previous release's INSERTs working and adds the column
without rewriting the table.

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "channel_settings",
        sa.Column("learn_from_threads", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.drop_column("channel_settings", "learn_from_threads")
