"""Markdown (CommonMark, GitHub and MkDocs flavours)."""
from __future__ import annotations

import functools
import html as _html
import operator
import re
import textwrap
from pathlib import Path
from typing import Any

from core.ingest.loaders.admonitions import rewrite_admonitions
from core.ingest.loaders.cleaning import PROSE_ROLES, code_span, collapse, fenced, normalise, role_text
from core.ingest.loaders.document import (
    LoadedDocument,
    SectionBuilder,
    Slugger,
    title_from_name,
)
from core.ingest.loaders.includes import expand_includes, has_include_macros
from core.ingest.loaders.myst import Readers, directive_text, is_directive
from core.ingest.loaders.rst import rst_fragment_text

_FRONT_MATTER_RE = re.compile(r"\A(?:---[ \t]*\n(.*?)\n(?:---|\.\.\.)|\+\+\+[ \t]*\n(.*?)\n\+\+\+)[ \t]*(?:\n|\Z)", re.S)
_FM_TITLE_YAML = re.compile(r"^title[ \t]*:[ \t]*(.*?)[ \t]*$", re.M)
_FM_TITLE_TOML = re.compile(r"^title[ \t]*=[ \t]*(.*?)[ \t]*$", re.M)

_CODE_SPAN = re.compile(r"(?<![`\\])(`+)(?!`)(.{1,2000}?)(?<!`)\1(?!`)", re.S)
_CODE_SPAN_1 = re.compile(r"(?<![`\\])(`)([^`]{1,2000})`(?!`)")  # the common single-backtick case, faster
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_GROUP1 = operator.itemgetter(1)  # re.sub replacement "\1" without a Python-level call per match
_LINK_BODY = (
    r"\[([^\[\]]*)\]\(\s*(?:<[^<>\n]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
)
_LINK = re.compile(_LINK_BODY)
_LINK_OR_IMAGE = re.compile("!?" + _LINK_BODY)
_REF_LINK = re.compile(r"!?\[([^\[\]]+)\]\[[^\[\]]*\]")
# "[GitHub Pages]" alone is a link when the page defines "[GitHub Pages]: https://...".
_SHORTCUT_REF = re.compile(r"(?<!\])!?\[([^\[\]]+)\](?![\[(])")
_REF_LABEL = re.compile(r"^[ ]{0,3}\[([^\]]+)\]:[ \t]*\S", re.M)
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+|[^<>\s@]+@[^<>\s@]+\.[A-Za-z]+)>")
_HTML_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>", re.S)
_STRONG_STAR = re.compile(r"\*\*(?=\S)(.{1,500}?)(?<=\S)\*\*")
_STRONG_UNDER = re.compile(r"(?<!\w)__(?=\S)(.{1,500}?)(?<=\S)__(?!\w)")
_EM_STAR = re.compile(r"(?<![\w*\\])\*(?=[^\s*])(.{1,500}?)(?<=[^\s*\\])\*(?![\w*])")
_EM_UNDER = re.compile(r"(?<![\w\\])_(?=[^\s_])(.{1,500}?)(?<=[^\s_\\])_(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.{1,500}?)(?<=\S)~~")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ALERT = re.compile(r"\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]", re.I)
_LIST_LINE = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_REF_DEF = re.compile(
    r"\[(?!\^)[^\]]+\]:[ \t]*(?:<[^<>]*>|\S+)(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?[ \t]*$"
)
_TABLE_DELIM = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
# An indented block that is itself one fenced block: a list item's code ("2. Configure:" then the
# fence indented four spaces), which markdown-it reads as indented code without its list rule.
_FENCE_IN_INDENTED = re.compile(r"\A(`{3,}|~{3,})[ \t]*([^\n`]*)\n(.*?)\n?\1[ \t]*\n?\Z", re.S)
_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
# MyST roles, Sphinx's cross-references in Markdown: {meth}`~click.Context.invoke`, {ref}`text <target>`.
_MYST_ROLE = re.compile(r"\{([a-z][\w:.+-]*)\}`([^`\n]+)`")
_NUMBERED_ROLES = {"issue": "#", "pr": "#", "pep": "PEP ", "rfc": "RFC "}


@functools.cache
def markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")
    # Only the block rules that decide where headings and code are. Lists, block quotes,
    # tables and inline markup are flattened to plain text by the regexes below, which
    # is ~3x faster than letting markdown-it build tokens for them.
    md.block.ruler.enableOnly(["blockquote", "code", "fence", "hr", "html_block", "heading", "lheading", "paragraph"])
    md.disable("inline")
    return md


def _strip_front_matter(text: str) -> tuple[str, str | None]:
    if not text.startswith(("---", "+++")):
        return text, None
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        return text, None
    title = None
    if m.group(1) is not None:
        t = _FM_TITLE_YAML.search(m.group(1))
    else:
        t = _FM_TITLE_TOML.search(m.group(2))
    if t:
        value = t.group(1)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:  # YAML comment after a plain value
            value = value.split(" #", 1)[0]
        title = collapse(value) or None
    return text[m.end():], title


def markdown_inline(text: str, *, keep_code: bool = True) -> str:
    """Markdown inline markup -> plain text (links keep their text), inline code kept as a code span.

    Code stays marked so that every door shows ``__init__`` or ``**kwargs`` as code: as plain text
    Slack, Discord and the terminal would read their underscores and stars as emphasis. Headings
    (``keep_code=False``) are context lines, shown without marks."""
    codes: list[str] = []
    if "}`" in text:
        text = _MYST_ROLE.sub(_myst_role, text)
    if "`" in text:

        def stash(m: re.Match[str]) -> str:
            code = m.group(2).replace("\n", " ")
            if len(code) > 2 and code[0] == " " and code[-1] == " " and code.strip():
                code = code[1:-1]
            codes.append(code_span(code) if keep_code else code)
            return f"\x00{len(codes) - 1}\x00"

        text = (_CODE_SPAN if "``" in text else _CODE_SPAN_1).sub(stash, text)
    if "](" in text:
        link = _LINK_OR_IMAGE if "![" in text else _LINK
        for _ in range(3):  # nested: [![badge](img)](link)
            text = link.sub(_GROUP1, text)
            if "](" not in text:
                break
    if "][" in text:
        text = _REF_LINK.sub(_GROUP1, text)
    if "<" in text:
        text = _AUTOLINK.sub(_GROUP1, text)
        text = _HTML_TAG.sub("", text)
    if "*" in text:
        if "**" in text:
            text = _STRONG_STAR.sub(_GROUP1, text)
        if "*" in text:
            text = _EM_STAR.sub(_GROUP1, text)
    if "_" in text:
        if "__" in text:
            text = _STRONG_UNDER.sub(_GROUP1, text)
        text = _EM_UNDER.sub(_GROUP1, text)
    if "~~" in text:
        text = _STRIKE.sub(_GROUP1, text)
    if "[!" in text:
        text = _ALERT.sub(lambda m: m.group(1).capitalize() + ":", text)
    if "\\" in text:
        text = _ESCAPE.sub(_GROUP1, text)
    if "&" in text:
        text = _html.unescape(text)
    if codes:
        text = _PLACEHOLDER.sub(lambda m: codes[int(m.group(1))], text)
    return text


def _myst_role(match: re.Match[str]) -> str:
    """A role as the built page shows it: {meth}`~a.B.c` -> `a.B.c` (code), {ref}`Title <target>`
    -> Title, {issue}`1649` -> #1649."""
    name, inner = match.group(1).rsplit(":", 1)[-1], role_text(match.group(2))
    prefix = _NUMBERED_ROLES.get(name)
    if prefix:
        return f"{prefix}{inner}"
    return inner if name in PROSE_ROLES else code_span(inner)


def _md_paragraph(raw: str, references: frozenset[str] = frozenset()) -> str:
    """One paragraph's raw Markdown (which may hold a list, a quote or a table) -> text.

    ``references``: the lower-cased labels of the page's link reference definitions."""
    lines = raw.split("\n")
    out: list[str] = []
    table: list[list[str]] = []  # header row first
    table_from = -1
    if "|" in raw and len(lines) > 1:
        for i in range(1, len(lines)):
            if "|" in lines[i] and "-" in lines[i] and _TABLE_DELIM.match(lines[i].strip()):
                table_from = i - 1
                break
    hard_break = True
    for i, line in enumerate(lines):
        s = line.strip()
        while s.startswith(">"):  # block quote markers
            s = s[1:].lstrip()
        if not s:
            hard_break = True
            continue
        if table_from >= 0 and i >= table_from:
            if i != table_from + 1:  # not the |---|---| row
                cells = _CELL_SPLIT.split(s.strip("|") if not s.endswith("\\|") else s.lstrip("|"))
                table.append([c.strip().replace("\\|", "|") for c in cells])
            continue
        if s[0] == "[" and _REF_DEF.match(s):
            continue
        is_item = _LIST_LINE.match(s) is not None
        if is_item and s[0] in "*+":
            s = "-" + s[1:]  # one bullet style
        if is_item or hard_break or not out:
            indent = len(line) - len(line.lstrip(" \t")) if is_item else 0
            out.append(" " * min(indent, 12) + s)
        else:
            out[-1] = out[-1] + " " + s
        hard_break = line.endswith(("  ", "\\")) or line.rstrip().endswith("<br>")
        if line.endswith("\\") and out:
            out[-1] = out[-1][:-1]
    out.extend(_table_lines(table))
    text = "\n".join(out)
    if references and "[" in text:
        text = _SHORTCUT_REF.sub(lambda m: m.group(1) if m.group(1).lower() in references else m.group(0), text)
    text = markdown_inline(text)
    if "  " in text or "\t" in text:
        return normalise(text)
    return text


def _table_lines(rows: list[list[str]]) -> list[str]:
    """A table as lines of text, cells joined by " | ".

    A table of one or two rows under its header (an option's "Default | CLI Override | API
    Override", say) puts each header by its cell ("Default: 80 | CLI Override: --print-width"), so a
    row quoted or chunked alone still says what its values are; longer tables keep one header line."""
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if 1 <= len(body) <= 2 and all(len(row) == len(header) for row in body) and all(header):
        return [" | ".join(f"{name}: {cell}" for name, cell in zip(header, row) if cell) for row in body]
    return [" | ".join(row) for row in rows]


def _indented_code(content: str) -> str:
    inner = _FENCE_IN_INDENTED.match(textwrap.dedent(content))
    return fenced(inner.group(3), inner.group(2)) if inner else fenced(content)


# Docusaurus tabs: <TabItem value="npm" label="npm"> opens one tab; the reader sees its label.
_TAB_ITEM = re.compile(r"<TabItem\b([^>]*)>", re.IGNORECASE)
_TAB_LABEL = re.compile(r"""\b(label|value)\s*=\s*(?:"([^"]*)"|'([^']*)'|\{["']([^"']*)["']\})""")


def _tab_label(raw: str) -> str | None:
    """"npm:" for a block of tags only that opens a Docusaurus tab; None for any other HTML."""
    tabs = _TAB_ITEM.findall(raw)
    if not tabs or _HTML_TAG.sub("", raw).strip():
        return None
    found = {m[1]: next(g for g in m.groups()[1:] if g is not None) for m in _TAB_LABEL.finditer(tabs[-1])}
    label = (found.get("label") or found.get("value") or "").strip()
    return f"{label}:" if label else ""


def _md_html_block(raw: str) -> str:
    if (label := _tab_label(raw)) is not None:
        return label
    text = _SCRIPT_STYLE.sub("", raw)
    text = _HTML_TAG.sub(" ", text)
    if "&" in text:
        text = _html.unescape(text)
    return normalise(text, keep_indent=False)


# MkDocs' attr_list after a heading: "## Body { #request-body }", "# Title {: #id .class }".
_HEADING_ATTRIBUTES = re.compile(r"\s*\{:?\s*((?:[#.][\w:-]+|[\w-]+=\S+)(?:\s+(?:[#.][\w:-]+|[\w-]+=\S+))*)\s*\}\s*$")
# A paragraph that is only an include macro of a docs build: pymdownx snippets (--8<-- "file.md")
# or FastAPI's {* ../../docs_src/app.py hl[3] *}. The build replaces it; as text it is noise.
_MD_INCLUDE_MACRO = re.compile(r"(?:-{1,2}8<-{1,2}\s+\S.*|\{\*.*\*\})(?:\n(?:-{1,2}8<-{1,2}\s+\S.*|\{\*.*\*\}))*")


def _heading_attributes(raw: str) -> tuple[str, str | None]:
    """The heading without a trailing attribute list, and the id the list gives it, if any."""
    match = _HEADING_ATTRIBUTES.search(raw)
    if not match:
        return raw, None
    ids = [part[1:] for part in match.group(1).split() if part.startswith("#")]
    return raw[: match.start()], (ids[0] if ids else None)


def _directive_readers(name: str, source_path: Path | None, include_root: Path | None, depth: int) -> Readers:
    def markdown(text: str, path: Path | None, nested_depth: int) -> str:
        loaded = load_markdown(text, name, source_path=path, include_root=include_root, depth=nested_depth)
        return "\n\n".join(section.text for section in loaded.sections if section.text)

    def rst(text: str, path: Path | None) -> str:
        return rst_fragment_text(text, name, source_path=path, include_root=include_root)

    return Readers(markdown, rst, source_path, include_root, depth)


def load_markdown(
    text: str, name: str, *, source_path: Path | None = None, include_root: Path | None = None, depth: int = 0
) -> LoadedDocument:
    """``source_path`` and ``include_root`` are given for a file of an ingested folder: its
    snippet and code-include macros then read the files they name (core/ingest/loaders/includes.py)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text, fm_title = _strip_front_matter(text)
    missing: list[str] = []
    if source_path and include_root and has_include_macros(text):
        text, missing = expand_includes(text, source_path, include_root)
    tokens = markdown_parser().parse(rewrite_admonitions(text))
    readers = _directive_readers(name, source_path, include_root, depth)
    references = frozenset(label.lower() for label in _REF_LABEL.findall(text)) if "]:" in text else frozenset()
    builder = SectionBuilder()
    slugger = Slugger()
    first_h1: str | None = None
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        kind = tok.type
        if kind == "paragraph_open":
            if not _MD_INCLUDE_MACRO.fullmatch(tokens[i + 1].content.strip()):
                builder.add(_md_paragraph(tokens[i + 1].content, references))
            i += 3
            continue
        if kind == "heading_open":
            raw = tokens[i + 1].content
            i += 3
            if tok.markup == "-" and _LIST_LINE.match(raw.lstrip()):
                # "- item" over "---": a list followed by a rule, not a heading
                builder.add(_md_paragraph(raw))
                continue
            raw, anchor = _heading_attributes(raw)
            heading = collapse(markdown_inline(raw, keep_code=False))
            if not heading:
                continue
            level = int(tok.tag[1])
            if level == 1 and first_h1 is None:
                first_h1 = heading
            if anchor:
                slugger.reserve(anchor)
            builder.heading(level, heading, anchor or slugger.slug(heading))
            continue
        if kind == "fence" and is_directive(tok.info):  # MyST: ```{note}, ```{code-block} python...
            builder.add(directive_text(tok.info, tok.content, readers))
        elif kind == "fence":
            builder.add(fenced(tok.content, tok.info))
        elif kind == "code_block":
            builder.add(_indented_code(tok.content))
        elif kind == "html_block":
            builder.add(_md_html_block(tok.content))
        i += 1
    sections = builder.finish()
    title = first_h1 or fm_title or title_from_name(name)
    return LoadedDocument(title, sections, tuple(missing))


