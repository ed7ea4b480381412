"""Answers and search results for a terminal, rendered with rich.

Answers are Markdown: in a terminal rich draws emphasis, lists and code blocks with styles; when
the output is piped or captured the same rendering comes out as plain text, without markup
characters or colour codes. Document text (search snippets, titles, sources) is printed as
literal text, never interpreted as markup. rich is imported on first use, not at start-up.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from rich.console import Console

    from core.types import Answer, Citation, Passage

SNIPPET_CHARS = 300
ELLIPSIS = "…"
_TRAILING_PUNCTUATION = re.compile(r"[\s,;:\-–—(\[{]+$")


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line, cut at the last word boundary within ``limit`` characters, with an
    ellipsis when anything was cut. A single word longer than ``limit`` is cut inside it."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - len(ELLIPSIS) + 1]
    space = head.rfind(" ")
    cut = head[:space] if space > 0 else head[: limit - len(ELLIPSIS)]
    return _TRAILING_PUNCTUATION.sub("", cut) + ELLIPSIS


def render_answer(answer: Answer, console: Console | None = None) -> None:
    """The answer (Markdown) followed by its numbered sources."""
    from rich.markdown import Markdown

    console = console or terminal()
    console.print(Markdown(answer.text, hyperlinks=console.is_terminal))
    if answer.citations:
        console.print()
        label = "Sources:" if answer.grounded else "Closest sources (not a direct answer):"
        console.print(label, style="bold")
        for citation in answer.citations:
            console.print(_source_line(citation))


def render_passages(passages: Sequence[Passage], console: Console | None = None) -> None:
    """Search results: rank, title and heading, score, source, and a snippet cut at a word."""
    from rich.text import Text

    console = console or terminal()
    for n, passage in enumerate(passages, start=1):
        line = Text(f"{n}. ")
        line.append(passage.title, style="bold")
        if passage.heading:
            line.append(f" — {passage.heading}")
        line.append(f"  ({round(passage.score, 5)})", style="dim")
        # One line each, as long as it is: the terminal wraps it, a pipe gets whole lines.
        console.print(line, soft_wrap=True)
        console.print(Text("   ").append(_link_text(passage.source, passage.source)), soft_wrap=True)
        console.print(Text("   " + snippet(passage.text)), soft_wrap=True)


def terminal() -> Console:
    """A console on the current standard output (as click and its test runner see it)."""
    from rich.console import Console

    # Highlighting would colour numbers and paths inside document text; markup is never wanted.
    return Console(highlight=False, emoji=False, markup=False, soft_wrap=False)


def _source_line(citation: Citation):
    from rich.text import Text

    from core.ingest.learned_label import NOT_THE_DOCS, learned_label

    line = Text(f"  [{citation.n}] ")
    learned = learned_label(citation)
    if learned is not None:  # told apart from the documentation
        line.append(_link_text(learned.text, citation.source)).append(f" ({NOT_THE_DOCS})", style="italic")
        return line.append("\n      ").append(citation.source, style="dim")
    line.append(_link_text(citation.title or citation.source, citation.source))
    if citation.heading:
        line.append(f" — {citation.heading}")
    if citation.title and citation.title != citation.source:
        line.append("\n      ").append(citation.source, style="dim")
    return line


def _link_text(label: str, source: str):
    """``label``, clickable in terminals that support hyperlinks when ``source`` is a web URL."""
    from rich.style import Style
    from rich.text import Text

    if source.startswith(("http://", "https://")):
        return Text(label, style=Style(link=source))
    return Text(label)
