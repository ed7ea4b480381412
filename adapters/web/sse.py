"""Server-sent events for a streamed answer (``POST /api/v1/ask`` with ``"stream": true``).

Events, in order: ``delta`` (``{"text": ...}``, the next piece of the answer, already with its final
citation numbers) zero or more times, then exactly one of ``answer`` (the same JSON document as the
non-streaming call; its ``answer`` replaces the deltas when they differ) or ``error``
(``{"error": {"code", "message", "reference"}}``: the stream broke and the question got an apology).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from core.answers.edit_buffer import coalesced
from core.errors import DocRagError, UpstreamUnavailable, new_reference
from core.types import Answer

log = logging.getLogger(__name__)

# Pieces are coalesced into one event per interval: a token-by-token model does not cost an event
# (and a network write) per token, and the text still moves several times a second.
EVENT_INTERVAL_S = 0.1
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # and no proxy buffering either


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def answer_events(
    stream: Generator[str, None, Answer], finished: Callable[[Answer], dict[str, Any]]
) -> Iterator[str]:
    """The SSE text of one streamed answer; ``finished`` turns the Answer into the final document."""
    pieces = coalesced(stream, interval_s=EVENT_INTERVAL_S)
    try:
        while True:
            try:
                piece = next(pieces)
            except StopIteration as done:
                answer: Answer = done.value
                break
            yield event("delta", {"text": piece})
        yield event("answer", finished(answer))
    except GeneratorExit:  # the client went away: the answer is still written and stored once
        finish_unseen(stream)
        raise
    except DocRagError as exc:
        yield event("error", error_document(exc))
    except Exception:  # the status line has gone out: the failure can only be an event now
        reference = new_reference()
        log.exception("api.stream_failed reference=%s", reference)
        message = f"Something went wrong on our side (reference {reference})."
        yield event("error", {"error": {"code": "internal_error", "message": message, "reference": reference}})


def error_document(exc: DocRagError) -> dict[str, Any]:
    code = "upstream_unavailable" if isinstance(exc, UpstreamUnavailable) else "error"
    return {"error": {"code": code, "message": str(exc), "reference": getattr(exc, "reference", None)}}


def finish_unseen(stream: Generator[str, None, Answer]) -> None:
    """Write and store the rest of an answer nobody is reading any more (exactly once, as always)."""
    try:
        for _ in stream:
            pass
    except DocRagError:
        pass  # recorded as the question's failure by the engine
    except Exception:
        log.exception("api.stream_failed_after_disconnect")
