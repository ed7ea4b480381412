"""The citation clean-up of ``core.answers.llm`` applied while the answer is still being written.

A reader watching an answer stream in should see the same text the finished answer will have:
invented ``[n]`` markers never appear, the others already carry their final numbers (sources are
renumbered in order of first use, which is known as soon as a marker arrives). Only text whose
clean-up can no longer change is released; a tail that might still turn into a marker or into
inline code waits for the next piece.
"""
from __future__ import annotations

import re

from core.answers.llm import _CODE, clean_citations

# An unfinished "[", "[1" or "[12" at the very end may still become a marker.
_PARTIAL_MARKER = re.compile(r"\[\d{0,3}\Z")


class LiveCitations:
    """Feed the model's raw pieces; get back the pieces of the cleaned text that are now final."""

    def __init__(self, source_count: int) -> None:
        self.source_count = source_count
        self.raw = ""
        self.shown = ""  # what has been released so far: always a prefix of the cleaned text

    def feed(self, piece: str) -> str:
        self.raw += piece
        cleaned, _ = clean_citations(self.raw[: _settled_end(self.raw)], self.source_count)
        if len(cleaned) > len(self.shown) and cleaned.startswith(self.shown):
            new, self.shown = cleaned[len(self.shown) :], cleaned
            return new
        return ""

    def finish(self, final_text: str) -> str:
        """What is left to show of ``final_text``, or "" when it does not extend what was shown
        (then the caller replaces the shown text with the final one)."""
        return final_text[len(self.shown) :] if final_text.startswith(self.shown) else ""


def _settled_end(raw: str) -> int:
    """Where the part of ``raw`` whose clean-up is settled ends."""
    end = len(raw.rstrip())  # trailing spaces go if an invented marker follows them
    partial = _PARTIAL_MARKER.search(raw, 0, end)
    if partial:
        end = len(raw[: partial.start()].rstrip())
    while end and raw[end - 1] == "`":  # one or two backticks may be the start of a fence
        end -= 1
    line_start = raw.rfind("\n", 0, end) + 1
    covered = [m.span() for m in _CODE.finditer(raw, 0, end)]
    for i in range(line_start, end):  # an inline code span still open on the last line
        if raw[i] == "`" and not any(a <= i < b for a, b in covered):
            return len(raw[:i].rstrip())
    return end
