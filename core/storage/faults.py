"""The database is unreachable, too slow or too busy: one error every door knows how to report.

A statement or lock timeout, a refused or timed-out connection, a server shutting down, a
connection lost mid-query, or no free connection in the pool within its timeout all become
:class:`DatabaseUnavailable`. It is an :class:`UpstreamUnavailable` (chat doors apologise with
its reference, REST answers 503 with ``Retry-After``) and still an SQLAlchemy
``OperationalError`` (code that handles database errors as such keeps working). Other database
errors (a unique violation, a bug in a query) are left as they are.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from core.storage.watchdog import WATCHDOG
from core.errors import UpstreamUnavailable, new_reference

log = logging.getLogger(__name__)

# How long a client should wait before trying again (REST Retry-After, job back-off base).
RETRY_AFTER_S = 5
# SQLSTATEs meaning "not now" rather than "wrong": https://www.postgresql.org/docs/current/errcodes-appendix.html
_REASONS = {
    "57014": "a statement took longer than its timeout",  # query_canceled (statement_timeout)
    "55P03": "a lock was not granted within its timeout",  # lock_not_available (lock_timeout)
    "53300": "the server has no free connection slot",  # too_many_connections
    "57P01": "the server is shutting down",  # admin_shutdown
    "57P02": "the server crashed",  # crash_shutdown
    "57P03": "the server is starting up",  # cannot_connect_now
}


class DatabaseUnavailable(UpstreamUnavailable, sa.exc.OperationalError):
    """PostgreSQL did not answer in time or cannot be reached; ``reason`` says which limit was hit."""

    def __init__(self, reason: str, *, orig: BaseException | None = None, connection_invalidated: bool = False) -> None:
        # Not super().__init__: in this class's MRO it would reach DBAPIError's constructor.
        self.service = "The database"
        self.reason = reason
        self.reference = new_reference()
        Exception.__init__(self, reason)
        # What sqlalchemy.exc.DBAPIError carries, for code that inspects it (pgcode, invalidation).
        self.statement = None
        self.params = None
        self.orig = orig
        self.hide_parameters = True
        self.connection_invalidated = connection_invalidated
        self.detail = reason
        self.code = None
        self.ismulti = False

    def __str__(self) -> str:
        return f"The database is temporarily unavailable: {self.reason} (reference {self.reference})"

    def __reduce__(self):  # picklable, like every exception a job runner may carry
        return (_rebuild, (self.reason, self.reference))


def _rebuild(reason: str, reference: str) -> DatabaseUnavailable:
    error = DatabaseUnavailable(reason)
    error.reference = reference
    return error


def pool_timeout(timeout_s: float) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"no free database connection within {timeout_s:g} s")


def classify(ctx: ExceptionContext) -> str | None:
    """Why this error means "the database is unavailable", or None when it means something else."""
    orig = ctx.original_exception
    cut_after = _watchdog_limit(ctx)
    if cut_after is not None:
        return f"the server did not answer within {cut_after:g} s"
    code = getattr(orig, "pgcode", None)
    if code in _REASONS:
        return _REASONS[code]
    if code and code.startswith("08"):  # connection_exception class
        return "the connection to the server failed"
    if ctx.is_disconnect:
        return "the connection to the server was lost"
    if ctx.connection is None and isinstance(ctx.sqlalchemy_exception, sa.exc.OperationalError):
        first_line = (str(orig).strip().splitlines() or ["no detail"])[0]
        return f"cannot connect to the server ({first_line})"
    return None


def _watchdog_limit(ctx: ExceptionContext) -> float | None:
    """The deadline the watchdog cut this statement's connection at, if it did."""
    dbapi_connection = dbapi_connection_of(ctx)
    return WATCHDOG.fired(dbapi_connection) if dbapi_connection is not None else None


def dbapi_connection_of(ctx: ExceptionContext) -> object | None:
    if ctx.connection is None:
        return None
    try:
        return ctx.connection.connection.dbapi_connection
    except sa.exc.SQLAlchemyError:  # already invalidated or closed
        return None


def install_fault_translation(engine: sa.Engine) -> None:
    """Raise :class:`DatabaseUnavailable` for every "not now" error from this engine."""

    @event.listens_for(engine, "handle_error")
    def _translate(ctx: ExceptionContext) -> DatabaseUnavailable | None:
        if ctx.is_pre_ping:  # the pool reconnects on its own after a failed ping
            return None
        reason = classify(ctx)
        if reason is None:
            return None
        error = DatabaseUnavailable(reason, orig=ctx.original_exception, connection_invalidated=ctx.is_disconnect)
        log.warning("db.unavailable reason=%s reference=%s", reason, error.reference)
        return error
