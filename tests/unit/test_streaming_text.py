"""The pieces of streaming that need no platform: live citation clean-up and the edit buffer."""
from __future__ import annotations

import random

import pytest

from core.answers.edit_buffer import EditBuffer
from core.answers.live_citations import LiveCitations
from core.answers.llm import clean_citations

ANSWERS = [
    "Use `x [1]` and then [3] reads it [9]. Also [3][1].\n\n```\ncode [2]\n```\nDone [2].",
    "  Leading [2] text [5] with [7] big [1]",
    "a `b` c [1] `d [2]` e [40] f",
]


@pytest.mark.parametrize("raw", ANSWERS)
def test_live_clean_up_shows_only_text_the_finished_answer_keeps(raw):
    final, _ = clean_citations(raw, 5)
    rng = random.Random(raw)
    for _ in range(100):  # however the model splits its text
        live, shown, i = LiveCitations(5), "", 0
        while i < len(raw):
            step = rng.randint(1, 4)
            shown += live.feed(raw[i : i + step])
            assert final.startswith(shown), "nothing shown is ever taken back"
            i += step
        assert shown + live.finish(final) == final


def test_finish_says_when_the_final_text_must_replace_what_was_shown():
    live = LiveCitations(3)
    live.feed("The first draft says ")
    assert live.finish("A different final answer.") == ""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_buffer_sends_the_first_words_at_once_then_one_call_per_interval():
    clock, calls = Clock(), []
    buffer = EditBuffer(lambda new, full: calls.append((new, full)), interval_s=1.0, clock=clock)

    for i in range(300):  # a model writing 40 tokens a second for 7.5 seconds
        buffer.add(f" t{i}")
        clock.now += 0.025
    buffer.close()

    assert calls[0] == (" t0", " t0")
    assert len(calls) <= 10, "one call a second, not one per token"
    assert "".join(new for new, _ in calls) == buffer.text == calls[-1][1]


def test_buffer_flushes_early_when_enough_text_piled_up():
    clock, calls = Clock(), []
    buffer = EditBuffer(lambda new, full: calls.append(new), interval_s=60, max_pending_chars=10, clock=clock)
    for word in ["a", "bbbbb", "cccccc", "d"]:
        buffer.add(word)
    assert calls == ["a", "bbbbbcccccc"]
    buffer.close()
    assert calls[-1] == "d"
