"""A PDF's page text as a reader sees it: no running heads, page numbers or contents pages,
words whole across line ends, and the outline's headings instead of "Page 12".

pypdf gives each page's text layer line by line, print furniture included. Read on the R manuals
(texinfo PDFs), an answer quoted "Chapter 11: Statistical models in R 58" and "Infor- mation",
and every source was labelled "Page N" although the PDF's outline names each section.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

# A line that is only a page number (arabic or roman).
_FOLIO = re.compile(r"\s*(?:\d{1,4}|[ivxlcdm]{1,8})\s*", re.I)
# A contents or index entry: a title, dot leaders, maybe the page number.
_LEADERS = re.compile(r".*?(?:\.\s?){5,}\s*(?:\d{1,4}|[ivxlcdm]{1,8})?\s*", re.I)
# A word cut at a line end: "Infor-" / "mation".
_HYPHENATED = re.compile(r"([A-Za-z0-9]*[A-Za-z0-9])[-\u00ad]\n([A-Za-z0-9]+)(\S*)[ \t]?")
_WORD = re.compile(r"[A-Za-z]+")
# A running head or foot repeats, its page number aside, at the same edge of several pages.
_RUNNING_MIN_PAGES = 3


_ROMAN_AT_AN_END = re.compile(r"^[ivxlcdm]{1,7}\b|\b[ivxlcdm]{1,7}$")


def _edge_key(line: str) -> str:
    """A line with its page number masked: arabic anywhere, roman at either end (front matter's
    "Debian Reference xxiv")."""
    return _ROMAN_AT_AN_END.sub("#", re.sub(r"\d+", "#", " ".join(line.split())))


def _edge_number(line: str) -> int | None:
    """The page number a running head or foot prints at either end ("Chapter 11: Models 58")."""
    words = line.split()
    if len(line) > 120 or not words:
        return None
    for word in (words[-1], words[0]):
        if word.isdigit() and len(word) <= 4:
            return int(word)
    return None


def _printed_offset(split: list[list[str]], heads: Counter[str], feet: Counter[str]) -> int | None:
    """PDF page number minus printed page number, as most bare page numbers and repeated running
    heads say (front matter makes them differ); None when the pages print none."""
    offsets: Counter[int] = Counter()
    for index, lines in enumerate(split, start=1):
        for line, counts in ((lines[0], heads), (lines[-1], feet)) if lines else ():
            number = _edge_number(line)
            if number is not None and (line.strip().isdigit() or counts[_edge_key(line)] >= _RUNNING_MIN_PAGES):
                offsets[index - number] += 1
    return offsets.most_common(1)[0][0] if offsets else None


def strip_page_furniture(pages: list[str]) -> list[str]:
    """Each page's text without its running head and foot, bare page numbers and contents pages."""
    split = [[ln for ln in page.split("\n") if ln.strip()] for page in pages]
    heads = Counter(_edge_key(lines[0]) for lines in split if lines)
    feet = Counter(_edge_key(lines[-1]) for lines in split if lines)
    offset = _printed_offset(split, heads, feet)

    def furniture(line: str, counts: Counter[str], page: int) -> bool:
        if _FOLIO.fullmatch(line):
            return True
        key = _edge_key(line)
        if "#" in key and counts[key] >= _RUNNING_MIN_PAGES:
            return True
        # a short chapter's head repeats on too few pages, but it prints this page's number
        return offset is not None and _edge_number(line) == page - offset

    out: list[str] = []
    for page, lines in enumerate(split, start=1):
        if lines and furniture(lines[0], heads, page):
            lines = lines[1:]
        if lines and furniture(lines[-1], feet, page):
            lines = lines[:-1]
        kept = [ln for ln in lines if not _LEADERS.fullmatch(ln)]
        # a contents page: mostly leader lines, the rest entries whose leaders were cut short
        leaders = len(lines) - len(kept)
        out.append("" if leaders >= 3 and leaders * 2 >= len(lines) else "\n".join(kept))
    return out


def known_words(pages: Iterable[str]) -> set[str]:
    """The words the document writes whole (the halves of words cut at line ends left out)."""
    return {w.lower() for page in pages for w in _WORD.findall(_HYPHENATED.sub(" ", page))}


def join_hyphenated(text: str, words: set[str]) -> str:
    """Words hyphenated at a line end made whole; the hyphen stays when both halves are words
    and the document never writes them as one ("well-" / "known" -> "well-known", "UTF-" / "8" -> "UTF-8")."""

    def joined(m: re.Match[str]) -> str:
        head, tail, after = m.group(1), m.group(2), m.group(3)  # after: "packages)" keeps its ")"
        whole = head + tail
        # a cut word: the whole is known, or its end ("tems" of "filesys-tems") is no word of its own
        known = whole.lower() in words or tail.lower() not in words
        cut_word = head[-1].islower() and tail[0].islower() and known
        return (whole if cut_word else f"{head}-{tail}") + after + "\n"

    return _HYPHENATED.sub(joined, text)


# A web address broken at a line end: the next line goes on with more of an address
# ("https://CRAN." / "R-project.org/package=boot)"), not with a word ("https://x.org." / "The").
# An address ending in "." goes on only after a letter or digit ("https://CRAN." yes,
# "...html)." no); the next line's first character is a letter, "/" or "~" (not "1.2 Next").
_BROKEN_URL = re.compile(
    r"(https?://|https?://\S*(?:[/_=-]|(?<=\w)\.))\n"
    r"(?=[A-Za-z/~](?:[^\s/.=?#&]*[/.=?#&][^\s.]|(?<=[a-z])(?:rg|om|et|du|tml?|df)\b))"
)


def join_broken_urls(text: str) -> str:
    """Addresses the line breaking cut, whole again (a reader copies them; a space broke them)."""
    for _ in range(4):  # an address cut twice needs a second pass: a match consumed its start
        text, cuts = _BROKEN_URL.subn(r"\1", text)
        if not cuts:
            break
    return text


def outline_starts(reader: Any) -> dict[int, list[tuple[str, ...]]]:
    """Page index -> the heading paths of the outline entries that start on it, in order.

    A broken or missing outline gives none (the pages keep their "Page N" label)."""
    starts: dict[int, list[tuple[str, ...]]] = {}

    def walk(items: list[Any], parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = " ".join(str(item.title or "").split())
            page = reader.get_destination_page_number(item)
            if not title or page is None or page < 0:
                continue
            last = (*parents, title)
            starts.setdefault(page, []).append(last)

    try:
        walk(list(reader.outline), ())
    except Exception:  # an outline pypdf cannot follow is no reason to refuse the text
        return {}
    return starts


def _heading_line(title: str) -> re.Pattern[str]:
    # texinfo prints "11.2 Linear models" for the outline's "Linear models"; appendices "A.1"
    # and "Appendix A A sample session" for "A A sample session"
    return re.compile(r"(?:(?:chapter|appendix)\s+)?(?:(?:[A-Z]|\d+)(?:\.\d+)*\.?\s+)?" + re.escape(title), re.I)


def _find_heading(lines: list[str], start: int, title: str) -> tuple[int, int] | None:
    """(first line, number of lines) of the heading printing ``title``: one line, or two when
    a long heading wraps ("11.7 Nonlinear least squares and maximum likelihood" / "models")."""
    pattern = _heading_line(title)
    for i in range(start, len(lines)):
        line = lines[i].strip()
        if pattern.fullmatch(line):
            return i, 1
        if i + 1 < len(lines) and pattern.fullmatch(f"{line} {lines[i + 1].strip()}"):
            return i, 2
    return None


def split_at_headings(
    body: str, starting: list[tuple[str, ...]], current: tuple[str, ...]
) -> tuple[list[tuple[tuple[str, ...], str]], tuple[str, ...]]:
    """A page's text cut where the outline's entries for it begin: [(heading path, text)], and
    the path in effect at the page's end. A heading line found becomes the path, not text; an
    entry whose heading is not found starts where the previous one did."""
    lines = body.split("\n")
    cuts: list[tuple[tuple[str, ...], int]] = [(current, 0)]  # (path, its first line)
    headings: set[int] = set()
    at = 0
    for path in starting:
        found = _find_heading(lines, at, path[-1])
        if found is None:
            cuts.append((path, at))
            continue
        first, count = found
        headings.update(range(first, first + count))
        cuts.append((path, first))
        at = first + count
    parts: list[tuple[tuple[str, ...], str]] = []
    for n, (path, start) in enumerate(cuts):
        end = cuts[n + 1][1] if n + 1 < len(cuts) else len(lines)
        text = "\n".join(lines[i] for i in range(start, end) if i not in headings).strip()
        if text:
            parts.append((path, text))
    return parts, cuts[-1][0]
