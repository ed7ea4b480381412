"""Coalesce a streamed answer's pieces into few platform calls.

A model that writes token by token would cost one API call per token if every piece were sent.
``EditBuffer`` sends the first words at once (so the reader sees something move), then at most one
call per ``interval_s`` — sooner only when ``max_pending_chars`` have piled up — and the rest on
``close``. Platform-free: the adapter's ``send(new_text, full_text)`` does the call (Slack appends
``new_text``, Discord and the web replace with ``full_text``).
"""
from __future__ import annotations

import time
from collections.abc import Generator
from typing import Callable, TypeVar

R = TypeVar("R")

# ``send(new_text, full_text)``; returning False means "not shown, keep it pending" (a refused
# call): the text goes out with the next call instead of being lost.
Send = Callable[[str, str], "bool | None"]


class EditBuffer:
    def __init__(
        self,
        send: Send,
        *,
        interval_s: float,
        max_pending_chars: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self.interval_s = interval_s
        self.max_pending_chars = max_pending_chars  # 0: no size trigger
        self._clock = clock
        self._last_sent: float | None = None
        self.text = ""  # everything added so far
        self.sent = ""  # everything handed to ``send`` so far
        self.calls = 0

    def add(self, piece: str) -> None:
        if not piece:
            return
        self.text += piece
        if self._due():
            self.flush()

    def flush(self) -> None:
        """Send what is pending now (nothing when nothing is)."""
        pending = self.text[len(self.sent) :]
        if not pending:
            return
        self.calls += 1
        self._last_sent = self._clock()
        if self._send(pending, self.text) is not False:
            self.sent = self.text

    close = flush

    def _due(self) -> bool:
        if self._last_sent is None:
            return True  # the first words go out at once
        if self.max_pending_chars and len(self.text) - len(self.sent) >= self.max_pending_chars:
            return True
        return self._clock() - self._last_sent >= self.interval_s


def coalesced(stream: Generator[str, None, R], *, interval_s: float) -> Generator[str, None, R]:
    """``stream``'s pieces joined into at most one per ``interval_s`` (the first at once); returns
    what ``stream`` returns. For doors that write the pieces themselves (the web's responses)."""
    out: list[str] = []
    buffer = EditBuffer(lambda new, _full: out.append(new), interval_s=interval_s)
    while True:
        try:
            buffer.add(next(stream))
        except StopIteration as done:
            buffer.close()
            yield from out
            return done.value
        except Exception:  # what was written before a failure is still shown, then the failure
            buffer.close()
            yield from out
            raise
        yield from out
        out.clear()
