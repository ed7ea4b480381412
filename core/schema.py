"""Alembic, driven from code: upgrades for `docrag db upgrade`, and the start-up check."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Engine

from core.errors import SchemaOutOfDate

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats % specially; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_current(engine: Engine) -> None:
    """Refuse to run against a schema older than the code; run on a newer one.

    A revision this code does not know is the next release's: during its upgrade window the
    previous release keeps running, and restarting, on the new schema, which docs/migrations.md
    keeps compatible with it (expand now, contract a release later)."""
    current, head = current_revision(engine), head_revision()
    if current is not None and current != head and not _known(current):
        log.warning("schema.newer_than_code revision=%s code_head=%s: running as the previous release", current, head)
        return
    if current != head:
        state = "has no DocRag schema yet" if current is None else f"is at revision {current}, the code needs {head}"
        raise SchemaOutOfDate(f"The database {state}. Run `docrag db upgrade` first.")


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config("postgresql://")).get_revision(revision) is not None
    except CommandError:
        return False
