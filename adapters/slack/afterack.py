"""Slack calls that follow an acknowledgement (placeholders, notices), off the request thread.

Listeners make the delivery durable (a backstop job) before Bolt answers Slack, then hand the
rest here, so Slack gets its HTTP 200 without waiting for rate limits, storage or Slack's own
API. Nothing here must be lost for correctness: a delivery stays held by its backstop job until
it is taken in hand, and an accepted question whose answer job was never queued is found again
by the recovery job (see ``tasks.recover_pending``).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from core.storage.queue import lower_this_thread

log = logging.getLogger(__name__)


class AfterAck:
    def __init__(self, *, max_workers: int = 8) -> None:
        # Below the request threads: work after an ack never delays the next ack.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="slack-after-ack",
                                        initializer=lower_this_thread)
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        future = self._pool.submit(self._run, work, *args, **kwargs)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def wait_idle(self, timeout: float = 10) -> bool:
        """Block until every submitted piece of work has finished (tests, graceful shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def shutdown(self, timeout: float = 10) -> None:
        self.wait_idle(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _run(work: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            work(*args, **kwargs)
        except Exception:  # the request has been answered: the log is the only place left to tell
            log.exception("slack.after_ack_failed work=%s", getattr(work, "__name__", work))

    def _done(self, future: Future[Any]) -> None:
        with self._idle:
            self._pending.discard(future)
            self._idle.notify_all()
