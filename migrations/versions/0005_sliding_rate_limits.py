"""Rate limits: a sliding-window log per scope instead of fixed-window counters.

Fixed windows admitted up to twice the limit around a window boundary (N requests at 11:59:59
and N more at 12:00:00). The counters are transient, so the table is recreated rather than
converted: at most one window's worth of requests is forgotten on upgrade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("rate_limits")
    op.create_table(
        "rate_limits",
        sa.Column("scope", sa.String(400), primary_key=True),
        sa.Column("hits", ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"])


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.create_table(
        "rate_limits",
        sa.Column("scope", sa.String(400), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_rate_limits_window_end", "rate_limits", ["window_end"])
