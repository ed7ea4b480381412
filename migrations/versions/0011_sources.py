"""Sources as first-class objects: what was ingested, how, and how it is kept in sync.

``sources`` records each folder, URL/sitemap or git repository a collection is fed from, its
schedule, and its last sync. ``documents.source_id`` says which source brought a document in;
deleting a source deletes exactly its documents (ON DELETE CASCADE).

Documents ingested before this migration are given a source each by what their metadata already
records: one source per (collection, ingested root), of kind ``url`` for web roots, ``upload`` for
API uploads and ``folder`` otherwise. The previous release keeps working on the new schema: it
never sets ``source_id`` (NULL: a document of no source, as before) and never reads ``sources``.

Revision ID: 0011
Revises: 0012 (main's newest when this branch last merged it; the lead re-chains numbers)
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The index at the end is built outside the transaction, which commits what comes before it: a
    # rerun after a failure there (a lock timeout on alembic_version) finds those steps done.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "sources" not in existing:
        _create_sources()
    op.execute("ALTER TABLE documents ADD COLUMN IF NOT EXISTS source_id integer")
    foreign_keys = {fk["name"] for fk in sa.inspect(op.get_bind()).get_foreign_keys("documents")}
    if "documents_source_id_fkey" not in foreign_keys:
        op.execute(
            "ALTER TABLE documents ADD CONSTRAINT documents_source_id_fkey FOREIGN KEY (source_id) "
            "REFERENCES sources (id) ON DELETE CASCADE NOT VALID"
        )
    op.execute("ALTER TABLE documents VALIDATE CONSTRAINT documents_source_id_fkey")
    _backfill()
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_documents_source_id", "documents", ["source_id"], postgresql_concurrently=True, if_not_exists=True
        )


def _create_sources() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("options", JSONB, nullable=False, server_default="{}"),
        sa.Column("credentials", JSONB, nullable=False, server_default="{}"),
        sa.Column("schedule", sa.String(100), nullable=True),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", JSONB, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False, server_default="new"),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_seconds", sa.Float, nullable=True),
        sa.Column("last_counts", JSONB, nullable=False, server_default="{}"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("collection_id", "name", name="uq_sources_collection_name"),
    )
    op.create_index("ix_sources_next_sync_at", "sources", ["next_sync_at"])


def _backfill() -> None:
    """Existing documents: one source per ingested root (the name is the root, shortened if long)."""
    op.execute(
        "INSERT INTO sources (collection_id, name, kind, target) "
        "SELECT DISTINCT collection_id, left(metadata ->> 'root', 200), "
        "CASE WHEN metadata ->> 'root' LIKE 'http%' THEN 'url' "
        "WHEN metadata ->> 'root' = 'upload:' THEN 'upload' ELSE 'folder' END, metadata ->> 'root' "
        "FROM documents WHERE metadata ->> 'root' IS NOT NULL "
        "ON CONFLICT (collection_id, name) DO NOTHING"
    )
    op.execute(
        "UPDATE documents SET source_id = sources.id FROM sources "
        "WHERE documents.source_id IS NULL AND sources.collection_id = documents.collection_id "
        "AND sources.target = documents.metadata ->> 'root'"
    )


def downgrade() -> None:
    op.drop_index("ix_documents_source_id", table_name="documents", if_exists=True)
    op.drop_constraint("documents_source_id_fkey", "documents", type_="foreignkey")
    op.drop_column("documents", "source_id")
    op.drop_table("sources")
