"""Answer work runs below the request threads on the embedded default, so it cannot starve acks."""
from __future__ import annotations

from core.storage.queue import BACKGROUND_NICENESS, thread_niceness
from tests.slack.harness import QUESTION


def test_answers_and_after_ack_work_run_at_lowered_priority_and_requests_do_not(harness, monkeypatch):
    lifecycle = harness.runtime.slack.lifecycle
    after_ack = harness.runtime.slack.after_ack
    seen: dict[str, list[int]] = {"answer": [], "after_ack": []}

    real_run, real_submit = lifecycle.run, after_ack.submit

    def spying_run(question_id: int) -> None:
        seen["answer"].append(thread_niceness())
        real_run(question_id)

    def spying_submit(work, *args, **kwargs):
        def recorded(*a, **k):
            seen["after_ack"].append(thread_niceness())
            return work(*a, **k)
        recorded.__name__ = getattr(work, "__name__", "work")
        real_submit(recorded, *args, **kwargs)

    monkeypatch.setattr(lifecycle, "run", spying_run)
    monkeypatch.setattr(after_ack, "submit", spying_submit)

    mention = harness.mention(QUESTION)
    assert harness.event(mention).status_code == 200
    harness.settle()

    assert len(harness.answers(mention["channel"], mention["ts"])) == 1
    assert seen["answer"] and all(n >= BACKGROUND_NICENESS for n in seen["answer"])
    assert seen["after_ack"] and all(n >= BACKGROUND_NICENESS for n in seen["after_ack"])
    assert thread_niceness() == 0  # the request (this test's thread) kept its priority
