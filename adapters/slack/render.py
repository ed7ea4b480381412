"""Answers and notices -> Slack messages (Block Kit plus the plain ``text`` fallback).

Slack's limits: a section's text is 1..3000 characters, a message has at most 50 blocks and
about 12,000 characters of block text in practice. Every message built here stays inside them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.slack.mrkdwn import escape, link, split, to_mrkdwn
from core.ingest.learned_label import NOT_THE_DOCS, learned_label
from core.types import Answer, Citation

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
MAX_BLOCK_CHARS = 12_000
NOTE_ROOM = 200  # the truncation note
FALLBACK_LIMIT = 2900
MAX_SOURCES = 9  # a context block holds 10 elements: the label plus nine sources
SOURCE_LIMIT = 300
URL_LIMIT = 600

FEEDBACK_BLOCK = "docrag_feedback"
FEEDBACK_UP = "docrag_feedback_up"
FEEDBACK_DOWN = "docrag_feedback_down"

PLACEHOLDER = "Searching the docs…"
TRUNCATED_NOTE = "_The answer was too long for one Slack message and was shortened; the sources have the rest._"
USAGE = (
    "Ask me a question about the documentation, for example:\n"
    "`/ask how do I rotate my API key?`\n"
    "I post your question in the channel and answer in its thread, so anyone can follow up there. "
    "You can also mention me (@DocRag) in a channel or send me a direct message."
)


@dataclass(frozen=True)
class Reply:
    text: str  # the plain fallback: notifications, screen readers, clients without blocks
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT] or " "}}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def render_answer(answer: Answer) -> Reply:
    body = to_mrkdwn(answer.text)
    tail = [_sources_block(answer.citations)] if answer.citations else []
    if answer.message_id is not None:
        tail.append(_feedback_block(answer.message_id))
    budget = MAX_BLOCK_CHARS - NOTE_ROOM - sum(block_chars(block) for block in tail)
    sections, truncated = _fit_sections(body, max_sections=MAX_BLOCKS - len(tail) - 1, budget=budget)
    blocks = [section(text) for text in sections]
    if truncated:
        blocks.append(context(TRUNCATED_NOTE))
    return Reply(text=_fallback(body), blocks=blocks + tail)


def render_notice(text: str, *, emoji: str = "") -> Reply:
    """A short message to a user (an error, a limit, a confirmation); ``text`` is plain text."""
    shown = f"{emoji} {escape(text)}".strip()
    return Reply(text=shown[:FALLBACK_LIMIT], blocks=[section(shown)])


def render_placeholder() -> Reply:
    return Reply(text=PLACEHOLDER, blocks=[context(f":mag: _{PLACEHOLDER}_")])


def render_question(user: str, question: str) -> Reply:
    """The bot's copy of an ``/ask`` question, naming who asked; its thread holds the answer."""
    text = f"*<@{user}> asked:* {escape(question)}"
    return Reply(text=text[:FALLBACK_LIMIT], blocks=[section(text)])


def render_apology(reference: str, what: str = "The answer service is unavailable right now") -> Reply:
    return render_notice(
        f"Sorry, I couldn't answer this: {what}. Please try again in a few minutes. "
        f"If it keeps happening, give your admin this reference: {reference}",
        emoji=":warning:",
    )


def block_chars(block: dict[str, Any]) -> int:
    """Characters of text a block carries (what Slack's cumulative limit counts)."""
    texts = [block.get("text")] + [element.get("text") for element in block.get("elements") or []]
    return sum(len(t.get("text", "") if isinstance(t, dict) else t or "") for t in texts)


def _fit_sections(body: str, *, max_sections: int, budget: int) -> tuple[list[str], bool]:
    pieces = split(body, SECTION_LIMIT) or [" "]
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if len(kept) == max_sections or used + len(piece) > budget:
            room = min(budget - used, SECTION_LIMIT)
            if len(kept) < max_sections and room > 200:
                kept.append(split(piece, room)[0])
            return kept, True
        kept.append(piece)
        used += len(piece)
    return kept, False


def _fallback(body: str) -> str:
    if len(body) <= FALLBACK_LIMIT:
        return body or " "
    return split(body, FALLBACK_LIMIT - 1)[0] + "…"


def _sources_block(citations: list[Citation]) -> dict[str, Any]:
    return context("*Sources*", *(_source(c) for c in citations[:MAX_SOURCES]))


def _source(citation: Citation) -> str:
    learned = learned_label(citation)
    if learned is not None:  # told apart from the documentation: where and when people settled it
        shown = link(citation.source, learned.text) if citation.source.startswith("https://") else escape(learned.text)
        return f"[{citation.n}] :speech_balloon: {shown} _({NOT_THE_DOCS})_"
    title = citation.title or citation.source
    if citation.heading and citation.heading != title:
        title = f"{title} — {citation.heading}"
    title = title[:SOURCE_LIMIT]
    if citation.source.startswith(("http://", "https://")) and len(citation.source) <= URL_LIMIT:
        return f"[{citation.n}] {link(citation.source, title)}"
    return f"[{citation.n}] {escape(title)}"  # a local file: Slack cannot open it, show the name


def _feedback_block(message_id: int) -> dict[str, Any]:
    def button(action_id: str, label: str) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "value": str(message_id),
        }

    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [button(FEEDBACK_UP, "👍 Helpful"), button(FEEDBACK_DOWN, "👎 Not helpful")],
    }
