"""Call-out boxes of the documentation generators, rewritten as the text a reader sees.

Each generator has its own syntax for a "Note" or "Warning" box, and CommonMark knows none of
them: MkDocs' `!!! note "Title"` with an indented body comes out as a line of punctuation followed
by an indented *code block*, Docusaurus' `:::tip` and pymdownx's `/// warning | Title` fences as
stray `:::` and `///` paragraphs. Rewritten before parsing, a box becomes its label ("Warning:",
or its own title) leading its first paragraph, with the body as ordinary Markdown.

Also dropped: the `import ... from "..."` lines with which MDX pages (Docusaurus) pull in their
components; a reader never sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# MkDocs / Python-Markdown: "!!! note", '!!! warning "Title"', "??? tip" / "???+ tip" (collapsible),
# extra classes allowed ('!!! note inline end "Title"').
_MKDOCS_OPEN = re.compile(r'[ ]{0,3}(?:!!!|\?\?\?\+?)[ \t]+([\w-]+)(?:[ \t]+[\w -]*?)?(?:[ \t]*"([^"]*)")?[ \t]*')
# pymdownx.tabbed (MkDocs Material's content tabs): '=== "pip"', '===! "New group"', '===+ "Selected"',
# each tab's content indented below; read as the tab's title leading its content.
_TAB_OPEN = re.compile(r'[ ]{0,3}===[!+]?[ \t]+"([^"]*)"[ \t]*')
# Docusaurus: ":::note", ":::tip Title", ":::tip[Title]"; MyST: ":::{warning}", ":::{admonition} Title".
# An outer box may use more colons.
_COLON_OPEN = re.compile(r"([ \t]*)(:{3,})[ \t]*(\{?[A-Za-z][\w-]*\}?)(?:\[([^\]]*)\]|[ \t]+(.+?))?[ \t]*")
_MKDOCS_MARKER = re.compile(r"[ ]{0,3}:::[ \t]+[A-Za-z_][\w]*(?:\.[\w]+)+[ \t]*")
_COLON_CLOSE = re.compile(r"(:{3,})[ \t]*")
# pymdownx blocks: "/// note", "/// admonition | Title", "//// tab | Python"; closed by as many slashes.
_SLASH_OPEN = re.compile(r"([ \t]*)(/{3,})[ \t]*([\w-]+)(?:[ \t]*\|[ \t]*(.*?))?[ \t]*")
_SLASH_CLOSE = re.compile(r"(/{3,})[ \t]*")
_SLASH_OPTION = re.compile(r"[ \t]+[\w-]+:.*")  # the indented "type: warning" lines after the opener
_MYST_OPTION = re.compile(r"[ \t]*:[\w-]+:.*")  # ":class: dropdown" lines after a MyST opener
# MyST directives that are boxes a reader sees with this label; other directives get none.
_MYST_BOXES = {
    "note",
    "tip",
    "hint",
    "important",
    "warning",
    "caution",
    "attention",
    "danger",
    "error",
    "seealso",
    "admonition",
    "dropdown",
}
# Tabs (sphinx-tabs, sphinx-inline-tabs, sphinx-design; in rST or MyST): the label leads the tab's
# content as "toml:", as MkDocs and Docusaurus tabs are shown, so a quoted tab says which tool it is for.
TAB_DIRECTIVES = frozenset({"tab", "group-tab", "code-tab", "tab-item"})
_BOX_STARTS = ("!", "?", ":", "/", "=")  # (a tuple: "" is in any string, not in this)
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")
_MDX_IMPORT = re.compile(r"import[ \t]+(?:[\w*{},\s]+?[ \t]+from[ \t]+)?[\"'][^\"']+[\"'];?[ \t]*")
# A line that starts a block of its own, which a label cannot lead.
_OWN_BLOCK = re.compile(r"[ \t]*(?:```|~~~|[-*+][ \t]|\d{1,9}[.)][ \t]|[|>#<]|:::|///|!!!|\?\?\?)")


def rewrite_admonitions(text: str) -> str:
    """``text`` with every call-out box of MkDocs, Docusaurus or pymdownx (and MkDocs Material's
    content tabs) as plain Markdown."""
    if not any(marker in text for marker in ("!!!", "???", ":::", "///", "import ", "===")):
        return text
    return "\n".join(_rewrite(text.split("\n")))


def _rewrite(lines: list[str]) -> Iterator[str]:
    i, fence = 0, ""
    while i < len(lines):
        line = lines[i]
        if fence:
            if line.strip().startswith(fence):
                fence = ""
            yield line
            i += 1
            continue
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)[0] * 3
            yield line
            i += 1
            continue
        box = _open_box(lines, i) if line.lstrip(" ")[:1] in _BOX_STARTS else None
        if box is None:
            if not _MDX_IMPORT.fullmatch(line):
                yield line
            i += 1
            continue
        label, body, i = box
        yield from _labelled(label, list(_rewrite(body)))


def _open_box(lines: list[str], i: int) -> tuple[str, list[str], int] | None:
    """(label, body lines, index after the box) when a box opens at line ``i``."""
    line = lines[i]
    if (match := _MKDOCS_OPEN.fullmatch(line)) or (tab := _TAB_OPEN.fullmatch(line)):
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith(("    ", "\t"))):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1  # trailing blank lines belong to what follows
        body = [_dedent(body_line) for body_line in lines[i + 1 : end]]
        if match is None:
            return tab.group(1).strip(), body, end
        return box_label(match.group(1), match.group(2)), body, end
    for opener, closer in ((_COLON_OPEN, _COLON_CLOSE), (_SLASH_OPEN, _SLASH_CLOSE)):
        if match := opener.fullmatch(line.rstrip()):
            marks, kind = match.group(2), match.group(3)
            title = next((group for group in match.groups()[3:] if group is not None), None)
            end = _closing(lines, i, closer, marks)
            if end == len(lines):
                return None  # never closed: not a box (a line of prose or of an indented code block)
            start = i + 1
            option = _SLASH_OPTION if opener is _SLASH_OPEN else _MYST_OPTION
            while start < end and option.fullmatch(lines[start]):
                start += 1  # pymdownx's "type: warning", MyST's ":class: tip"
            return box_label(kind, title), lines[start:end], end + 1
    if match := _MKDOCS_MARKER.fullmatch(line.rstrip()):
        end = i + 1
        while end < len(lines) and lines[end].startswith((" ", "\t")) and lines[end].strip():
            end += 1
        return (
            "",
            [],
            end,
        )  # mkdocstrings' "::: package.name" and its options: the build's API pages
    return None


def _closing(lines: list[str], i: int, closer: re.Pattern[str], marks: str) -> int:
    """Index of the line closing the box opened at ``i`` with ``marks`` (as many colons or slashes),
    outside code; the end of the text when there is none."""
    fence = ""
    for j in range(i + 1, len(lines)):
        stripped = lines[j].strip()
        if fence:
            fence = "" if stripped.startswith(fence) else fence
        elif opened := _FENCE.match(lines[j]):
            fence = opened.group(1)[0] * 3
        elif (closing := closer.fullmatch(stripped)) and closing.group(1) == marks:
            return j
    return len(lines)


def _dedent(line: str) -> str:
    if line.startswith("\t"):
        return line[1:]
    return line[4:] if line.startswith("    ") else line.lstrip(" ")


def box_label(kind: str, title: str | None) -> str:
    """The box's title; without one, its type capitalised ("Note"), as the generators show it.
    An explicitly empty title (MkDocs' '!!! note ""') shows no label, nor does a MyST directive
    that is no box ("{figure} path.png")."""
    if kind.startswith("{"):
        kind = kind.strip("{}")
        if kind.lower() in TAB_DIRECTIVES:
            return (title or "").strip()  # the tab's label leads its content: "pip: ..."
        if kind.lower() not in _MYST_BOXES:
            return ""
        if kind.lower() in ("admonition", "dropdown"):
            return (title or "").strip()
    if title is None:
        return kind.capitalize()
    return title.strip().strip("\"'")


def code_tab(args: str) -> tuple[str, str]:
    """The language and label of ``code-tab:: py [Label]``: a tab without a label is named by its language."""
    language, _, label = args.strip().partition(" ")
    return language, label.strip() or language


def label_lead(label: str) -> str:
    """A box's or tab's label as the lead of its text: "Warning:", "toml:" ("" stays "")."""
    return label if not label or label[-1] in ":.?!" else label + ":"


def _labelled(label: str, body: list[str]) -> Iterator[str]:
    """The body, its first paragraph led by the label ("Warning: ..."), blank lines around it."""
    yield ""
    lead = label_lead(label)
    first = next((n for n, line in enumerate(body) if line.strip()), None)
    if lead and first is not None and not _OWN_BLOCK.match(body[first]):
        line = body[first]
        indent = line[: len(line) - len(line.lstrip())]
        body = [*body[:first], f"{indent}{lead} {line.lstrip()}", *body[first + 1 :]]
    elif lead:
        yield from (lead, "")
    yield from body
    yield ""
