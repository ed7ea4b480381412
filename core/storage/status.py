"""What an operator wants to know about DocRag's database at a glance (`docrag db status`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from core.storage import schema
APPLICATION_PREFIX = "docrag"


@dataclass(frozen=True)
class ProcessConnections:
    application_name: str
    total: int
    active: int
    idle: int
    idle_in_transaction: int


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str  # "table" or "index"
    bytes: int
    table: str  # the table an index belongs to; the table itself for a table
    rows: int | None  # the planner's estimate, for tables


@dataclass
class DatabaseStatus:
    server_version: str
    database: str
    max_connections: int
    connections_total: int  # every connection to the server, DocRag's or not
    schema_revision: str | None
    code_revision: str | None
    processes: list[ProcessConnections] = field(default_factory=list)
    tables: list[Relation] = field(default_factory=list)
    indexes: list[Relation] = field(default_factory=list)

    @property
    def schema_current(self) -> bool:
        return self.schema_revision == self.code_revision

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "schema_current": self.schema_current}


_PROCESSES = sa.text("""
    SELECT application_name,
           count(*) AS total,
           count(*) FILTER (WHERE state = 'active') AS active,
           count(*) FILTER (WHERE state = 'idle') AS idle,
           count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
    FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE :prefix
    GROUP BY application_name
    ORDER BY application_name
""")

_RELATIONS = sa.text("""
    SELECT c.relname AS name,
           CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
           CASE c.relkind WHEN 'i' THEN pg_relation_size(c.oid) ELSE pg_total_relation_size(c.oid) END AS bytes,
           coalesce(t.relname, c.relname) AS table_name,
           CASE WHEN c.relkind = 'i' OR c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS rows
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    LEFT JOIN pg_class t ON t.oid = i.indrelid
    WHERE n.nspname = current_schema() AND c.relkind::text = ANY(:kinds)
    ORDER BY bytes DESC, c.relname
    LIMIT :limit
""")


def database_status(engine: sa.Engine, *, largest: int = 10) -> DatabaseStatus:
    with engine.connect() as conn:
        status = DatabaseStatus(
            server_version=conn.exec_driver_sql("SHOW server_version").scalar_one(),
            database=conn.exec_driver_sql("SELECT current_database()").scalar_one(),
            max_connections=int(conn.exec_driver_sql("SHOW max_connections").scalar_one()),
            connections_total=int(conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").scalar_one()),
            schema_revision=schema.current_revision(engine),
            code_revision=schema.head_revision(),
        )
        status.processes = [
            ProcessConnections(r.application_name, r.total, r.active, r.idle, r.idle_in_transaction)
            for r in conn.execute(_PROCESSES, {"prefix": f"{APPLICATION_PREFIX}%"})
        ]
        for kinds, target in ((["r", "p", "m"], status.tables), (["i"], status.indexes)):
            target.extend(
                Relation(r.name, r.kind, int(r.bytes), r.table_name, r.rows)
                for r in conn.execute(_RELATIONS, {"kinds": kinds, "limit": largest})
            )
    return status
