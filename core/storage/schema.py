"""Alembic, driven from code: upgrades for `docrag db upgrade`, and the start-up check.

The start-up check (``ensure_current``) runs in every process, `docrag search` included, so it
does without Alembic (about a second to import): the database's revision is one row of
``alembic_version``, and the code's head is read from the migration files' ``revision`` and
``down_revision`` assignments (parsed, not imported). tests/integration/test_schema.py checks that
this agrees with Alembic's own ``ScriptDirectory``.
"""
from __future__ import annotations

import ast
import logging
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats % specially; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """Every revision the migration files define, and every revision one of them revises."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values = _assignments(path, ("revision", "down_revision"))
        if isinstance(values.get("revision"), str):
            revisions.add(values["revision"])
            down = values.get("down_revision")
            revised.update(down if isinstance(down, (tuple, list)) else [down] if down else [])
    return frozenset(revisions), frozenset(revised)


def head_revision() -> str | None:
    """The revision no migration file revises (the one head; several would be a merge to write)."""
    revisions, revised = _revisions()
    heads = sorted(revisions - revised)
    if len(heads) > 1:
        raise SchemaOutOfDate(f"The migrations have several heads ({', '.join(heads)}): write a merge migration.")
    return heads[0] if heads else None


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None
        )
        if isinstance(target, ast.Name) and target.id in names and node.value is not None:
            try:
                found[target.id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def current_revision(engine: Engine) -> str | None:
    """The database's revision: None when it has no DocRag schema yet."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        return ",".join(sorted(versions))  # several branches applied: never the code's single head
    return versions[0] if versions else None


def ensure_current(engine: Engine, *, upgrade_url: str | None = None) -> None:
    """Refuse to run against a schema older than the code; run on a newer one.

    A revision this code does not know is the next release's: during its upgrade window the
    previous release keeps running, and restarting, on the new schema, which docs/migrations.md
    keeps compatible with it (expand now, contract a release later).

    ``upgrade_url``: the database is DocRag's own (the embedded default), so an older schema is
    upgraded instead of refused (see _upgrade_owned)."""
    current, head = current_revision(engine), head_revision()
    if current is not None and current != head and not _known(current):
        log.warning("schema.newer_than_code revision=%s code_head=%s: running as the previous release", current, head)
        return
    if current != head and upgrade_url is not None:
        _upgrade_owned(engine, upgrade_url, head)
        current = current_revision(engine)
    if current != head:
        state = "has no DocRag schema yet" if current is None else f"is at revision {current}, the code needs {head}"
        raise SchemaOutOfDate(f"The database {state}. Run `docrag db upgrade` first.")


# pg_advisory_lock key held while one process upgrades the embedded database ("docrag-m").
_UPGRADE_LOCK = 0x646F637261672D6D


def _upgrade_owned(engine: Engine, url: str, head: str) -> None:
    """Bring a database DocRag owns (the embedded default) to the code's head.

    Nobody else uses that database and no release can be running on it during an upgrade window,
    so there is no operator to run `docrag db upgrade` for: the first process after an install or
    an update does it. Processes starting together (gunicorn workers) take turns on an advisory
    lock, and the ones that waited find it done."""
    with engine.connect() as conn:
        _wait_for_upgrade_lock(conn)
        try:
            current = current_revision(engine)
            if current != head:
                log.info("schema.upgrade embedded database from=%s to=%s", current or "empty", head)
                upgrade(url)
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _UPGRADE_LOCK})
            conn.commit()


def _wait_for_upgrade_lock(conn: sa.Connection, patience_s: float = 600.0) -> None:
    """Take the upgrade lock, waiting for another process's upgrade to finish.

    Polled with pg_try_advisory_lock: a blocking pg_advisory_lock would be cut short by the
    connection's lock_timeout, which is seconds, while the first upgrade of a database can take
    longer. The connection is left outside a transaction, so no idle-in-transaction limit applies."""
    deadline = time.monotonic() + patience_s
    while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _UPGRADE_LOCK}).scalar():
        conn.commit()
        if time.monotonic() > deadline:
            raise SchemaOutOfDate("Another process has been upgrading the database for too long; try again.")
        time.sleep(0.2)
    conn.commit()


def _known(revision: str) -> bool:
    return revision in _revisions()[0]
