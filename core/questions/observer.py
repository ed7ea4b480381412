"""Listening to the lifecycle: metrics, timings and logs observe it without taking part.

The engine calls its observer at each step with what it already knows (the platform comes with
the question), so an observer needs no query of its own and no copy of the engine.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from core.errors import DocRagError
from core.types import Answer


class LifecycleObserver(Protocol):
    def accepted(self, platform: str, question_id: int) -> None: ...

    def refused(self, platform: str, error: DocRagError) -> None: ...

    def answered(self, platform: str, answer: Answer) -> None:
        """A new answer (a replayed job that finds the stored one is not reported)."""

    def failed(self, platform: str, error: DocRagError) -> None: ...


class NoObserver:
    def accepted(self, platform: str, question_id: int) -> None:
        pass

    def refused(self, platform: str, error: DocRagError) -> None:
        pass

    def answered(self, platform: str, answer: Answer) -> None:
        pass

    def failed(self, platform: str, error: DocRagError) -> None:
        pass


class Observers(NoObserver):
    """Several observers as one; one that raises does not stop the others or the lifecycle."""

    def __init__(self, observers: Sequence[LifecycleObserver] = ()) -> None:
        self.observers = list(observers)

    def add(self, observer: LifecycleObserver) -> None:
        if observer not in self.observers:
            self.observers.append(observer)

    def accepted(self, platform: str, question_id: int) -> None:
        self._each("accepted", platform, question_id)

    def refused(self, platform: str, error: DocRagError) -> None:
        self._each("refused", platform, error)

    def answered(self, platform: str, answer: Answer) -> None:
        self._each("answered", platform, answer)

    def failed(self, platform: str, error: DocRagError) -> None:
        self._each("failed", platform, error)

    def _each(self, event: str, *args: object) -> None:
        import logging

        for observer in self.observers:
            try:
                getattr(observer, event)(*args)
            except Exception:  # observing must never change what the user gets
                logging.getLogger(__name__).exception("questions.observer_failed event=%s", event)
