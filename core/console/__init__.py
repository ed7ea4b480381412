"""What documentation owners see (issue 14): question traces, counts, knowledge gaps, privacy.

The engine hands each question's outcome to :func:`core.console.traces.record_question` once;
everything else here reads what that stored. See docs/console.md.
"""
