"""``/api/v1/ready`` answers within its budget whatever the database does.

The checks (database, schema revision, job queue) run on a daemon thread; the request waits for
them at most ``budget_s`` and otherwise reports the database as not answering. A check still
waiting on a frozen server is shared by the probes that arrive meanwhile, so a long freeze costs
one stuck thread and one connection, not one per probe.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable

Checks = dict[str, str]
READY_BUDGET_S = 1.5  # under the 2 s an orchestrator's probe is typically given


class BoundedReadiness:
    def __init__(self, run_checks: Callable[[], Checks], *, budget_s: float = READY_BUDGET_S) -> None:
        self._run_checks = run_checks
        self.budget_s = budget_s
        self._lock = threading.Lock()
        self._in_flight: Future[Checks] | None = None

    def __call__(self) -> Checks:
        future = self._current_check()
        try:
            return future.result(timeout=self.budget_s)
        except FutureTimeout:
            return {
                "database": f"no answer within {self.budget_s:g} s (the server is frozen, overloaded or unreachable)",
                "schema": "unknown",
                "queue": "unknown",
            }

    def _current_check(self) -> Future[Checks]:
        with self._lock:
            if self._in_flight is None or self._in_flight.done():
                self._in_flight = self._start()
            return self._in_flight

    def _start(self) -> Future[Checks]:
        future: Future[Checks] = Future()

        def run() -> None:
            try:
                future.set_result(self._run_checks())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                future.set_exception(exc)

        # A daemon thread: a check stuck on a frozen server must not keep the process from exiting.
        threading.Thread(target=run, name="docrag-ready", daemon=True).start()
        return future
