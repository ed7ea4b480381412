"""Answer -> Discord messages: text split under 2000 characters, a sources embed, error texts.

Everything here is pure (no network) so it can be unit-tested without a client.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import discord

from core.errors import DocRagError, RateLimited, UpstreamUnavailable, new_reference
from core.ingest.learned_label import NOT_THE_DOCS, learned_label
from core.types import Citation

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
CITATION_TITLE_LIMIT = 200  # keeps one long title from crowding out the other sources
FENCE = "```"


# -- errors ------------------------------------------------------------------------------------
def error_text(error: BaseException) -> str:
    """What the user reads instead of an answer; never empty, never a stack trace."""
    if isinstance(error, RateLimited):
        return f"⏳ {error}"
    if isinstance(error, UpstreamUnavailable):
        service = error.service[:1].lower() + error.service[1:]  # "the language model", "the database"
        return (
            f"Sorry, I couldn't answer right now: {service} is temporarily unavailable. "
            f"Please try again in a few minutes. (reference `{error.reference}`)"
        )
    if isinstance(error, DocRagError):
        return str(error)
    reference = new_reference()
    log.error("discord.unexpected_error reference=%s", reference, exc_info=error)
    return f"Sorry, something went wrong on my side. Please try again later. (reference `{reference}`)"


# -- message splitting -------------------------------------------------------------------------
def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at paragraph boundaries; a code block that must be split is closed and reopened."""
    if 0 < len(text) <= limit:
        return [text]
    parts = [part for block in _blocks(text) for part in _fit_block(block, limit)]
    return _pack(parts, limit, "\n\n") or ["…"]


@dataclass(frozen=True)
class _Block:
    lines: list[str]
    is_code: bool

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _is_fence(line: str) -> bool:
    return line.strip().startswith(FENCE)


def _blocks(text: str) -> list[_Block]:
    """Paragraphs (separated by blank lines) and whole fenced code blocks (blank lines included)."""
    blocks: list[_Block] = []
    current: list[str] = []
    in_code = False
    for line in text.splitlines():
        if in_code:
            current.append(line)
            if _is_fence(line) and not line.strip().strip("`"):
                blocks.append(_Block(current, True))
                current, in_code = [], False
        elif _is_fence(line) and not _is_one_line_code(line):
            _flush(blocks, current)
            current, in_code = [line], True
        elif line.strip():
            current.append(line)
        else:
            _flush(blocks, current)
            current = []
    if in_code:  # an unclosed fence: close it, or Discord renders the rest of the reply as code
        blocks.append(_Block([*current, FENCE], True))
    else:
        _flush(blocks, current)
    return blocks


def _is_one_line_code(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) > 6 and stripped.endswith(FENCE) and stripped.count(FENCE) >= 2


def _flush(blocks: list[_Block], lines: list[str]) -> None:
    if lines:
        blocks.append(_Block(list(lines), False))


def _fit_block(block: _Block, limit: int) -> list[str]:
    if len(block.text) <= limit:
        return [block.text]
    if block.is_code:
        return _split_code(block.lines, limit)
    pieces = [piece for line in block.lines for piece in _split_words(line, limit)]
    return _pack(pieces, limit, "\n")


def _split_code(lines: list[str], limit: int) -> list[str]:
    """Split between lines; every piece gets the opening fence (with its language) and a closing one."""
    opening, body = lines[0].strip(), lines[1:-1]
    budget = limit - len(opening) - len(FENCE) - 2
    pieces = [line[i : i + budget] for line in body for i in range(0, max(len(line), 1), budget)]
    return [f"{opening}\n{chunk}\n{FENCE}" for chunk in _pack(pieces, budget, "\n", keep_empty=True)]


def _split_words(line: str, limit: int) -> list[str]:
    """A line longer than the limit is cut between words (a single giant word has to be cut)."""
    if len(line) <= limit:
        return [line]
    words = [word[i : i + limit] for word in line.split(" ") for i in range(0, max(len(word), 1), limit)]
    return _pack(words, limit, " ")


def _pack(parts: list[str], limit: int, separator: str, *, keep_empty: bool = False) -> list[str]:
    """Greedily join parts (each at most ``limit`` long) into as few strings as fit the limit."""
    packed: list[str] = []
    current: str | None = None
    for part in parts:
        if not part and not keep_empty:
            continue
        if current is not None and len(current) + len(separator) + len(part) <= limit:
            current = f"{current}{separator}{part}"
            continue
        if current is not None:
            packed.append(current)
        current = part
    if current is not None:
        packed.append(current)
    return packed


# -- sources embed -------------------------------------------------------------------------------
def sources_embed(citations: list[Citation], grounded: bool = True) -> discord.Embed | None:
    """Numbered, linked titles; sources that do not fit the description are counted, not dropped silently."""
    if not citations:
        return None
    title = "Sources" if grounded else "Closest sources (not a direct answer)"
    lines: list[str] = []
    for index, citation in enumerate(citations):
        line = _citation_line(citation)
        rest = len(citations) - index
        more = f"\n…and {rest - 1} more" if rest > 1 else ""
        if len("\n".join([*lines, line])) + len(more) > EMBED_DESCRIPTION_LIMIT:
            lines.append(f"…and {rest} more")
            break
        lines.append(line)
    return discord.Embed(title=title[:EMBED_TITLE_LIMIT], description="\n".join(lines), colour=discord.Colour.blurple())


def _citation_line(citation: Citation) -> str:
    learned = learned_label(citation)
    if learned is not None:  # told apart from the documentation: where and when people settled it
        shown = f"[{learned.text}]({_link_target(citation.source)})" if citation.source.startswith("https://") else learned.text
        return f"**[{citation.n}]** 💬 {shown} *({NOT_THE_DOCS})*"
    label = citation.title or citation.source
    if citation.heading and citation.heading != citation.title:
        label = f"{label} — {citation.heading}"
    label = _shorten(label.replace("[", "(").replace("]", ")"), CITATION_TITLE_LIMIT)
    if citation.source.startswith(("https://", "http://")):
        return f"**[{citation.n}]** [{label}]({_link_target(citation.source)})"
    return f"**[{citation.n}]** {label} (`{citation.source[:300]}`)"  # file sources are not clickable


def _link_target(url: str) -> str:
    # A ")" or a space would end the Markdown link early.
    return url.replace(" ", "%20").replace(")", "%29")[:1000]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
