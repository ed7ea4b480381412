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
        return False

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
        parent = h.parent
        if parent is not None and parent.get("id") and parent.name in ("section", "div", "article"):
            first = next((c for c in parent.children if isinstance(c, Tag)), None)
            if first is h:
                return parent["id"]
        for a in h.find_all("a"):
            if a.get("id") or a.get("name"):
                return a.get("id") or a.get("name")
        prev = h.find_previous_sibling()
        if prev is not None and prev.name == "a" and (prev.get("id") or prev.get("name")) and not prev.get_text(strip=True):
            return prev.get("id") or prev.get("name")
        return slugger.slug(text)

    builder = SectionBuilder()
    cur: list[str] = []
    state: dict[str, Any] = {"prefix": "", "group": None}
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
                builder.add(state["prefix"] + body, state["group"])
                if state["prefix"]:
                    state["prefix"] = " " * len(state["prefix"])

    # iterative walk: (node, entering)
    work: list[tuple[Any, bool]] = [(root, True)]
    while work:
        node, entering = work.pop()
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
            elif name_ in _HTML_BLOCK:
                brk()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, skipped_strings):
                cur.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        name_ = node.name
        if node is not root and dropped(node):
            continue
        if name_ in _HTML_HEADINGS:
            brk()
            text = heading_text(node)
            if text:
                level = _HTML_HEADINGS[name_]
                if level == 1 and not first_h1:
                    first_h1.append(text)
                builder.heading(level, text, heading_anchor(node, text))
            continue
        if name_ == "pre":
            brk()
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
            cells = [
                collapse(c.get_text(" ")).translate(INVISIBLE)
                for c in node.find_all(("td", "th"), recursive=False)
            ]
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
        elif name_ in _HTML_BLOCK:
            brk()
        work.append((node, False))
        children = node.contents
        for child in reversed(children):
            work.append((child, True))
    brk()
    sections = builder.finish()
    return LoadedDocument(title or (first_h1[0] if first_h1 else "") or title_from_name(name), sections)


