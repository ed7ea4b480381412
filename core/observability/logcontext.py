"""An id that follows one question through the logs: from the adapter that received it,
through the engine, to the job that answered it (even in another process)."""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

_question_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("docrag_question_id", default=None)


def current_question_id() -> str | None:
    return _question_id.get()


@contextlib.contextmanager
def question_context(question_id: int | str | None) -> Iterator[None]:
    """Log lines inside this block carry ``question_id`` (the stored question's id)."""
    token = _question_id.set(None if question_id is None else str(question_id))
    try:
        yield
    finally:
        _question_id.reset(token)
