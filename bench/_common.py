"""Shared set-up for benchmarks: a private embedded PostgreSQL, migrated, in a temp folder."""
from __future__ import annotations

import atexit
import os
import platform
import shutil
import tempfile
from pathlib import Path

from core.storage import schema
from core.storage.db import Database, connect
from core.storage.embedded import start_embedded_postgres


def fresh_database() -> Database:
    """A throwaway embedded server (deleted at exit), or DATABASE_URL when set."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        folder = Path(tempfile.mkdtemp(prefix="docrag-bench-"))
        # Registered first so it runs last (atexit is LIFO): after pgserver has stopped the
        # server and deleted its data folder, remove the folder around it.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        url = start_embedded_postgres(folder, cleanup_mode="delete")
    schema.upgrade(url)
    return connect(url)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
