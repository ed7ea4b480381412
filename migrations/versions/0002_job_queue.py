"""Job queue tables (procrastinate), so background work lives in the same PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
from procrastinate.schema import SchemaManager

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _run_raw(sql: str) -> None:
    # Straight to the driver, without parameters: the SQL holds ':' and '%' that SQLAlchemy
    # or psycopg2 would otherwise read as placeholders.
    with op.get_bind().connection.cursor() as cursor:
        cursor.execute(sql)


def upgrade() -> None:
    _run_raw(SchemaManager.get_schema())


def downgrade() -> None:
    _run_raw(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DO $$
        DECLARE f record;
        BEGIN
            FOR f IN SELECT oid::regprocedure AS sig FROM pg_proc WHERE proname LIKE 'procrastinate%' LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
            procrastinate_job_to_defer_v1 CASCADE;
        """
    )
