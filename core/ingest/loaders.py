"""Turn one document's bytes into a title and titled sections.

``load_document`` picks a format from the content type (web pages) or the suffix of the
name (files), decodes and parses it, and returns a :class:`LoadedDocument` whose sections
each carry the chain of headings they sit under, an anchor for linking to them, and
their body as plain text. Paragraphs are separated by blank lines; list items and table
rows sit one per line; code blocks keep their text and indentation.

Every section's ``heading_path`` starts at the document's top heading when there is one
(Markdown/HTML ``h1``, the reStructuredText document title): ``("Guide", "Install")``.
Text before the first heading gets ``heading_path == ()``.

A document that cannot be read raises :class:`core.errors.DocumentError` with a reason a
person understands. Nothing here touches the network, the file system or a database.

Speed: Markdown is the bulk of most corpora, so it gets a fast path. markdown-it-py finds
the block structure (ATX/setext headings, fenced and indented code, HTML blocks,
paragraphs); its slow list/blockquote/table/inline rules are switched off and the inline
markup of each paragraph is removed with a few regular expressions instead. List markers
and table pipes therefore stay in the text as plain-text structure (``- item``,
``a | b``), which is what we want to index anyway.
"""
from __future__ import annotations

import codecs
import functools
import html as _html
import io
import logging
import operator
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import unquote

from core.errors import DocumentError, NothingToIndex

__all__ = [
    "LoadedDocument",
    "SUPPORTED_SUFFIXES",
    "Section",
    "load_document",
    "rst_included_files",
    "github_slug",
]


@dataclass(frozen=True)
class Section:
    heading_path: tuple[str, ...]  # e.g. ("Configuration", "Rate limits")
    anchor: str | None  # fragment for a link to this section ("rate-limits"), None when the format has none
    text: str  # plain-text body of the section


@dataclass(frozen=True)
class LoadedDocument:
    title: str
    sections: list[Section]


_FORMAT_BY_SUFFIX = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_FORMAT_BY_SUFFIX)

_FORMAT_BY_TYPE = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "text/x-rst": "rst",
    "text/prs.fallenstein.rst": "rst",
}


def load_document(
    data: bytes,
    *,
    name: str,
    content_type: str | None = None,
    source_path: Path | None = None,
    include_root: Path | None = None,
) -> LoadedDocument:
    """Parse one document.

    ``name`` is a file name or URL path; it chooses the format when ``content_type`` does
    not (absent, ``text/plain`` or generic such as ``application/octet-stream`` — servers
    often send Markdown as ``text/plain``) and gives the fallback title.
    ``source_path`` and ``include_root`` are given for files read from an ingested folder:
    reStructuredText ``.. include::`` is then resolved relative to the including file, for
    files inside ``include_root`` only (anything else is left out, as for web pages).
    Raises ``DocumentError`` for unsupported types, undecodable or unparsable bytes and
    documents without any text.
    """
    fmt = _detect_format(data, name, content_type)
    if fmt == "pdf":
        doc = _load_pdf(data, name)
    else:
        text = _decode(data, content_type, sniff_html_meta=(fmt == "html"))
        if fmt == "rst":
            doc = _load_rst(text, name, source_path=source_path, include_root=include_root)
        else:
            doc = _parse_text(fmt, text, name)
    if not doc.sections:
        raise NothingToIndex("no text to index")
    return _storable_document(doc)


def _parse_text(fmt: str, text: str, name: str) -> LoadedDocument:
    parse = {"markdown": _load_markdown, "rst": _load_rst, "html": _load_html}.get(fmt, _load_text)
    return parse(text, name)


# PostgreSQL text holds any Unicode but NUL, and UTF-8 cannot carry lone surrogates (from a bad
# decoder, a PDF's text layer or a parser's internal markers): whatever a parser produced, these
# never reach the database, so no document content can abort a store.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable(text: str) -> str:
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def _storable_document(doc: LoadedDocument) -> LoadedDocument:
    sections = [
        Section(tuple(_storable(h) for h in s.heading_path), s.anchor and _storable(s.anchor), _storable(s.text))
        for s in doc.sections
    ]
    return LoadedDocument(_storable(doc.title), sections)


# --------------------------------------------------------------------------- dispatch


def _media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _suffix(name: str) -> str:
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return PurePosixPath(base).suffix.lower() if base else ""


def _detect_format(data: bytes, name: str, content_type: str | None) -> str:
    media = _media_type(content_type)
    by_type = _FORMAT_BY_TYPE.get(media)
    suffix = _suffix(name)
    by_suffix = _FORMAT_BY_SUFFIX.get(suffix)
    if by_type in (None, "text") and by_suffix:
        return by_suffix
    if by_type:
        return by_type
    if data[:5] == b"%PDF-":
        return "pdf"
    if media and media != "application/octet-stream":
        raise DocumentError(f"unsupported content type {media}")
    if suffix:
        raise DocumentError(f"unsupported file type {suffix}")
    raise DocumentError("unsupported file type (the name has no suffix)")


# --------------------------------------------------------------------------- text helpers

_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_UTF8_NAMES = {"utf-8", "utf8", "utf_8"}


def _decode(data: bytes, content_type: str | None, *, sniff_html_meta: bool = False) -> str:
    """UTF-8 (BOM tolerated; UTF-16 only with a BOM), else a charset the server or page declared."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return _clean_decoded(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise DocumentError("not valid UTF-16 text (it starts with a UTF-16 byte order mark)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        declared = None
        m = _CHARSET_RE.search(content_type or "")
        if m:
            declared = m.group(1)
        elif sniff_html_meta:
            mm = _META_CHARSET_RE.search(data[:4096])
            if mm:
                declared = mm.group(1).decode("ascii", "replace")
        if declared and declared.lower() not in _UTF8_NAMES:
            try:
                text = data.decode(declared)
            except (LookupError, UnicodeDecodeError):
                raise DocumentError(f"not valid {declared} text (the declared character set)") from None
        else:
            raise DocumentError(
                f"not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
            ) from None
    return _clean_decoded(text)


def _clean_decoded(text: str) -> str:
    if "\x00" in text:
        raise DocumentError("binary data, not text (it contains NUL bytes)")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)


def _collapse(s: str) -> str:
    """Collapse whitespace runs to one space (line breaks included)."""
    return " ".join(s.split())


def _normalise(text: str, *, keep_indent: bool = True) -> str:
    """Trim lines, collapse spaces inside lines, keep at most one blank line between paragraphs.

    With ``keep_indent`` the leading indentation of a line is kept (nested list items,
    hand-indented plain text)."""
    out: list[str] = []
    blank = False
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        if keep_indent and line[0] in " \t":
            indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
            out.append(" " * indent + " ".join(stripped.split()))
        else:
            out.append(" ".join(stripped.split()))
    return "\n".join(out)


def _normalise_code(code: str) -> str:
    """Code keeps its indentation; only trailing spaces and outer blank lines go."""
    lines = [ln.rstrip() for ln in code.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _fenced(code: str, language: str = "") -> str:
    """A code block as Markdown fenced code, so answers can quote it as code (language kept).

    The fence is longer than any backtick run inside the code, so the code cannot close it."""
    code = _normalise_code(code)
    if not code:
        return ""
    runs = [len(m) for m in re.findall(r"`{3,}", code)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    language = language.strip().split()[0] if language.strip() else ""
    return f"{fence}{language}\n{code}\n{fence}"


def _title_from_name(name: str) -> str:
    """``getting_started-guide.md`` -> ``Getting started guide``."""
    base = unquote(name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    stem = base
    if "." in base[1:]:
        stem = base.rsplit(".", 1)[0]
    words = " ".join(re.sub(r"[_\-]+", " ", stem).split())
    if not words:
        return "Untitled"
    return words[0].upper() + words[1:]


_SLUG_DROP = re.compile(r"[^\w\- ]")


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces -> '-'."""
    return _SLUG_DROP.sub("", text.lower()).replace(" ", "-")


class _Slugger:
    """GitHub-style slugs made unique within one document: ``x``, ``x-1``, ``x-2``..."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def reserve(self, anchor: str) -> None:
        self._seen.setdefault(anchor, 0)

    def slug(self, text: str) -> str | None:
        base = github_slug(text)
        if not base:
            return None
        slug = base
        while slug in self._seen:
            self._seen[base] += 1
            slug = f"{base}-{self._seen[base]}"
        self._seen[slug] = 0
        return slug


class _Builder:
    """Collects blocks of text under the current heading chain.

    Blocks are joined with a blank line, except consecutive blocks of the same ``group``
    (the items of one list, the rows of one table), which are joined with a line break."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._stack: list[tuple[int, str]] = []
        self._path: tuple[str, ...] = ()
        self._anchor: str | None = None
        self._blocks: list[tuple[str, object]] = []

    def heading(self, level: int, text: str, anchor: str | None) -> None:
        self.flush()
        stack = self._stack
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        self._path = tuple(h for _, h in stack)
        self._anchor = anchor

    def add(self, text: str, group: object = None) -> None:
        if text and not text.isspace():
            self._blocks.append((text, group))

    def flush(self) -> None:
        blocks = self._blocks
        if not blocks:
            return
        parts: list[str] = []
        prev_group: object = None
        for i, (text, group) in enumerate(blocks):
            if i:
                parts.append("\n" if group is not None and group == prev_group else "\n\n")
            parts.append(text)
            prev_group = group
        body = "".join(parts).strip("\n")
        if body.strip():
            self.sections.append(Section(self._path, self._anchor, body))
        self._blocks = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections


# --------------------------------------------------------------------------- plain text


def _load_text(text: str, name: str) -> LoadedDocument:
    body = _normalise(text)
    first = body.split("\n", 1)[0].strip() if body else ""
    title = first if first and len(first) < 100 else _title_from_name(name)
    sections = [Section((), None, body)] if body else []
    return LoadedDocument(title, sections)


# --------------------------------------------------------------------------- Markdown

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
_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)


@functools.cache
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")
    # Only the block rules that decide where headings and code are. Lists, block quotes,
    # tables and inline markup are flattened to plain text by the regexes below, which
    # is ~3x faster than letting markdown-it build tokens for them.
    md.block.ruler.enableOnly(["code", "fence", "hr", "html_block", "heading", "lheading", "paragraph"])
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
        title = _collapse(value) or None
    return text[m.end():], title


def _md_inline(text: str) -> str:
    """Markdown inline markup -> plain text (links keep their text, code keeps its content)."""
    codes: list[str] = []
    if "`" in text:

        def stash(m: re.Match[str]) -> str:
            code = m.group(2).replace("\n", " ")
            if len(code) > 2 and code[0] == " " and code[-1] == " " and code.strip():
                code = code[1:-1]
            codes.append(code)
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


def _md_paragraph(raw: str) -> str:
    """One paragraph's raw Markdown (which may hold a list, a quote or a table) -> text."""
    lines = raw.split("\n")
    out: list[str] = []
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
            if i == table_from + 1:
                continue  # the |---|---| row
            cells = _CELL_SPLIT.split(s.strip("|") if not s.endswith("\\|") else s.lstrip("|"))
            out.append(" | ".join(c.strip().replace("\\|", "|") for c in cells))
            hard_break = True
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
    text = _md_inline("\n".join(out))
    if "  " in text or "\t" in text:
        return _normalise(text)
    return text


def _md_html_block(raw: str) -> str:
    text = _SCRIPT_STYLE.sub("", raw)
    text = _HTML_TAG.sub(" ", text)
    if "&" in text:
        text = _html.unescape(text)
    return _normalise(text, keep_indent=False)


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


def _load_markdown(text: str, name: str) -> LoadedDocument:
    if text.startswith("\ufeff"):
        text = text[1:]
    text, fm_title = _strip_front_matter(text)
    tokens = _markdown_parser().parse(text)
    builder = _Builder()
    slugger = _Slugger()
    first_h1: str | None = None
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        kind = tok.type
        if kind == "paragraph_open":
            if not _MD_INCLUDE_MACRO.fullmatch(tokens[i + 1].content.strip()):
                builder.add(_md_paragraph(tokens[i + 1].content))
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
            heading = _collapse(_md_inline(raw))
            if not heading:
                continue
            level = int(tok.tag[1])
            if level == 1 and first_h1 is None:
                first_h1 = heading
            if anchor:
                slugger.reserve(anchor)
            builder.heading(level, heading, anchor or slugger.slug(heading))
            continue
        if kind in ("fence", "code_block"):
            builder.add(_fenced(tok.content, tok.info if kind == "fence" else ""))
        elif kind == "html_block":
            builder.add(_md_html_block(tok.content))
        i += 1
    sections = builder.finish()
    title = first_h1 or fm_title or _title_from_name(name)
    return LoadedDocument(title, sections)


# --------------------------------------------------------------------------- reStructuredText

_RST_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`_{0,2}|`([^`]*)`:[\w:.+-]+:")
_RST_TARGET = re.compile(r"^(.*?)\s*<[^<>]*>$", re.S)


def _rst_role_text(raw: str) -> str:
    """``:ref:`Label <target>``` -> ``Label``; ``:func:`~a.b``` -> ``a.b`` (Sphinx roles docutils lacks)."""

    def repl(m: re.Match[str]) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        t = _RST_TARGET.match(inner)
        if t and t.group(1):
            inner = t.group(1)
        return inner.lstrip("~!")

    return _RST_ROLE.sub(repl, raw)


# Sphinx directives that plain docutils does not know. Without them docutils drops their
# whole content (into a system message); with these stand-ins the content stays text.
# Directive arguments that are readable text (a signature, a version) become a paragraph.
_SPHINX_CONTENT_DIRECTIVES = (
    "versionadded versionchanged versionremoved deprecated seealso only glossary hlist centered "
    "tabs tab group-tab code-tab tab-set tab-item card dropdown grid grid-item grid-item-card todo "
    "describe object function class method attribute property data exception decorator module "
    "envvar option program cmdoption confval "
    "py:function py:class py:method py:attribute py:property py:data py:exception py:decorator "
    "py:module py:classmethod py:staticmethod c:function c:macro c:type c:member js:function"
).split()
_SPHINX_DROPPED_DIRECTIVES = (
    "toctree literalinclude index highlight currentmodule py:currentmodule sectionauthor "
    "codeauthor moduleauthor autosummary automodule autoclass autofunction automethod "
    "autoattribute autodata autoexception autoproperty autodecorator tabularcolumns"
).split()
_VERSION_LABELS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "versionremoved": "Removed in version",
    "deprecated": "Deprecated since version",
}


# The docutils setting that carries the ingested root to ``RootedInclude``.
_INCLUDE_ROOT_SETTING = "docrag_include_root"
_INCLUDE_LINE = re.compile(rb"^[ \t]*\.\.[ \t]+include::[ \t]*(\S[^\r\n]*)", re.MULTILINE)


def _included_file(target: str, including: Path, root: Path) -> Path | None:
    """The file an ``.. include:: target`` in ``including`` reads, if it lies inside ``root``
    (after symlinks are followed) and exists."""
    path = (including.parent / target.strip()).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


def rst_included_files(data: bytes, source_path: Path, include_root: Path) -> list[Path]:
    """Every file an rST document includes, nested includes too: a change to one of them
    changes the document (re-ingestion compares content hashes)."""
    found: list[Path] = []
    pending = [(data, source_path)]
    while pending:
        text, including = pending.pop()
        for match in _INCLUDE_LINE.finditer(text):
            path = _included_file(match.group(1).decode("utf-8", "replace"), including, include_root)
            if path is not None and path not in found and path != source_path.resolve():
                found.append(path)
                pending.append((path.read_bytes(), path))
    return found


@functools.cache
def _docutils() -> Any:
    """Import docutils once and register the Sphinx stand-ins (only names docutils lacks)."""
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import Directive, directives
    from docutils.parsers.rst.directives.misc import Include

    class AnyOptions(dict):  # accept every option, ignore its value
        def __bool__(self) -> bool:
            return True

        def __contains__(self, key: object) -> bool:
            return True

        def __getitem__(self, key: str) -> Callable[[str | None], str | None]:
            return lambda value: value

    class ContentDirective(Directive):
        optional_arguments = 2
        final_argument_whitespace = True
        has_content = True
        option_spec = AnyOptions()

        def run(self) -> list[Any]:
            container = nodes.container()
            args = [a.strip() for a in self.arguments if a.strip()]
            label = _VERSION_LABELS.get(self.name)
            if label and args:  # ".. versionchanged:: 3.2\n   What changed."
                line = f"{label} {args[0]}" + (f": {' '.join(args[1:])}" if len(args) > 1 else "")
            elif args and self.name not in ("only", "tab-set", "grid", "hlist", "glossary"):
                line = " ".join(args)  # a signature, a tab's label...
            else:
                line = ""
            if line:
                inline_nodes, _ = self.state.inline_text(line, self.lineno)
                container += nodes.paragraph(line, "", *inline_nodes)
            if self.content:
                self.state.nested_parse(self.content, self.content_offset, container)
            return [container]

    class DroppedDirective(Directive):
        optional_arguments = 1
        final_argument_whitespace = True
        has_content = True
        option_spec = AnyOptions()

        def run(self) -> list[Any]:
            return []

    class RootedInclude(Include):
        """``.. include::`` that reads only files inside the ingested root.

        File insertion stays disabled for every other directive (``csv-table :file:``,
        ``raw :file:``): it is switched on for this one read, after the path is checked.
        """

        def run(self) -> list[Any]:
            settings = self.state.document.settings
            root = getattr(settings, _INCLUDE_ROOT_SETTING, None)
            target = directives.path(self.arguments[0])
            if not (target.startswith("<") and target.endswith(">")):  # <isonum.txt>: docutils' own data
                if root is None:
                    return []  # a web page or an upload: there is no folder to read from
                if _included_file(target, Path(self.state.document.current_source), root) is None:
                    return []  # outside the ingested root, or missing: never read
            self.options.setdefault("encoding", "utf-8")  # the document itself was decoded already
            settings.file_insertion_enabled = True
            try:
                return super().run()
            finally:
                settings.file_insertion_enabled = False

    directives.register_directive("include", RootedInclude)
    for name in _SPHINX_CONTENT_DIRECTIVES + _SPHINX_DROPPED_DIRECTIVES:
        if name not in directives._directives and name not in directives._directive_registry:
            directives.register_directive(
                name, ContentDirective if name in _SPHINX_CONTENT_DIRECTIVES else DroppedDirective
            )
    return nodes, publish_doctree


def _rst_code_language(node: Any) -> str:
    """``.. code-block:: python`` gives classes ``["code", "python"]``; a doctest is Python console."""
    if node.tagname == "doctest_block":
        return "pycon"
    classes = [c for c in node.get("classes", ()) if c != "code"]
    return classes[0] if classes else ""


def _load_rst(
    text: str, name: str, *, source_path: Path | None = None, include_root: Path | None = None
) -> LoadedDocument:
    try:
        nodes, publish_doctree = _docutils()
    except ImportError as exc:  # pragma: no cover - docutils is a dependency
        raise DocumentError(f"reStructuredText support is not installed ({exc})") from None
    settings = {
        "report_level": 5,
        "halt_level": 5,
        "exit_status_level": 5,
        "warning_stream": io.StringIO(),
        "file_insertion_enabled": False,
        "raw_enabled": False,
        "_disable_config": True,
        "syntax_highlight": "none",
        "smart_quotes": False,
        "input_encoding": "unicode",
        "line_length_limit": 100_000,
        _INCLUDE_ROOT_SETTING: include_root.resolve() if include_root and source_path else None,
    }
    try:
        doctree = publish_doctree(text, source_path=str(source_path) if source_path else None, settings_overrides=settings)
    except Exception as exc:  # docutils raises many kinds on pathological input
        raise DocumentError(f"cannot parse reStructuredText: {exc}") from None

    skip = (
        nodes.system_message,
        nodes.comment,
        nodes.substitution_definition,
        nodes.target,
        nodes.raw,
        nodes.pending,
        nodes.title,  # section titles are read by the section handler
    )
    verbatim = (nodes.literal_block, nodes.doctest_block, nodes.line_block)

    def inline(node: Any) -> str:
        parts: list[str] = []

        def rec(n: Any) -> None:
            for child in n.children:
                if isinstance(child, nodes.Text):
                    parts.append(child.astext())  # astext() drops docutils' escape markers (NUL)
                elif isinstance(child, nodes.problematic):
                    parts.append(_rst_role_text(child.astext()))
                elif isinstance(child, (nodes.system_message, nodes.target, nodes.substitution_definition)):
                    continue
                elif isinstance(child, nodes.footnote_reference):
                    parts.append(f"[{child.astext()}]")
                else:
                    rec(child)

        rec(node)
        return _collapse("".join(parts))

    builder = _Builder()
    list_ids = iter(range(1, 1 << 62))

    def body(node: Any, depth: int, first: str = "", cont: str = "", group: object = None) -> None:
        """Render ``node``'s body elements. ``first`` prefixes the first block (a list
        marker, "Note: "), ``cont`` the blocks after it (the item's indentation)."""
        for child in node.children:
            if isinstance(child, nodes.section):
                section(child, depth + 1)
                continue
            if isinstance(child, nodes.subtitle):  # docutils promotes a lone first section's title
                builder.heading(depth + 1, inline(child), child["ids"][0] if child.get("ids") else None)
                continue
            if isinstance(child, skip):
                continue
            if isinstance(child, nodes.topic) and "contents" in child.get("classes", ()):
                continue  # a generated table of contents
            mark = first
            if isinstance(child, nodes.line_block):  # verse, addresses: text whose lines matter
                code = _normalise_code(child.astext())
                if code:
                    builder.add(mark + code if mark.strip() else code, group)
                    first = cont
            elif isinstance(child, verbatim):
                code = _fenced(child.astext(), _rst_code_language(child))
                if code:
                    if mark.strip():  # a list item or a note that starts with code
                        builder.add(mark.rstrip(), group)
                    builder.add(code, group)
                    first = cont
            elif isinstance(child, (nodes.bullet_list, nodes.enumerated_list)):
                g = group if group is not None else next(list_ids)
                start = child.get("start", 1) if isinstance(child, nodes.enumerated_list) else None
                for k, item in enumerate(child.children):
                    marker = "- " if start is None else f"{start + k}. "
                    body(item, depth, cont + marker, cont + "  ", g)
                first = cont
            elif isinstance(child, nodes.table):
                g = next(list_ids)
                for row in child.findall(nodes.row):
                    cells = [inline(entry) for entry in row.children]
                    if any(cells):
                        builder.add(" | ".join(cells), g)
                first = cont
            elif isinstance(child, (nodes.field_list, nodes.docinfo)):
                g = group if group is not None else next(list_ids)
                for field in child.children:
                    if isinstance(field, nodes.field) and len(field.children) > 1:
                        label, value = inline(field.children[0]), inline(field.children[1])
                    else:
                        label, value = field.tagname.capitalize(), inline(field)
                    builder.add(f"{cont}{label}: {value}", g)
                first = cont
            elif isinstance(child, nodes.definition_list):
                g = group if group is not None else next(list_ids)
                for item in child.children:
                    term = " ".join(inline(t) for t in item.children if isinstance(t, (nodes.term, nodes.classifier)))
                    builder.add(cont + term, g)
                    for d in item.children:
                        if isinstance(d, nodes.definition):
                            body(d, depth, cont + "    ", cont + "    ", g)
                first = cont
            elif isinstance(child, nodes.Admonition):
                label = child.tagname.capitalize()
                if isinstance(child, nodes.admonition):  # ".. admonition:: Its own title"
                    label = inline(child.children[0]) if child.children and isinstance(child.children[0], nodes.title) else ""
                body(child, depth, f"{mark}{label}: " if label else mark, cont, group)
                first = cont
            elif isinstance(child, nodes.TextElement):
                text = inline(child)
                if text:
                    builder.add(mark + text, group)
                    first = cont
            elif isinstance(child, nodes.Element):
                body(child, depth, mark, cont, group)
                first = cont
            elif isinstance(child, nodes.Text):
                text = _collapse(child.astext())
                if text:
                    builder.add(mark + text, group)
                    first = cont

    def section(node: Any, depth: int) -> None:
        title_node = node.children[0] if node.children and isinstance(node.children[0], nodes.title) else None
        heading = inline(title_node) if title_node is not None else ""
        anchor = node["ids"][0] if node.get("ids") else None
        builder.heading(depth, heading or "Untitled section", anchor)
        body(node, depth)

    doc_title = ""
    if doctree.children and isinstance(doctree.children[0], nodes.title):
        doc_title = inline(doctree.children[0])
    if doc_title:
        builder.heading(0, doc_title, doctree["ids"][0] if doctree.get("ids") else None)
    body(doctree, 0 if doc_title else -1)
    sections = builder.finish()
    if not doc_title:  # a leading ":title: ..." field, as some doc generators write
        fields = next(iter(doctree.findall(nodes.field_list)), None)
        for field in fields.children if fields is not None else ():
            if isinstance(field, nodes.field) and inline(field.children[0]).lower() == "title":
                doc_title = inline(field.children[1]) if len(field.children) > 1 else ""
                break
    return LoadedDocument(doc_title or _title_from_name(name), sections)


# --------------------------------------------------------------------------- HTML

_HTML_DROP = frozenset(
    "script style nav header footer aside noscript svg form template iframe object embed "
    "canvas button select textarea input dialog head title meta link".split()
)
_HTML_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "complementary"})
_HTML_BLOCK = frozenset(
    "p div section article main blockquote dl dt dd figure figcaption address details summary "
    "hr caption center fieldset body html legend ul ol menu table tbody thead tfoot li".split()
)
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


def _load_html(text: str, name: str) -> LoadedDocument:
    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    soup = BeautifulSoup(text, "html.parser")
    skipped_strings = (Comment, Declaration, Doctype, ProcessingInstruction)

    title = ""
    if soup.title is not None:
        title = _collapse(soup.title.get_text()).translate(_INVISIBLE)

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
        return _collapse("".join(parts).translate(_INVISIBLE)).strip(_PERMALINK_CHARS)

    slugger = _Slugger()

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

    builder = _Builder()
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
                lines = [_collapse(x) for x in raw.split("\x01")]
                body = "\n".join(x for x in lines if x)
            else:
                body = _collapse(raw)
            body = body.translate(_INVISIBLE)
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
            builder.add(_fenced(node.get_text().translate(_INVISIBLE), _html_code_language(node)), state["group"])
            continue
        if name_ == "br":
            cur.append("\x01")
            continue
        if name_ == "tr":
            brk()
            cells = [
                _collapse(c.get_text(" ")).translate(_INVISIBLE)
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
    return LoadedDocument(title or (first_h1[0] if first_h1 else "") or _title_from_name(name), sections)


# --------------------------------------------------------------------------- PDF


def _load_pdf(data: bytes, name: str) -> LoadedDocument:
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency
        raise DocumentError(f"PDF support is not installed ({exc})") from None
    # pypdf warns once per glyph run about fonts it reads anyway ("fontTools is required to fully
    # parse..."): thousands of lines for one manual, nothing a person ingesting it can act on.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if b"%PDF-" not in data[:1024]:
        raise DocumentError("not a PDF file (it does not start with %PDF-)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (DependencyError, NotImplementedError):
                ok = 0
            if not ok:
                raise DocumentError("the PDF is encrypted (password protected)")
        pages = list(reader.pages)
    except DocumentError:
        raise
    except (FileNotDecryptedError, DependencyError):
        raise DocumentError("the PDF is encrypted (password protected)") from None
    except Exception as exc:
        raise DocumentError(f"broken PDF: {_short(exc)}") from None
    if not pages:
        raise DocumentError("the PDF has no pages")

    title = ""
    try:
        meta = reader.metadata
        if meta is not None and meta.title:
            title = _collapse(str(meta.title))
    except Exception:
        title = ""

    sections: list[Section] = []
    failures = 0
    for number, page in enumerate(pages, start=1):
        try:
            raw = page.extract_text() or ""
        except Exception:
            failures += 1
            continue
        body = _normalise(raw.translate(_INVISIBLE).replace("\x00", ""), keep_indent=False)
        if body:
            sections.append(Section((f"Page {number}",), f"page={number}", body))
    if not sections:
        if failures == len(pages):
            raise DocumentError("broken PDF: no page could be read")
        raise DocumentError("no text found in the PDF (scanned images? text recognition is not supported)")
    return LoadedDocument(title or _title_from_name(name), sections)


def _short(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."
