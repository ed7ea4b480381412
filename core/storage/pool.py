"""The connection pool: its size and timeouts, and what it exports to Prometheus.

Metrics, labelled by process kind (the pool's name, e.g. ``docrag-web``):

- ``docrag_db_pool_checked_out``: connections in use right now;
- ``docrag_db_pool_overflow``: connections open beyond the pool size;
- ``docrag_db_pool_wait_seconds``: how long a checkout waited for a connection (including
  opening one and the liveness ping);
- ``docrag_db_pool_timeouts``: checkouts that found no connection within the pool timeout.

Under gunicorn the gauges are summed over the live worker processes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from core.storage.faults import pool_timeout
from core.storage.watchdog import PING_LIMIT_S, WATCHDOG
from core.observability.registry import REGISTRY

CHECKED_OUT = Gauge(
    "docrag_db_pool_checked_out", "Database connections in use, by pool.", ["pool"],
    multiprocess_mode="livesum", registry=REGISTRY,
)
OVERFLOW = Gauge(
    "docrag_db_pool_overflow", "Database connections open beyond the pool size, by pool.", ["pool"],
    multiprocess_mode="livesum", registry=REGISTRY,
)
WAIT_SECONDS = Histogram(
    "docrag_db_pool_wait_seconds", "Time a checkout waited for a database connection, by pool.", ["pool"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10), registry=REGISTRY,
)
TIMEOUTS = Counter(
    "docrag_db_pool_timeouts", "Checkouts that got no database connection within the pool timeout, by pool.",
    ["pool"], registry=REGISTRY,
)


@dataclass(frozen=True)
class PoolSettings:
    size: int = 5
    max_overflow: int = 10
    timeout_s: float = 5.0  # a checkout waits this long for a free connection, then fails
    recycle_s: int = 1800  # connections older than this are replaced (server-side idle limits, failovers)

    @property
    def max_connections(self) -> int:
        return self.size + self.max_overflow


class MeteredQueuePool(QueuePool):
    """A QueuePool that times each checkout, reports a pool timeout as DatabaseUnavailable, and
    bounds the liveness ping of a pooled connection (core/storage/watchdog.py)."""

    def _do_get(self) -> Any:
        record = super()._do_get()
        if record.dbapi_connection is not None:  # disarmed by the checkout event once pinged
            WATCHDOG.arm(record.dbapi_connection, PING_LIMIT_S)
        return record

    def connect(self) -> Any:
        name = self._orig_logging_name or "docrag"
        started = time.perf_counter()
        try:
            return super().connect()
        except sa.exc.TimeoutError:
            TIMEOUTS.labels(name).inc()
            raise pool_timeout(self.timeout()) from None
        finally:
            WAIT_SECONDS.labels(name).observe(time.perf_counter() - started)


def pool_arguments(settings: PoolSettings, name: str) -> dict[str, Any]:
    """``create_engine`` keyword arguments for a metered pool named ``name``."""
    return {
        "poolclass": MeteredQueuePool,
        "pool_size": settings.size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.timeout_s,
        "pool_recycle": settings.recycle_s,
        "pool_pre_ping": True,
        "pool_logging_name": name,
    }


def install_pool_gauges(engine: sa.Engine, name: str) -> None:
    """Keep the checked-out and overflow gauges exact after every checkout and checkin."""

    def update(*_: Any) -> None:
        pool = engine.pool
        if isinstance(pool, QueuePool):
            CHECKED_OUT.labels(name).set(pool.checkedout())
            OVERFLOW.labels(name).set(max(0, pool.overflow()))

    event.listen(engine, "checkout", update)
    event.listen(engine, "checkin", update)
