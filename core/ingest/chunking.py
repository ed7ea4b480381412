"""Structure-aware chunking: sections first, then a token budget with overlap.

Small neighbouring sections are packed together (a page of one-line sections would otherwise
make chunks too thin to retrieve well); a chunk keeps the heading path and anchor of the first
section it holds, and names later sections inline so their headings stay searchable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:  # only a type here; the loaders module is not needed to count tokens (conversations)
    from core.ingest.loaders import Section

# A token is a word or a punctuation mark: close enough to BPE counts for budgeting, and
# needs no tokenizer download.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_CODE_MARK = re.compile(r"(?<!`)`{1,2}(?!`)")  # an inline code span's delimiter (fences are 3 or more)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_FENCE = re.compile(r"^`{3,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def count_tokens(text: str) -> int:
    """Words and punctuation marks; the backticks of inline code are markup, not text, and do not
    count (so marking code does not move chunk boundaries)."""
    tokens = len(_TOKEN.findall(text))
    return tokens - len(_CODE_MARK.findall(text)) if "`" in text else tokens


@dataclass(frozen=True)
class Chunk:
    position: int
    heading_path: tuple[str, ...]
    anchor: str | None
    text: str
    token_count: int

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)


def heading_line(heading_path: Sequence[str]) -> str:
    """A heading inside a chunk's text, Markdown style, its level the depth of its path: ``## Install``.

    Readers of the text (extracts, prompts) can tell it from a sentence and rebuild its path."""
    return f"{'#' * min(len(heading_path), 6)} {heading_path[-1]}"


@dataclass(frozen=True)
class _Piece:
    text: str
    tokens: int
    glue: str = "\n\n"  # what joins it to the piece before it in a chunk


def _joined(window: list[_Piece]) -> str:
    return window[0].text + "".join(p.glue + p.text for p in window[1:]) if window else ""


def chunk_sections(sections: Sequence[Section], *, max_tokens: int, overlap_tokens: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    pending: list[tuple[Section, str]] = []  # small sections waiting to be packed together
    pending_tokens = 0

    def flush() -> None:
        nonlocal pending, pending_tokens
        if pending:
            first = pending[0][0]
            text = "\n\n".join(body for _, body in pending)
            chunks.append(Chunk(len(chunks), first.heading_path, first.anchor, text, pending_tokens))
        pending, pending_tokens = [], 0

    for section in sections:
        body = section.text.strip()
        if not body:
            continue
        tokens = count_tokens(body)
        if tokens > max_tokens:
            flush()
            for text, n in _split_long(body, max_tokens, overlap_tokens):
                chunks.append(Chunk(len(chunks), section.heading_path, section.anchor, text, n))
            continue
        if pending:
            # Later sections in a packed chunk carry their heading inline, marked as a heading.
            labelled = f"{heading_line(section.heading_path)}\n{body}" if section.heading_path else body
            labelled_tokens = count_tokens(labelled)
            if pending_tokens + labelled_tokens > max_tokens or not _same_branch(pending[0][0], section):
                flush()
            else:
                pending.append((section, labelled))
                pending_tokens += labelled_tokens
                continue
        pending.append((section, body))
        pending_tokens = tokens
    flush()
    return chunks


def _same_branch(first: Section, later: Section) -> bool:
    """Pack only a section with its own subsections or siblings, never across top-level parts."""
    return first.heading_path[:1] == later.heading_path[:1]


def _split_long(text: str, max_tokens: int, overlap_tokens: int) -> Iterable[tuple[str, int]]:
    """Pack paragraphs (or sentences, or words) up to the budget, repeating a tail as overlap."""
    pieces = list(_pieces(text, max_tokens))
    window: list[_Piece] = []
    size = 0
    for piece in pieces:
        if window and size + piece.tokens > max_tokens:
            yield _joined(window), size
            window, size = _overlap_tail(window, overlap_tokens)
            while window and size + piece.tokens > max_tokens:  # the tail itself must leave room
                size -= window.pop(0).tokens
        window.append(piece)
        size += piece.tokens
    if window:
        yield _joined(window), size


def _overlap_tail(window: list[_Piece], overlap_tokens: int) -> tuple[list[_Piece], int]:
    tail: list[_Piece] = []
    size = 0
    for piece in reversed(window):
        if size + piece.tokens > overlap_tokens:
            break
        tail.insert(0, piece)
        size += piece.tokens
    return tail, size


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs; a fenced code block is one paragraph even with blank lines in it."""
    paragraphs: list[str] = []
    fence = ""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if fence:
            paragraphs[-1] += "\n\n" + paragraph
        else:
            paragraphs.append(paragraph)
        for line in paragraph.split("\n"):
            stripped = line.strip()
            opener = _FENCE.match(stripped)
            if fence and stripped.startswith(fence) and not stripped.strip("`"):
                fence = ""
            elif not fence and opener:
                fence = opener.group(0)
    return paragraphs


def _pieces(text: str, max_tokens: int) -> Iterable[_Piece]:
    for paragraph in _paragraphs(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        tokens = count_tokens(paragraph)
        if tokens <= max_tokens:
            yield _Piece(paragraph, tokens)
            continue
        if _FENCE.match(paragraph):
            yield from _code_windows(paragraph, max_tokens)
            continue
        for sentence in _sentences(paragraph):
            tokens = count_tokens(sentence)
            if tokens <= max_tokens:
                yield _Piece(sentence, tokens)
            else:
                yield from _line_windows(sentence, max_tokens)


_LIST_NUMBER = re.compile(r"(?:\d{1,4}|[a-zA-Z])\.")


def _sentences(paragraph: str) -> list[str]:
    """A paragraph cut after its sentences; a list item's number ("13.") stays with its text
    (SQLite's numbered limits were cut into a lone "13." and "Maximum Number Of Rows...")."""
    parts = _SENTENCE_END.split(paragraph)
    spaces = _SENTENCE_END.findall(paragraph)  # what each cut took out, to put back
    sentences = [parts[0]]
    for space, sentence in zip(spaces, parts[1:]):
        if _LIST_NUMBER.fullmatch(sentences[-1].rsplit("\n", 1)[-1].strip()):
            sentences[-1] += space + sentence
        else:
            sentences.append(sentence)
    return sentences


def _line_windows(text: str, max_tokens: int) -> Iterable[_Piece]:
    """A run longer than the budget with no sentence end in it (a long table or list: PostgreSQL's
    function tables, one row per line, came out as word runs starting mid-row) is cut between
    its lines, which stay lines; only a line longer than the budget is cut between words."""
    for number, line in enumerate(text.split("\n")):
        tokens = count_tokens(line)
        if tokens <= max_tokens:
            yield _Piece(line, tokens, "\n" if number else "\n\n")
        else:
            yield from _word_windows(line, max_tokens)


def _code_windows(code: str, max_tokens: int) -> Iterable[_Piece]:
    """A long fenced code block, cut between lines into fenced pieces. Each leaves room for the
    sentence that introduces the code (carried over as overlap), so the two stay together."""
    lines = code.split("\n")
    opener = lines[0]
    fence = _FENCE.match(opener).group(0)  # type: ignore[union-attr]
    body = lines[1:-1] if lines[-1].strip() == fence else lines[1:]
    budget = max(max_tokens // 2, max_tokens - 40)
    window: list[str] = []
    size = count_tokens(opener) + count_tokens(fence)
    for line in body:
        tokens = count_tokens(line)
        if window and size + tokens > budget:
            text = "\n".join([opener, *window, fence])
            yield _Piece(text, count_tokens(text))
            window, size = [], count_tokens(opener) + count_tokens(fence)
        if tokens > budget:  # one giant line: cut between words as a last resort
            yield from _word_windows(line, budget)
            continue
        window.append(line)
        size += tokens
    if window:
        text = "\n".join([opener, *window, fence])
        yield _Piece(text, count_tokens(text))


def _word_windows(text: str, max_tokens: int) -> Iterable[_Piece]:
    """Last resort for a run-on line (minified code, a table row): cut between words."""
    words = text.split()
    step = max(1, max_tokens // 2)  # words often hold more than one token
    for start in range(0, len(words), step):
        piece = " ".join(words[start : start + step])
        yield _Piece(piece, count_tokens(piece))
