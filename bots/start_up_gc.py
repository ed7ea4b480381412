"""Garbage collection while a `docrag` command starts, when it runs as a process of its own.

A command that touches the database imports SQLAlchemy, pydantic, the ORM models and the engine:
over 100,000 objects that live until the process ends. Meanwhile the cyclic garbage collector runs
some two hundred times, rescanning them, and Python's exit sweeps them all once more: together a
third of the CPU time of a `docrag search` (bench/startup.py). So while a command starts,
collections wait (a raised threshold, not a switch: a command that never reports itself started
still collects); once its database is open (bots/wiring.py calls ``started``), every object that
exists is frozen, never scanned again, and collection resumes with the usual thresholds. At exit
everything is frozen, so the last sweep has nothing to scan: what must be closed is closed before
(the command's connections when it ends, bots/cli.py; pgserver's exit handler runs before this one).

Only the `docrag` process itself does this (bots/cli.py): code that calls the command in its own
process (tests' CliRunner) keeps its collector as it was.
"""
from __future__ import annotations

import atexit
import gc

START_UP_THRESHOLD = 1_000_000  # allocations between two collections while starting (default 700)
_usual: tuple[int, int, int] | None = None  # the thresholds to restore, while collections wait


def wait_while_starting() -> None:
    """Hold collections back until ``started``; freeze everything at exit."""
    global _usual
    if _usual is not None:
        return
    _usual = gc.get_threshold()
    gc.set_threshold(START_UP_THRESHOLD, *_usual[1:])
    atexit.register(gc.freeze)  # registered first, so it runs last, after every other exit handler


def started() -> None:
    """Start-up is over: freeze what exists and collect as usual from now on (no-op unless waiting)."""
    global _usual
    if _usual is None:
        return
    gc.freeze()
    gc.set_threshold(*_usual)
    _usual = None
