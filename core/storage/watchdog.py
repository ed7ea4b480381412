"""A client-side deadline for a server that cannot enforce its own: a frozen or unreachable host.

``statement_timeout`` is enforced by the server; a PostgreSQL whose processes are frozen (SIGSTOP,
a paused VM, a hung storage stack) enforces nothing, and the kernel still acknowledges its TCP
traffic, so libpq would wait for ever. The watchdog arms a deadline around each statement (the
work's statement timeout plus a grace) and around each checkout's liveness ping; when a deadline
passes it shuts the connection's socket down from its own thread. The waiting call then fails as
a lost connection, the pool discards that connection, and the error is reported as
:class:`~core.storage.faults.DatabaseUnavailable` ("the server did not answer within N s").

Nothing is sent to the server: a socket shutdown is the only safe thing another thread can do
to a libpq connection.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from core.storage.timeouts import TimeoutPolicy

log = logging.getLogger(__name__)

GRACE_S = 2.0  # on top of statement_timeout: the server's own limit normally fires first
PING_LIMIT_S = 2.0  # the liveness ping of a pooled connection takes a millisecond when all is well


class Watchdog:
    """Deadlines per connection, checked a few times a second by one daemon thread (a statement's
    own cost is a dictionary write; the precision, TICK_S, is plenty for limits of seconds)."""

    TICK_S = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[Any, float, float]] = {}  # id(dbapi connection) -> (connection, deadline, limit)
        self._fired: dict[int, float] = {}  # id(dbapi connection) -> the limit that was passed
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_connection: Any, limit_s: float) -> None:
        key = id(dbapi_connection)
        with self._lock:
            self._armed[key] = (dbapi_connection, time.monotonic() + limit_s, limit_s)
            self._fired.pop(key, None)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="docrag-db-watchdog", daemon=True)
                self._thread.start()

    def disarm(self, dbapi_connection: Any) -> None:
        with self._lock:
            self._armed.pop(id(dbapi_connection), None)

    def fired(self, dbapi_connection: Any) -> float | None:
        """The limit that cut this connection, if the watchdog cut it."""
        with self._lock:
            return self._fired.get(id(dbapi_connection))

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK_S)
            now = time.monotonic()
            with self._lock:
                expired = [(key, entry) for key, entry in self._armed.items() if entry[1] <= now]
                for key, (_, _, limit_s) in expired:
                    del self._armed[key]
                    self._fired[key] = limit_s
            for _, (connection, _, limit_s) in expired:
                _cut(connection, limit_s)


def _cut(dbapi_connection: Any, limit_s: float) -> None:
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # already closed: nothing is waiting on it
        return
    try:
        dup = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        dup.shutdown(socket.SHUT_RDWR)
        log.warning("db.watchdog_cut_connection limit_s=%s", limit_s)
    except OSError:
        pass
    finally:
        dup.close()  # closes only the duplicate; the driver still owns (and later closes) its descriptor


WATCHDOG = Watchdog()


def install_statement_watchdog(engine: "sa.Engine", policy: "TimeoutPolicy") -> None:
    """Arm a deadline around every statement of ``engine``: its work's statement timeout + GRACE_S."""
    from sqlalchemy import event

    from core.storage.timeouts import work_of

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ARG001
        limit_ms = policy.for_work(work_of(conn, policy)).statement_timeout_ms
        if limit_ms > 0:
            WATCHDOG.arm(cursor.connection, limit_ms / 1000 + GRACE_S)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ARG001
        WATCHDOG.disarm(cursor.connection)

    @event.listens_for(engine, "handle_error")
    def _disarm_failed(ctx) -> None:
        from core.storage.faults import dbapi_connection_of

        dbapi_connection = dbapi_connection_of(ctx)
        if dbapi_connection is not None:
            WATCHDOG.disarm(dbapi_connection)

    @event.listens_for(engine, "checkout")
    def _ping_done(dbapi_connection, record, proxy) -> None:  # noqa: ARG001
        WATCHDOG.disarm(dbapi_connection)  # armed by MeteredQueuePool for the liveness ping

    # COMMIT and ROLLBACK wait on the server too. No event follows them, so their deadline stays
    # armed until the connection's next statement re-arms it or its return to the pool (reset,
    # then checkin) ends it: a connection kept checked out and idle after an explicit commit for
    # longer than the limit would be cut; DocRag's sessions return theirs at once.
    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _arm_end_of_transaction(conn) -> None:
        limit_ms = policy.for_work(work_of(conn, policy)).statement_timeout_ms
        if limit_ms > 0:
            WATCHDOG.arm(conn.connection.dbapi_connection, limit_ms / 1000 + GRACE_S)

    @event.listens_for(engine, "reset")
    def _arm_reset(dbapi_connection, record, reset_state) -> None:  # noqa: ARG001
        WATCHDOG.arm(dbapi_connection, PING_LIMIT_S)  # the rollback of a connection returned to the pool

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record) -> None:  # noqa: ARG001
        if dbapi_connection is not None:
            WATCHDOG.disarm(dbapi_connection)
