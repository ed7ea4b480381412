"""Alembic environment. `docrag db upgrade` passes the URL in; plain `alembic` reads DATABASE_URL."""
from alembic import context
from sqlalchemy import create_engine, pool

from core.config import load_settings
from core.storage.timeouts import Work, connect_args, policy_from_settings
import core.storage.models_web  # noqa: F401  (registers the API tables on Base.metadata)
import core.tenancy.web_sessions  # noqa: F401  (registers the sign-in sessions table)
from core.storage.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or load_settings().database_url
    if not url:
        raise SystemExit("Set DATABASE_URL, or run `docrag db upgrade` to use the embedded database.")
    return url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # A DDL statement queued behind a long transaction would hold every later query on its table
    # behind it, a full outage: DDL waits at most the migration lock timeout (docs/migrations.md),
    # set for the whole session so autocommit blocks (CREATE INDEX CONCURRENTLY) have it too.
    limits = connect_args(policy_from_settings(load_settings(), Work.MIGRATION), "docrag-migrate")
    engine = create_engine(database_url(), poolclass=pool.NullPool, connect_args=limits)
    with engine.connect() as connection:
        # One transaction per migration: locks are held for one migration, not the whole upgrade,
        # and a migration that times out leaves the ones before it applied.
        context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
