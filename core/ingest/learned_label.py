"""How a learned answer is named and recognised when cited: "answered in #channel on DATE".

Pure (no database): every door renders citations, and a learned one must read differently from
the official documentation wherever it appears. The title is the one place the document carries
this, so the rule that writes it and the rule that reads it live together here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.types import Citation

NOT_THE_DOCS = "from a chat thread, not the official docs"
_TITLE = re.compile(r"^Answered in #(?P<channel>\S+) on (?P<day>\d{4}-\d{2}-\d{2})(?:: (?P<question>.*))?$", re.S)


@dataclass(frozen=True)
class LearnedLabel:
    channel: str
    day: str  # ISO date the thread was confirmed
    question: str

    @property
    def text(self) -> str:
        """What a door shows instead of a document title."""
        return f"answered in #{self.channel} on {self.day}"


def learned_title(channel_name: str, day: str, question: str) -> str:
    channel = "-".join(channel_name.lstrip("#").split()) or "chat"
    return f"Answered in #{channel} on {day}: {question}"


def learned_label(citation: Citation | str) -> LearnedLabel | None:
    """The label of a learned answer's citation (or title), None for an official document."""
    title = citation.title if isinstance(citation, Citation) else citation
    match = _TITLE.match(title or "")
    if match is None:
        return None
    return LearnedLabel(match["channel"], match["day"], (match["question"] or "").strip())
