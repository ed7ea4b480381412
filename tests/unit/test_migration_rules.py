"""Migrations keep the zero-downtime rules of docs/migrations.md (checked by tests/migration_rules.py)."""
from __future__ import annotations

import textwrap

import pytest

from tests.conftest import REPO
from tests.migration_rules import RULES, check_directory, check_source

# Migrations written before the rules, each with why it went out and what it costs a live
# deployment. A new migration should need no entry here; a contract step (dropping what no
# running release uses any more) may, with the release that stopped using it.
ALLOWED = {
    ("0002_job_queue", "unreadable-sql"):
        # procrastinate's own schema script (SchemaManager.get_schema()): it creates the job queue's
        # tables, types and functions and touches nothing that exists.
        "procrastinate's schema script creates new objects only",
    ("0005_sliding_rate_limits", "drops-or-renames"):
        # rate_limits holds only the current window's counters; it is dropped and recreated in one
        # transaction. Until its processes are replaced, the previous release's limiter fails against
        # the new columns (its questions get an apology) and one window of counts is forgotten.
        "transient counters, recreated in the same transaction",
    ("0008_vector_index_per_collection", "index-not-concurrent"):
        # Per-collection HNSW indexes, built inside the migration's transaction: on a deployment with
        # large collections, ingestion's writes to document_chunks wait while each builds (searches do
        # not). Written when no deployment had such collections; core/search/vector_index.py builds them since.
        "HNSW builds block chunk writes, not searches; no large deployment existed",
    ("0009_postings_covering_index", "constraint-builds-index"):
        # Rebuilds term_postings' primary key with INCLUDE (impact) under ACCESS EXCLUSIVE: searches of
        # common words wait for the rebuild (about a second per million postings). term_postings is
        # derived data, rebuilt by the worker.
        "derived table, a short rebuild",
}


def test_every_migration_keeps_the_rules_or_is_allowed_with_a_reason():
    findings = check_directory(REPO / "migrations" / "versions")
    unexplained = [f for f in findings if (f.migration, f.rule) not in ALLOWED]
    assert not unexplained, "migrations break docs/migrations.md:\n" + "\n".join(map(str, unexplained))
    stale = set(ALLOWED) - {(f.migration, f.rule) for f in findings}
    assert not stale, f"allow-list entries that no longer match a finding (remove them): {sorted(stale)}"


def findings_in(body: str) -> list[str]:
    source = "import sqlalchemy as sa\nfrom alembic import op\n\n" + textwrap.dedent(body)
    return sorted({f.rule for f in check_source(source, "9999_example")})


BAD = {
    "index-not-concurrent": [
        """
        def upgrade():
            op.create_index("ix_documents_title", "documents", ["title"])
        """,
        """
        def upgrade():
            op.execute("CREATE INDEX ix_documents_title ON documents (title)")
        """,
        """
        def upgrade():
            for n in (1, 2):
                op.execute(f"CREATE UNIQUE INDEX ix_{n} ON public.documents (title)")
        """,
    ],
    "concurrent-in-transaction": [
        """
        def upgrade():
            op.create_index("ix_documents_title", "documents", ["title"], postgresql_concurrently=True)
        """,
        """
        def upgrade():
            op.execute("CREATE INDEX CONCURRENTLY ix_documents_title ON documents (title)")
        """,
    ],
    "volatile-default": [
        """
        def upgrade():
            op.add_column("documents", sa.Column("token", sa.Uuid, server_default=sa.text("gen_random_uuid()")))
        """,
        """
        def upgrade():
            op.add_column("documents", sa.Column("seen", sa.DateTime, server_default=sa.func.clock_timestamp()))
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents ADD COLUMN n bigserial")
        """,
        """
        def upgrade():
            op.add_column("documents", sa.Column("size", sa.Integer, sa.Computed("length(text)")))
        """,
    ],
    "not-null-without-default": [
        """
        def upgrade():
            op.add_column("documents", sa.Column("lang", sa.String(8), nullable=False))
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents ADD COLUMN lang text NOT NULL")
        """,
    ],
    "set-not-null": [
        """
        def upgrade():
            op.alter_column("documents", "title", nullable=False)
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents ALTER COLUMN title SET NOT NULL")
        """,
    ],
    "type-change": [
        """
        def upgrade():
            op.alter_column("documents", "title", type_=sa.Text())
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents ALTER title TYPE varchar(500)")
        """,
    ],
    "constraint-validates-under-lock": [
        """
        def upgrade():
            op.create_foreign_key("fk_doc_coll", "documents", "collections", ["collection_id"], ["id"])
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents ADD CONSTRAINT title_set CHECK (title <> '')")
        """,
    ],
    "constraint-builds-index": [
        """
        def upgrade():
            op.create_unique_constraint("uq_title", "documents", ["title"])
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents DROP CONSTRAINT documents_pkey, ADD PRIMARY KEY (id, collection_id)")
        """,
    ],
    "table-rewrite": [
        """
        def upgrade():
            op.execute("VACUUM FULL documents")
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents SET LOGGED")
        """,
    ],
    "drops-or-renames": [
        """
        def upgrade():
            op.drop_column("documents", "title")
        """,
        """
        def upgrade():
            op.alter_column("documents", "title", new_column_name="name")
        """,
        """
        def upgrade():
            op.execute("ALTER TABLE documents RENAME COLUMN title TO name")
        """,
        """
        def upgrade():
            op.drop_table("feedback")
        """,
    ],
    "unreadable-sql": [
        """
        SQL = open("schema.sql").read()

        def upgrade():
            op.execute(SQL.format(table="documents"))
        """,
    ],
}


@pytest.mark.parametrize("rule,body", [(rule, body) for rule, bodies in BAD.items() for body in bodies])
def test_a_migration_breaking_a_rule_is_flagged(rule, body):
    assert rule in RULES
    assert findings_in(body) == [rule]


GOOD = [
    # An index built concurrently, outside the migration's transaction.
    """
    def upgrade():
        with op.get_context().autocommit_block():
            op.create_index("ix_documents_title", "documents", ["title"], postgresql_concurrently=True)
            op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_b ON documents (b)")
    """,
    # A new table and its indexes and constraints: nobody uses it yet.
    """
    def upgrade():
        op.create_table("labels", sa.Column("id", sa.Integer, primary_key=True), sa.Column("doc", sa.Integer))
        op.create_index("ix_labels_doc", "labels", ["doc"])
        op.create_foreign_key("fk_labels_doc", "labels", "documents", ["doc"], ["id"])
        op.execute("CREATE TABLE notes (id int); CREATE INDEX ix_notes ON notes (id)")
    """,
    # Expand: nullable, or a constant default (stored in the catalogue, no rewrite), or a stable now().
    """
    def upgrade():
        op.add_column("documents", sa.Column("lang", sa.String(8), nullable=True))
        op.add_column("documents", sa.Column("version", sa.Integer, nullable=False, server_default="0"))
        op.add_column("documents", sa.Column("added", sa.DateTime, nullable=False, server_default=sa.func.now()))
        op.execute("ALTER TABLE documents ADD COLUMN flags int NOT NULL DEFAULT 0")
    """,
    # NOT NULL the safe way, and a constraint validated without blocking writes.
    """
    def upgrade():
        op.execute("ALTER TABLE documents ADD CONSTRAINT title_nn CHECK (title IS NOT NULL) NOT VALID")
        op.execute("ALTER TABLE documents VALIDATE CONSTRAINT title_nn")
        op.execute("ALTER TABLE documents ADD CONSTRAINT documents_title_key UNIQUE USING INDEX ix_title")
    """,
    # A downgrade may do what it must: it is run by hand, with the application stopped.
    """
    def upgrade():
        pass

    def downgrade():
        op.drop_column("documents", "title")
        op.execute("CREATE INDEX ix ON documents (title)")
    """,
]


@pytest.mark.parametrize("body", GOOD)
def test_a_migration_keeping_the_rules_passes(body):
    assert findings_in(body) == []
