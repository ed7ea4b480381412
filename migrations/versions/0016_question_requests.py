"""Question deliveries remember the request that asked (an idempotency key), once.

Doors whose caller waits (REST API, playground, CLI) now record a delivery too, with the
client's key (``Idempotency-Key`` / ``request_id``, scoped to who asked): a retried request finds
its question instead of asking again. A nullable column with a unique index: the previous
release's INSERTs (which leave it out) keep working, nothing is rewritten, and the index is built
concurrently.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE question_deliveries ADD COLUMN IF NOT EXISTS request_key varchar(200)")
    with op.get_context().autocommit_block():  # built beside live traffic, not under a table lock
        op.create_index("uq_question_deliveries_request_key", "question_deliveries", ["request_key"], unique=True,
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    op.drop_index("uq_question_deliveries_request_key", table_name="question_deliveries")
    op.drop_column("question_deliveries", "request_key")
