"""Server-side prepared statements, for statements that take as long to plan as to run.

Sent in full, the text leg's BM25 statement for a 28-word question takes PostgreSQL 6-8 ms to
plan (measured on 101,615 chunks), about as long as running it. Prepared, PostgreSQL plans it for
its values in ~0.5 ms the first five times, then settles on a generic plan, made once, if that
plan is not costlier. psycopg2 has no protocol-level prepared statements, so this uses SQL
``PREPARE``/``EXECUTE``: a statement is compiled once with ``$n`` parameters, prepared once per
DB-API connection (the names prepared on it are kept in the pooled connection's ``info``, which
lives exactly as long as that connection), then executed by name with its values bound by
psycopg2 as for any statement.

Each execution runs inside a savepoint, so a statement the server forgot (``DISCARD ALL`` or
``DEALLOCATE`` on the connection) is prepared again instead of failing the caller's transaction.
"""
from __future__ import annotations

import functools
import hashlib
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg2
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = psycopg2.dialect(paramstyle="numeric_dollar")
_INFO_KEY = "docrag.prepared"  # the names prepared on a DB-API connection, in its pool record's info
_SAVEPOINT = "docrag_prepared"
_UNKNOWN_STATEMENT = "26000"  # invalid_sql_statement_name: no prepared statement by that name


def execute(session: Session, statement: sa.Executable, parameters: Mapping[str, Any]) -> Sequence[sa.Row]:
    """The rows of a read-only ``statement`` with ``parameters``, as a prepared statement on the session's connection."""
    name, compiled = _compiled(statement)
    values = compiled.construct_params(dict(parameters))
    arguments = tuple(values[key] for key in compiled.positiontup or ())
    run = f"EXECUTE {name}({', '.join(['%s'] * len(arguments))})" if arguments else f"EXECUTE {name}"
    connection = session.connection()
    prepared: set[str] = connection.connection.info.setdefault(_INFO_KEY, set())
    if name in prepared:
        rows = _run_if_still_prepared(connection, run, arguments)
        if rows is not None:
            return rows
        prepared.discard(name)
    connection.exec_driver_sql(f"PREPARE {name} AS {compiled.string}", execution_options={"no_parameters": True})
    prepared.add(name)
    return connection.exec_driver_sql(run, arguments).all()


def _run_if_still_prepared(connection: sa.Connection, run: str, arguments: tuple) -> Sequence[sa.Row] | None:
    """The rows, or None if the server forgot the statement; the transaction stays usable either way."""
    connection.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
    try:
        rows = connection.exec_driver_sql(run, arguments).all()
    except sa.exc.DBAPIError as error:
        if getattr(error.orig, "pgcode", None) != _UNKNOWN_STATEMENT:
            raise
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        rows = None
    connection.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return rows


@functools.lru_cache(maxsize=256)
def _compiled(statement: sa.Executable) -> tuple[str, SQLCompiler]:
    """The statement compiled with positional ``$n`` parameters, and a name that changes with its SQL."""
    compiled = statement.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("statements with expanding (IN) parameters cannot be prepared")
    return "docrag_" + hashlib.sha1(compiled.string.encode()).hexdigest()[:20], compiled
