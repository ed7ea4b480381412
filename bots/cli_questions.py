"""The CLI's door on the question lifecycle (core/questions/waiting.py): `docrag ask` and `docrag chat`.

A terminal question is stored before it is answered and its durable answer job is held while this
process answers, like every other door's: a CLI killed mid-answer leaves a question that any worker
(`docrag serve` on the embedded default, or `docrag worker`) answers within seconds of running.
`docrag ask --request-id ID` asks at most once per ID: run again, it prints the stored answer,
or answers the question here when whoever had it died.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from core.errors import UpstreamUnavailable
from core.types import Answer, SessionKey

if TYPE_CHECKING:
    from bots.wiring import Container
    from core.questions.waiting import WaitingDoor

PLATFORM = "cli"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not REQUEST_ID.fullmatch(value):
        raise click.BadParameter("must be 1-64 letters, digits, '.', '-' or '_'")
    return value


@contextmanager
def waiting_door(container: Container) -> Iterator[WaitingDoor]:
    """The lifecycle for this terminal, with the job queue open while it is used."""
    from bots.wiring import open_job_queue

    jobs = open_job_queue(container)
    try:
        yield container.waiting_door(jobs)
    finally:
        jobs.close()


def ask_once(
    door: WaitingDoor, key: SessionKey, question: str, *, collection: str | None, request_id: str | None = None
) -> tuple[Answer, SessionKey]:
    """The answer to ``question`` and the conversation it belongs to (for --thread): asked now,
    or, for a request id seen before, the one it got. DocRagError for a refusal or an outage."""
    from core.questions.waiting import IdempotencyKeyReused, State

    request = f"{PLATFORM}:{key.workspace}:{request_id}" if request_id else None
    try:
        accepted = door.accept(key, question, collection=collection, request=request)
    except IdempotencyKeyReused as exc:
        raise click.ClickException(f"--request-id {request_id} asked another question (#{exc.args[0]}).") from None
    if accepted.new:
        return _answered(door, accepted), key
    outcome = door.outcome(accepted.question_id)
    if outcome.state is State.ANSWERED and outcome.answer is not None:
        return outcome.answer, outcome.key
    if outcome.state is State.FAILED:
        raise click.ClickException(f"Sorry, I couldn't answer this one (reference {outcome.reference}).")
    resumed = door.resume(accepted)
    if resumed is None:
        raise click.ClickException(
            f"Question #{accepted.question_id} is being answered by another process; run this again in a few seconds."
        )
    return _answered(door, resumed), outcome.key


def _answered(door: WaitingDoor, accepted) -> Answer:  # type: ignore[no-untyped-def]
    try:
        return door.answer(accepted)
    except UpstreamUnavailable as exc:
        raise click.ClickException(f"Sorry, I couldn't answer: {exc}.") from None
