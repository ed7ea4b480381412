"""HTML pages: the main content, without navigation, permalinks or scripts."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from core.ingest.loaders.cleaning import INVISIBLE, code_span, collapse, fenced
from core.ingest.loaders.document import (
    LoadedDocument,
    SectionBuilder,
    Slugger,
    title_from_name,
)

_HTML_DROP = frozenset(
    "script style nav header footer aside noscript svg form template iframe object embed "
    "canvas button select textarea input dialog head title meta link".split()
)
_HTML_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "complementary"})
# Page chrome that generators mark only by class, with no <nav> or role: DocBook XSL's
# Prev/Up/Home/Next tables and its per-page tables of contents (PostgreSQL, Debian Reference: a
# "2.2.1. apt vs. apt-get" TOC line was quoted as the answer), and the SQLite site's banner and
# menus, which it marks "nosearch" for its own search engine, and its page TOC.
_HTML_DROP_CLASSES = frozenset(
    "navheader navfooter toc list-of-tables list-of-figures list-of-examples nosearch fancy_toc".split()
)
# DocBook XSL call-out boxes: <div class="note"> holding either <h3 class="title">Note</h3> and the
# body (PostgreSQL: "Note" became a heading that took over the text after the box) or a layout
# table of an icon, the label and the body (Debian Reference: quoted as "| Note ...").
_DOCBOOK_ADMONITIONS = frozenset("note tip warning caution important".split())
_HTML_BLOCK = frozenset(
    "p div section article main blockquote dl dt dd figure figcaption address details summary "
    "hr caption center fieldset body html legend ul ol menu table tbody thead tfoot li".split()
)
_HTML_INLINE_CODE = frozenset({"code", "kbd", "samp", "tt"})
_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PERMALINK_CLASSES = frozenset({"headerlink", "anchor", "hash-link", "anchor-link", "header-anchor", "anchorjs-link"})
_PERMALINK_CHARS = "¶#§🔗\u200b \xa0"


def _is_permalink(tag: Any) -> bool:
    if tag.name != "a":
        return False
    classes = tag.get("class") or ()
    if any(c in _PERMALINK_CLASSES for c in classes):
        return True
    href = tag.get("href") or ""
    return href.startswith("#") and tag.get_text().strip(_PERMALINK_CHARS) == ""


_HTML_LANGUAGE = re.compile(r"^(?:language|lang|highlight-source|highlight)-([\w+#.-]+)$")


def _html_code_language(pre: Any) -> str:
    """``<pre><code class="language-python">``, or Sphinx's ``<div class="highlight-python">`` around it."""
    for tag in (pre.find("code"), pre, pre.parent, pre.parent.parent if pre.parent is not None else None):
        for cls in (tag.get("class") or ()) if tag is not None else ():
            m = _HTML_LANGUAGE.match(cls)
            if m and m.group(1) not in ("default", "notranslate"):
                return m.group(1)
    return ""


# A section that is a list of links and little else is an index, a sitemap or a cross-reference
# page (SQLite's keyword index and "Target Crossreference" pages, Sphinx's genindex): quoted, it
# answered "What does PRAGMA foreign_keys do?" with "pragma.html#pragma_foreign_keys -> {PRAGMA
# foreign_keys}". Many links, and nearly all the text theirs.
_LINK_LIST_MIN_LINKS = 40
_LINK_LIST_SHARE = 0.85

_EXPONENT = re.compile(r"[-+\u2212]?[\w.]{1,8}")
_END_BOX = object()  # marks, on the walk's stack, where a call-out box's children end


def _inside(node: Any, names: frozenset[str], stop: Any) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop:
        if parent.name in names:
            return True
        parent = parent.parent
    return False


_CELL_SKIP = frozenset("script style svg noscript template".split())


def _cell_text(cell: Any, string_type: type, skipped: tuple[type, ...]) -> str:
    """A table cell's text: spaces only where blocks or line breaks part it, not around inline
    markup (Debian Reference's cells read '" auth optional pam_group.so "' with get_text(" "))."""
    parts: list[str] = []
    for node in cell.descendants:
        if isinstance(node, string_type):
            if not isinstance(node, skipped) and not _inside(node, _CELL_SKIP, cell):
                parts.append(str(node))
        elif node.name in _HTML_BLOCK or node.name in _HTML_HEADINGS or node.name in ("br", "pre"):
            parts.append(" ")
    return collapse("".join(parts)).translate(INVISIBLE)


def _docbook_box(div: Any, tag_type: type) -> tuple[str, list[Any]] | None:
    """A DocBook call-out box as (label, the nodes of its body), or None when ``div`` is none."""
    kinds = [c for c in div.get("class") or () if c in _DOCBOOK_ADMONITIONS]
    if not kinds:
        return None
    first = next((c for c in div.children if isinstance(c, tag_type)), None)
    if first is None:
        return None
    if first.name in _HTML_HEADINGS:
        label = collapse(first.get_text()).translate(INVISIBLE) or kinds[0].title()
        return label, [c for c in div.contents if c is not first]
    if first.name == "table":
        cells = [td for td in first.find_all("td") if td.get_text(strip=True)]
        if not cells:
            return None
        th = first.find("th")
        label = collapse(th.get_text()).translate(INVISIBLE) if th is not None else ""
        return label or kinds[0].title(), list(cells[-1].contents)
    return None


def _swallowed(heading: Any, tag_type: type) -> list[Any]:
    """What a heading holds from its first block element on: the rest of the page, when the
    heading was closed with the wrong level (SQLite: "<h2>Keyword Index</h1>" and "<h4>3.10
    ...</h3>"; Python's parser, unlike a browser, keeps the h2 open and the page became a title)."""
    children = heading.contents
    for i, child in enumerate(children):
        if isinstance(child, tag_type) and (_is_block(child) or child.find(_is_block) is not None):
            return children[i:]
    return []


def _is_block(tag: Any) -> bool:
    return tag.name in _HTML_BLOCK or tag.name in _HTML_HEADINGS or tag.name == "pre"


def _close_implied_rows_and_cells(soup: Any) -> None:
    """Close <tr>, <td> and <th> where HTML implies it, as a browser does.

    SQLite's tables omit </td> and </tr>; Python's parser then nests each cell in the one before
    and each row in the last cell of the row before, and a table of timings read
    "10241.5351.020..." for the row "1024 | 1.535 | 1.020"."""
    for row in soup.find_all("tr"):
        outer = row.find_parent("tr")
        if outer is not None and row.find_parent("table") is outer.find_parent("table"):
            outer.insert_after(row)
    for cell in soup.find_all(("td", "th")):
        while cell.parent is not None and cell.parent.name in ("td", "th"):
            cell.parent.insert_after(cell)


def _drop_labels_of_graphics(soup: Any, tag_type: type) -> None:
    """Remove a short "name:" paragraph that only introduces a graphic the text leaves out.

    SQLite's syntax pages put "column-def:" before each railroad diagram (an <svg>); without
    the diagrams a page began with runs of 20 such labels."""
    for svg in reversed(soup.find_all("svg")):  # inner diagrams first: their labels sit inside outer ones
        box = svg
        # the outermost wrapper holding the graphic and no text of its own
        while box.parent is not None and box.parent.name == "div" and not _text_outside_svg(box.parent):
            box = box.parent
        label = next((t for t in box.previous_siblings if isinstance(t, tag_type)), None)
        if label is not None and label.name == "p" and not label.find(("img", "svg")):
            text = collapse(label.get_text()).removesuffix("hide").removesuffix("show").strip()
            if text.endswith(":") and len(text) <= 60:
                label.decompose()


def _text_outside_svg(tag: Any) -> bool:
    return any(s.strip() and s.find_parent("svg") is None for s in tag.find_all(string=True))


def load_html(text: str, name: str) -> LoadedDocument:
    from bs4 import (
        BeautifulSoup,
        Comment,
        Declaration,
        Doctype,
        NavigableString,
        ProcessingInstruction,
        Tag,
    )

    soup = BeautifulSoup(text, "html.parser")
    _close_implied_rows_and_cells(soup)
    _drop_labels_of_graphics(soup, Tag)
    skipped_strings = (Comment, Declaration, Doctype, ProcessingInstruction)

    title = ""
    if soup.title is not None:
        title = collapse(soup.title.get_text()).translate(INVISIBLE)

    root = soup.find("main") or soup.find(attrs={"role": "main"})
    if root is None:
        articles = soup.find_all("article", limit=2)
        root = articles[0] if len(articles) == 1 else (soup.body or soup)

    def dropped(tag: Any) -> bool:
        name_ = tag.name
        if name_ in _HTML_DROP:
            # an article's own header carries its title: keep it
            if name_ == "header" and tag.find_parent(("article", "main")) is not None:
                return False
            return True
        attrs = tag.attrs
        if not attrs:
            return False
        if attrs.get("role") in _HTML_DROP_ROLES or "hidden" in attrs:
            return True
        return any(c in _HTML_DROP_CLASSES for c in attrs.get("class") or ())

    def heading_text(h: Any) -> str:
        parts: list[str] = []
        for s in h.descendants:
            if isinstance(s, NavigableString) and not isinstance(s, skipped_strings):
                parent = s.parent
                skip = False
                while parent is not None and parent is not h:
                    if _is_permalink(parent) or parent.name in ("script", "style", "svg"):
                        skip = True
                        break
                    parent = parent.parent
                if not skip:
                    parts.append(str(s))
        return collapse("".join(parts).translate(INVISIBLE)).strip(_PERMALINK_CHARS)

    slugger = Slugger()

    for tagged in soup.find_all(id=True):
        slugger.reserve(tagged["id"])

    def heading_anchor(h: Any, text: str) -> str | None:
        if h.get("id"):
            return h["id"]
        for a in h.find_all("a"):
            href = a.get("href") or ""
            if href.startswith("#") and len(href) > 1 and _is_permalink(a):
                return unquote(href[1:])
        # the id of the section the heading opens, possibly through wrappers that hold nothing
        # before it (DocBook: <div class="sect2" id=".."><div class="titlepage"><div><div><h3>;
        # PostgreSQL's links were made-up slugs that opened the top of the page)
        child, parent = h, h.parent
        for _ in range(5):
            if parent is None or parent.name not in ("section", "div", "article"):
                break
            first = next((c for c in parent.children if isinstance(c, Tag)), None)
            if first is not child:
                break
            if parent.get("id"):
                return parent["id"]
            child, parent = parent, parent.parent
        for a in h.find_all("a"):
            if a.get("id") or a.get("name"):
                return a.get("id") or a.get("name")
        prev = h.find_previous_sibling()
        if prev is not None and prev.name == "a" and (prev.get("id") or prev.get("name")) and not prev.get_text(strip=True):
            return prev.get("id") or prev.get("name")
        return slugger.slug(text)

    builder = SectionBuilder()
    cur: list[str] = []
    # "lead": a call-out box's label ("Note: ") waiting to lead the box's first paragraph
    state: dict[str, Any] = {"prefix": "", "group": None, "lead": ""}
    lists: list[list[Any]] = []  # [ordered, next number, group]
    dls: list[object] = []  # the group outside each open <dl>
    group_ids = iter(range(1, 1 << 62))
    first_h1: list[str] = []

    def brk() -> None:
        if cur:
            raw = "".join(cur)
            cur.clear()
            if "\x01" in raw:  # <br>
                lines = [collapse(x) for x in raw.split("\x01")]
                body = "\n".join(x for x in lines if x)
            else:
                body = collapse(raw)
            body = body.translate(INVISIBLE)
            if body:
                body, state["lead"] = state["lead"] + body, ""
                builder.add(state["prefix"] + body, state["group"])
                if state["prefix"]:
                    state["prefix"] = " " * len(state["prefix"])

    links = {"open": 0, "count": 0, "chars": 0, "text": 0}  # the current section's links and text

    def count_text(text: str, in_link: bool) -> None:
        size = len(text.strip())
        links["text"] += size
        if in_link:
            links["chars"] += size

    def end_section() -> None:
        """Before a heading or the end: a section that is only a link list is dropped."""
        brk()
        if links["count"] >= _LINK_LIST_MIN_LINKS and links["chars"] >= _LINK_LIST_SHARE * links["text"]:
            builder.discard()
        links.update(count=0, chars=0, text=0)

    # iterative walk: (node, entering)
    work: list[tuple[Any, bool]] = [(root, True)]
    while work:
        node, entering = work.pop()
        if node is _END_BOX:
            brk()
            state["lead"] = ""  # a box with no text gives its label to nothing else
            continue
        if not entering:
            name_ = node.name
            if name_ in ("ul", "ol", "menu"):
                brk()
                lists.pop()
                state["group"] = lists[-1][2] if lists else None
                state["prefix"] = ""
            elif name_ == "li":
                brk()
                state["prefix"] = ""
            elif name_ == "dl":
                brk()
                state["group"] = dls.pop()
            elif name_ == "a" and node.get("href") is not None:  # an anchor with no href is no link
                links["open"] -= 1
            elif name_ in _HTML_BLOCK:
                brk()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, skipped_strings):
                cur.append(str(node))
                count_text(node, links["open"] > 0)
            continue
        if not isinstance(node, Tag):
            continue
        name_ = node.name
        if node is not root and dropped(node):
            continue
        if name_ in _HTML_HEADINGS:
            end_section()
            spilled = _swallowed(node, Tag)
            for child in spilled:
                child.extract()
            for child in reversed(spilled):
                work.append((child, True))
            text = heading_text(node)
            if text:
                level = _HTML_HEADINGS[name_]
                if level == 1 and not first_h1:
                    first_h1.append(text)
                builder.heading(level, text, heading_anchor(node, text))
            continue
        if name_ == "div" and node is not root:
            box = _docbook_box(node, Tag)
            if box is not None:
                brk()
                state["lead"] = box[0].rstrip(":") + ": "
                work.append((_END_BOX, False))
                for child in reversed(box[1]):
                    work.append((child, True))
                continue
        if name_ == "sup" and cur and (cur[-1][-1:].isalnum() or cur[-1].endswith(")")):
            # an exponent reads 2^64, not 264 (SQLite's limits page: "2<sup>64</sup> rows")
            if node.find("a") is None and _EXPONENT.fullmatch(node.get_text().strip()):
                cur.append("^")
        if name_ == "pre":
            brk()
            if state["lead"]:  # a box that opens with code: its label stands alone before it
                builder.add(state["lead"].rstrip(), state["group"])
                state["lead"] = ""
            builder.add(fenced(node.get_text().translate(INVISIBLE), _html_code_language(node)), state["group"])
            continue
        if name_ == "br":
            cur.append("\x01")
            continue
        if name_ in _HTML_INLINE_CODE:
            # Inline code stays a code span (code in <pre> was taken whole above): as plain text,
            # "__init__" or "**kwargs" would be read as emphasis by Slack, Discord and the terminal.
            cur.append(code_span(collapse(node.get_text()).translate(INVISIBLE)))
            continue
        if name_ == "tr":
            brk()
            cells = [_cell_text(c, NavigableString, skipped_strings) for c in node.find_all(("td", "th"), recursive=False)]
            for a in node.find_all("a", href=True):
                links["count"] += 1
                links["chars"] += len(a.get_text().strip())
            links["text"] += len(" ".join(cells))
            if any(cells):
                builder.add(" | ".join(cells), state["group"] if lists else id(node.find_parent("table")))
            continue
        if name_ in ("ul", "ol", "menu"):
            brk()
            group = lists[0][2] if lists else next(group_ids)
            start = node.get("start")
            number = int(start) if isinstance(start, str) and start.isdigit() else 1
            lists.append([name_ == "ol", number, group])
            state["group"] = group
        elif name_ == "li":
            brk()
            if lists:
                spec = lists[-1]
                marker = f"{spec[1]}. " if spec[0] else "- "
                spec[1] += 1
                state["prefix"] = "  " * (len(lists) - 1) + marker
            else:
                state["prefix"] = "- "
        elif name_ == "dl":
            brk()
            dls.append(state["group"])
        elif name_ == "dt" and dls:
            brk()
            state["group"] = next(group_ids)  # a term and its definition stay together
        elif name_ == "a" and node.get("href") is not None:
            links["open"] += 1
            links["count"] += 1
        elif name_ in _HTML_BLOCK:
            brk()
        work.append((node, False))
        children = node.contents
        for child in reversed(children):
            work.append((child, True))
    end_section()
    sections = builder.finish()
    return LoadedDocument(title or (first_h1[0] if first_h1 else "") or title_from_name(name), sections)


