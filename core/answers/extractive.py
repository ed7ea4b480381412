"""Answers without a language model: the best passage's decisive span, quoted verbatim.

The answer is the span of one passage that best answers the question (a sentence or a few
neighbouring ones, with the code block or list a sentence introduces), under the heading path it
sits in, and at most two short supporting quotes from other passages. Citation numbers run 1..n in
the order the quotes are shown; ``cited[i]`` is the passage shown as ``[i + 1]``.

A passage's text is read as chunking writes it (core/ingest/chunking.py): paragraphs separated by
blank lines, fenced code with its language, inline headings marked ``## Title``. Headings give
context; they are never quoted as if they were sentences.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from core.ingest.learned_label import learned_label
from core.types import Passage

EXTRACT_NOTE = "_This is an extract from the documents; no language model is configured to write a summary._"

MAX_SUPPORTING = 2
SPAN_CHARS = 500  # the decisive span's prose, before its code
CODE_LINES = 25  # longer code blocks are cut, with a note that they go on
SUPPORT_CHARS = 300
SUPPORT_SHARE = 0.6  # a supporting quote must match at least this share of the best one's score
CANDIDATE_PASSAGES = 4
LABEL_CHARS = 100
MAX_TABS = 6  # tabs of one command quoted together ("npm:", "pnpm:", "Yarn:" ...), when short
TAB_LABEL_CHARS = 30
TAB_NAME_WORDS = 3  # a tab named in a question is quoted alone: "npm", "Yarn (classic)", "Python 3.8+"
TAB_CODE_LINES = 12
LABEL_WORDS = 6  # a term being defined is a few words at most
API_BONUS = 1.5
CODE_SHARE = 0.5  # a question word in the code or label a sentence introduces
HEADING_SHARE = 0.3  # a question word in the heading path the sentence sits under
RANK_PENALTY = 0.15
REMEDY_REACH = 5  # sentences after a span that restates the problem, searched for the remedy
REMEDY_CHARS = 300  # what the remedy may add beyond SPAN_CHARS
SHORT_SPAN = 160  # a span this short takes the next sentence too: one short sentence rarely says it all

# After a colon only a capital or a quote starts a sentence: "Default: `80` | CLI Override: `--print-width`"
# is one line of a table, and "set it to `false`" goes on after its colon.
# A full stop ends a sentence, except in "e.g.", "i.e.", "vs.", "cf." and an ellipsis ("`try` ... `except`").
_NOT_AN_END = r"(?<!\be\.g\.)(?<!\bE\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\bcf\.)(?<!\.\.\.)"
_SENTENCE_END = re.compile(_NOT_AN_END + r"(?<=[.!?])\s+(?=[\"'(\[`*_A-Z0-9])|(?<=:)\s+(?=[\"'(\[*_A-Z])")
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*[a-z0-9]|[a-z0-9]")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])([a-z]+)")  # "WebSocketDisconnect": also "Web Socket Disconnect"
_PARTS = re.compile(r"[._-]+")
_MARKUP_LINE = re.compile(r"^(?:/{3}.*|\{\*.*\*\})$")  # MkDocs block markers ("/// note"), include stubs
_HEADING = re.compile(r"^(#{1,6}) (\S.*)$")
_FENCE = re.compile(r"^(`{3,})\s*([\w+#.-]*)")
# An option, a setting, a call or a class name: "--lf", "cache_dir", "pytest.mark.xfail", "UploadFile", "f()".
# Not a version ("0.122.0") nor a product name in capitals ("FastAPI", "OpenAPI"): they name no API.
_NAMES_API = re.compile(
    r"(?<![\w-])--?[a-z][\w-]+|\b[a-z]+_[a-z_]+\b|\b[A-Za-z_]\w*\.\w+\.?\w*\(?|\b[A-Z][a-z]+[A-Z][a-z]\w*|\b\w+\(\)|\w=[\w\"']"
)
# A sentence that opens by pointing back ("This would make pytest look for...") explains the code above it.
_POINTS_BACK = re.compile(r"^(?:This|That|These|The above|The example above|Here)\b")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s")
_STOPWORDS = frozenset(
    "a an the and or but if of to in on for with by at from as is are was were be been being do does did "
    "how what when where which who whom why can could should would will shall may might must i you we they "
    "it its this that these those my your our their me us them there here not no yes so than then too very "
    "about into over under up down out any all some each more most other such only own same just also get "
    "use using used want need have has had".split()
)


def terms(text: str) -> set[str]:
    """Stemmed content words; a name such as ``WebSocketDisconnect`` or ``python_files`` also gives its parts."""
    words = _WORD.findall(text.lower()) + _WORD.findall(_CAMEL.sub(r" \1\2", text).lower())
    found = set()
    for word in words:
        parts = [word.strip("._-"), *(_PARTS.split(word) if _PARTS.search(word) else ())]
        found.update(_stem(part) for part in parts if part and part not in _STOPWORDS)
    return found


def _shown_len(text: str) -> int:
    """Length as read: the backticks of inline code are markup (the budgets were set on plain text)."""
    return len(text) - text.count("`")


def _stem(word: str) -> str:
    """A deliberately crude stemmer: enough to match 'limits' with 'limit' and 'rotating' with 'rotate'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# -- reading a passage ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Block:
    kind: str  # "prose", "list", "code" or "label" (a term a definition follows: "--lf, --last-failed")
    text: str
    path: tuple[str, ...]  # the heading path the block sits under


def _blocks(passage: Passage) -> list[_Block]:
    """The passage's paragraphs, list runs and code blocks, each with its heading path."""
    base = _base_path(passage)
    path = base
    blocks: list[_Block] = []
    prose: list[str] = []

    def flush() -> None:
        text = "\n".join(prose).strip()
        prose.clear()
        if text:
            lines = text.split("\n")
            if all(_LIST_ITEM.match(line) for line in lines) or (
                len(lines) > 1 and all(" | " in line for line in lines)  # table rows: lines, like a list
            ):
                kind = "list"
            elif len(lines) == 1 and _shown_len(text) <= LABEL_CHARS and not text.endswith((".", "!", "?", ":")):
                kind = "label"
            else:
                kind = "prose"
            blocks.append(_Block(kind, text, path))

    lines = passage.text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line.strip())
        heading = _HEADING.match(line)
        if fence:
            flush()
            marker, language = fence.group(1), fence.group(2)
            code: list[str] = []
            i += 1
            while i < len(lines) and not (lines[i].strip().startswith(marker) and not lines[i].strip().strip("`")):
                code.append(lines[i])
                i += 1
            blocks.append(_Block("code", _code_fence(code, language, marker), path))
        elif heading:
            flush()
            level = len(heading.group(1))
            path = (*base[: max(level - 1, 1)], heading.group(2).strip())
        elif not line.strip() or _MARKUP_LINE.match(line.strip()):
            flush()
        elif _LIST_ITEM.match(line) and prose and not _LIST_ITEM.match(prose[-1]):
            flush()  # "Options:" then "- a" / "- b": the list is its own block
            prose.append(line)
        else:
            prose.append(line)
        i += 1
    flush()
    return _definitions_only(blocks)


def _definitions_only(blocks: list[_Block]) -> list[_Block]:
    """A label is a term a definition follows ("--lf, --last-failed" then its description): a short
    unpunctuated line that is not followed by prose, or that is a sentence of its own ("To mark a
    command as deprecated pass in deprecated=True" before its example), is prose to be quoted."""
    kept = []
    for b, block in enumerate(blocks):
        # A heading in between ends the definition: "default: false" closes one option's entry,
        # it does not label the next option's description.
        after = blocks[b + 1] if b + 1 < len(blocks) else None
        following = after.kind if after is not None and after.path == block.path else None
        if block.kind == "label" and (len(block.text.split()) > LABEL_WORDS or following not in ("prose", "list")):
            block = _Block("prose", block.text, block.path)
        kept.append(block)
    return kept


def _base_path(passage: Passage) -> tuple[str, ...]:
    """Title first, then the passage's heading path (which leaves out an H1 that repeats the title)."""
    parts = tuple(p.strip() for p in passage.heading.split(" > ") if p.strip())
    title = passage.title.strip()
    if parts and parts[0].lower() == title.lower():
        return parts
    return (title, *parts) if title else parts


def _code_fence(lines: list[str], language: str, marker: str) -> str:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if len(lines) > CODE_LINES:
        lines = [*lines[:CODE_LINES], "…"]
    return f"{marker}{language}\n" + "\n".join(lines) + f"\n{marker}"


# -- candidate spans -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Unit:
    """One sentence (or list item) of a passage, with what follows it when it introduces something."""

    source: int  # index into the passages
    block: int
    order: int  # position inside the block
    text: str
    path: tuple[str, ...]
    introduces: tuple[_Block, ...] = ()  # the code or list right after a sentence that introduces it
    lead: str = ""  # the label a definition's first sentence belongs to ("--lf, --last-failed")
    refers_to: _Block | None = None  # the code right before a sentence that points back at it ("This would make...")
    line: bool = False  # a list item or table row: quoted on a line of its own


def _units(index: int, passage: Passage) -> list[_Unit]:
    blocks = _blocks(passage)
    headings = {h.lower() for h in _base_path(passage)} | {b.path[-1].lower() for b in blocks if b.path}
    units = []
    for b, block in enumerate(blocks):
        if block.kind in ("code", "label"):
            continue
        label = blocks[b - 1].text if b and blocks[b - 1].kind == "label" else ""
        pieces = block.text.split("\n") if block.kind == "list" else _sentences(block.text)
        for order, piece in enumerate(pieces):
            text = " ".join(piece.split())
            if _shown_len(text) < 12 or text.lower().rstrip(":") in headings:
                continue
            last = order == len(pieces) - 1
            introduces = _introduced(text, block, blocks[b + 1 :]) if last else ()
            before = blocks[b - 1] if order == 0 and b and blocks[b - 1].kind == "code" else None
            refers_to = before if before is not None and _POINTS_BACK.match(text) else None
            units.append(_Unit(index, b, order, text, block.path, introduces, label if order == 0 else "", refers_to,
                               block.kind == "list"))
    return units


def _introduced(sentence: str, block: _Block, after: list[_Block]) -> tuple[_Block, ...]:
    """What a block's last sentence leads into: the code or list after "...like this:", the example
    after a paragraph, or the code after a one-line "Examples:" that follows it."""
    if not after:
        return ()
    following = after[0]
    if following.kind == "list" and sentence.endswith(":"):
        return (following,)
    if following.kind == "code" and (sentence.endswith(":") or block.kind == "prose"):
        return (following,)
    if len(after) > 1 and _is_code_label(following) and after[1].kind == "code":
        return _tab_run(after) or (following, after[1])
    return ()


def _is_code_label(block: _Block) -> bool:
    return block.kind == "prose" and block.text.endswith(":") and _shown_len(block.text) <= LABEL_CHARS


def _tab_run(after: list[_Block]) -> tuple[_Block, ...]:
    """Tabs of one command ("npm:" code, "pnpm:" code, "Yarn:" code...: Docusaurus, Starlight and
    MkDocs Material tabs as loaded), all of them when short: a reader picks their own tool, and
    quoting only the first answered "how do I ... with pnpm" with the npm command."""
    pairs: list[tuple[_Block, _Block]] = []
    while len(after) >= 2 * (len(pairs) + 1):
        label, code = after[2 * len(pairs)], after[2 * len(pairs) + 1]
        if not (_is_code_label(label) and _shown_len(label.text) <= TAB_LABEL_CHARS and code.kind == "code"):
            break
        pairs.append((label, code))
    code_lines = sum(len(code.text.split("\n")) - 2 for _, code in pairs)  # fences are not lines of code
    if len(pairs) < 2 or len(pairs) > MAX_TABS or code_lines > TAB_CODE_LINES:
        return ()
    return tuple(block for pair in pairs for block in pair)


def _tabs_asked_for(introduced: tuple[_Block, ...], wanted: set[str]) -> tuple[_Block, ...]:
    """Of a run of tabs, the ones the question names ("...with pnpm", "...in pyproject.toml"), or all
    of them when it names none. Words every label shares ("Install with") pick nothing.

    Only names choose: a run of steps ("Add it to your project:", "Import `Form`:") is all needed."""
    if len(introduced) < 4:  # only a tab run (label, code, label, code...) introduces more than two blocks
        return introduced
    if any(len(label.text.split()) > TAB_NAME_WORDS for label in introduced[::2]):
        return introduced
    labels = [terms(label.text) for label in introduced[::2]]
    shared = set.intersection(*labels)
    named = [i for i, label in enumerate(labels) if (label - shared) & wanted]
    if not named or len(named) == len(labels):
        return introduced
    return tuple(block for i in named for block in introduced[2 * i : 2 * i + 2])


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]


@dataclass(frozen=True)
class _Scored:
    score: float
    unit: _Unit


def _score_units(question: str, passages: Sequence[Passage]) -> tuple[list[_Scored], list[_Unit]]:
    wanted = terms(question)
    units = [u for i, p in enumerate(passages[:CANDIDATE_PASSAGES]) for u in _units(i, p)]
    found = [(terms(u.text), terms(" ".join([u.lead, *(b.text for b in _shown_blocks(u))])), terms(" ".join(u.path))) for u in units]
    weight = _term_weights(wanted, [own | code for own, code, _ in found])
    scored = []
    for unit, (own, code, heading) in zip(units, found):
        # What the sentence says counts fully; the code it introduces and the heading it sits
        # under say what it is about, and count less. Rare question words say more than common
        # ones; a question in the docs rarely answers anything; higher-ranked passages are more
        # likely right.
        score = sum(weight[t] for t in own & wanted)
        score += CODE_SHARE * sum(weight[t] for t in (code - own) & wanted)
        score += HEADING_SHARE * sum(weight[t] for t in (heading - own - code) & wanted)
        if not own & wanted and not code & wanted:
            continue
        if unit.text.endswith("?"):
            score *= 0.3
        if _NAMES_API.search(unit.text) or unit.lead or any(b.kind == "code" for b in unit.introduces):
            score *= API_BONUS  # how-to answers name the option, setting or call to use
        score /= 1 + RANK_PENALTY * unit.source
        scored.append(_Scored(score, unit))
    scored.sort(key=lambda s: (-s.score, s.unit.source, s.unit.block, s.unit.order))
    return scored, units


def _shown_blocks(unit: _Unit) -> tuple[_Block, ...]:
    """The code and lists quoted with a sentence: what it points back at, and what it introduces."""
    return ((unit.refers_to,) if unit.refers_to else ()) + unit.introduces


def _term_weights(wanted: set[str], unit_terms: list[set[str]]) -> dict[str, float]:
    total = len(unit_terms) + 1
    return {term: math.log(1 + total / (1 + sum(term in found for found in unit_terms))) for term in wanted}


# -- the answer ------------------------------------------------------------------------------------
def extractive_answer(question: str, passages: Sequence[Passage]) -> tuple[str, list[int]]:
    """The decisive span of the best passage, its heading path, and up to two supporting quotes.

    Returns the Markdown text and ``cited``: the 1-based passage numbers shown as [1], [2], ...
    """
    if not passages:
        return EXTRACT_NOTE, []
    scored, units = _score_units(question, passages)
    if scored:
        best = scored[0]
        span = _span(best.unit, {s.unit for s in scored}, units)
    else:  # nothing matches a word of the question: the top passage's opening is the best guess
        opening = [u for u in units if u.source == 0][:2]
        if not opening:
            return _whole_passage(passages[0]), [1]
        best = _Scored(0.0, opening[0])
        span = opening
    parts = [f"From *{_shown_path(best.unit.path, passages[best.unit.source])}* [1]:",
             _quote_span(span, terms(question))]
    cited = [best.unit.source + 1]
    supports = _supporting(scored, best, span)
    if supports:
        parts.append("Also:")
        for unit in supports:
            number = _number_for(unit.source, cited, passages)
            parts.append(f"> {_supporting_text(unit)} [{number}]")
    parts.append(EXTRACT_NOTE)
    return "\n\n".join(parts), cited


def _number_for(source: int, cited: list[int], passages: Sequence[Passage]) -> int:
    """The citation number of passage ``source``: a passage from a page section already cited (two
    chunks of one long section) shares its number, so no link is listed twice."""
    link = passages[source].source
    for number, shown in enumerate(cited, start=1):
        if passages[shown - 1].source == link:
            return number
    cited.append(source + 1)
    return len(cited)


def _span(best: _Unit, matching: set[_Unit], units: list[_Unit]) -> list[_Unit]:
    """The best sentence, grown with the matching sentences next to it in its block (within budget)."""
    block = [u for u in units if u.source == best.source and u.block == best.block]
    lo = hi = block.index(best)
    size = _shown_len(best.text)
    grew = True
    while grew:
        grew = False
        for at in (hi + 1, lo - 1):
            if 0 <= at < len(block) and block[at] in matching and size + _shown_len(block[at].text) <= SPAN_CHARS:
                size += _shown_len(block[at].text)
                lo, hi = min(lo, at), max(hi, at)
                grew = True
    if not block[hi].introduces and hi + 1 < len(block) and (block[hi].text.endswith(":") or size < SHORT_SPAN):
        hi += 1  # "Do this:" is nothing without what follows
    return _with_the_remedy(block[lo : hi + 1], units)


def _with_the_remedy(span: list[_Unit], units: list[_Unit]) -> list[_Unit]:
    """A span that restates the problem ("you will see two schemas") grown to the sentence after it
    that names the option, call or code to use, in the same section, when one follows closely.

    Documentation says the situation in the question's words first and the remedy next, and the
    remedy is what a how-to question asks for."""
    if any(u.lead or any(b.kind == "code" for b in u.introduces) for u in span):
        return span
    named = {name for u in span for name in _NAMES_API.findall(u.text)}
    last = span[-1]
    after = [u for u in units if u.source == last.source and (u.block, u.order) > (last.block, last.order)]
    size = sum(_shown_len(u.text) for u in span)
    for reach, unit in enumerate(after[:REMEDY_REACH]):
        if unit.path[: len(last.path)] != last.path:  # the section ends (its sub-sections belong to it)
            break
        size += _shown_len(unit.text)
        if size > SPAN_CHARS + REMEDY_CHARS:
            break
        if set(_NAMES_API.findall(unit.text)) - named or unit.lead or any(b.kind == "code" for b in unit.introduces):
            return [*span, *after[: reach + 1]]
    return span


def _quote_span(span: list[_Unit], wanted: set[str]) -> str:
    paragraphs: list[list[_Unit]] = []
    for before, unit in zip([None, *span], span):
        if before is None or unit.block != before.block:
            paragraphs.append([])
        paragraphs[-1].append(unit)
    # Sentences of a paragraph run on; list items and table rows keep their lines.
    prose = "\n>\n> ".join(("\n> " if p[0].line else " ").join(u.text for u in p) for p in paragraphs)
    lines = [span[0].refers_to.text] if span[0].refers_to else []
    lines.append(f"> {span[0].lead}\n> {prose}" if span[0].lead else f"> {prose}")
    for block in _tabs_asked_for(span[-1].introduces, wanted):
        if block.kind == "code":
            lines.append(block.text)  # code stays code, outside the quote, so it renders as code
        else:
            lines.append("\n".join(f"> {line}" for line in _clip_lines(block.text)))
    return "\n\n".join(lines)


def _supporting(scored: list[_Scored], best: _Scored, span: list[_Unit]) -> list[_Unit]:
    """At most two short quotes from other passages that match nearly as well as the best one."""
    chosen: list[_Unit] = []
    seen = {" ".join(u.text for u in span).lower()}
    for item in scored[1:]:
        unit = item.unit
        if len(chosen) == MAX_SUPPORTING or item.score < SUPPORT_SHARE * best.score:
            break
        if unit.source == best.unit.source or any(unit.source == c.source for c in chosen):
            continue
        if unit.text.endswith((":", "?")) or any(unit.text.lower() in s or s in unit.text.lower() for s in seen):
            continue
        chosen.append(unit)
        seen.add(unit.text.lower())
    return chosen


def _supporting_text(unit: _Unit) -> str:
    """A supporting quote keeps the term its sentence defines ("--junit-xml=path: Create junit-xml
    style report file"): the sentence alone would leave out the very option it describes."""
    text = _clip(unit.text, SUPPORT_CHARS)
    return f"{_clip(unit.lead, LABEL_CHARS)}: {text}" if unit.lead else text


def _shown_path(path: tuple[str, ...], passage: Passage) -> str:
    learned = learned_label(passage.title)
    if learned is not None:  # not a document: say where people settled it (core/ingest/learned.py)
        return f"the thread {learned.text}"
    return " › ".join(_escape_emphasis(p) for p in path) or _escape_emphasis(passage.title) or passage.source


def _escape_emphasis(text: str) -> str:
    return text.replace("*", r"\*")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    if cut.count("`") % 2:  # cut inside inline code: close it, or the rest of the answer renders as code
        cut += "`"
    return cut + " …"


def _clip_lines(text: str, max_lines: int = 8) -> list[str]:
    lines = text.split("\n")
    return lines if len(lines) <= max_lines else [*lines[:max_lines], "…"]


def _whole_passage(passage: Passage) -> str:
    return f"From *{_shown_path(_base_path(passage), passage)}* [1]:\n\n> {_clip(' '.join(passage.text.split()), SPAN_CHARS)}\n\n{EXTRACT_NOTE}"
