"""Files a Markdown page pulls in when its site is built, read in as the built page shows them.

Two include macros are common in MkDocs sites, and without them a page loses its examples:

* pymdownx.snippets: a line ``--8<-- "path"`` is replaced by the file's text, most often inside
  a code fence (the page supplies the fence); ``"path:3:10"`` takes lines 3 to 10,
  ``"path:name"`` the part between ``--8<-- [start:name]`` and ``--8<-- [end:name]``; a block of
  paths between two ``--8<--`` lines includes each; ``;--8<--`` is an escaped, literal marker.
* FastAPI's ``{* ../../docs_src/app.py ln[1:11] hl[3] *}``: the file as a code block, ``ln[...]``
  choosing its lines (``hl`` only highlights, ``title`` names a tab).
* MyST's ```` ```{include} ../README.md ```` fence of a Markdown file (with ``:start-after:``,
  ``:end-before:``, ``:start-line:``, ``:end-line:``): its text, headings included, in place. (Other
  MyST includes, of code or rST, are read with the directives, core/ingest/loaders/myst.py.)

MkDocs resolves these paths from the project folder (snippets' ``base_path``, FastAPI's
``docs/en``), not from the page, so a target is tried from the page's folder and then from each
folder above it up to the include root; the first file found inside the root wins. Nothing outside
the root is read, symlinks included. A macro that finds no file is left as it is (the Markdown
loader drops it as build noise).
"""
from __future__ import annotations

import re
from pathlib import Path

from core.ingest.loaders.cleaning import fenced

LANGUAGE_BY_SUFFIX = {".py": "python", ".js": "javascript", ".ts": "typescript", ".json": "json",
                      ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".ini": "ini", ".cfg": "ini",
                      ".sh": "bash", ".sql": "sql", ".html": "html", ".rs": "rust", ".go": "go",
                      ".jsx": "jsx", ".tsx": "tsx", ".css": "css", ".md": "markdown", ".txt": "text"}

_SNIPPET_LINE = re.compile(r"^(?P<indent>[ \t]*)-{1,2}8<-{1,2}[ \t]+(?P<q>[\"'])(?P<target>[^\"']+)(?P=q)[ \t]*$")
_SNIPPET_FENCE = re.compile(r"^[ \t]*-{1,2}8<-{1,2}[ \t]*$")
_SNIPPET_SECTION_MARK = re.compile(r"^[ \t]*(?:#|//|<!--|/\*|;)?[ \t]*-{1,2}8<-{1,2}[ \t]+\[(?:start|end):[\w-]+\].*$")
_ESCAPED_SNIPPET = re.compile(r"^([ \t]*);(-{1,2}8<-{1,2})")
_CODE_MACRO = re.compile(r"^(?P<indent>[ \t]*)\{\*[ \t]*(?P<target>\S+)(?P<args>.*?)\*\}[ \t]*$")
_MYST_INCLUDE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\{include\}[ \t]+(?P<target>\S+)[ \t]*$")
_MYST_FILE_DIRECTIVE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})\{(?:literal)?include\}[ \t]+(\S+)[ \t]*$", re.MULTILINE)
MYST_OPTION = re.compile(r"[ \t]*:([\w-]+):[ \t]*(.*)")  # ":start-after: marker" under a MyST opener
_MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")
_LINE_SELECTION = re.compile(r"\bln\[([\d:, ]+)\]")
_MAX_DEPTH = 4  # snippets may include snippets; a cycle or a deep chain stops here


def resolve_include(target: str, including: Path, root: Path) -> Path | None:
    """The file ``target`` names for a page at ``including``: tried from the page's folder, then
    from each folder above it up to ``root``; only an existing file inside ``root``."""
    root = root.resolve()
    if target.startswith(("/", "http://", "https://")):
        return None
    folder = including.parent.resolve()
    while True:
        path = (folder / target).resolve()
        if path.is_relative_to(root) and path.is_file():
            return path
        if folder == root or not folder.is_relative_to(root):
            return None
        folder = folder.parent


def has_include_macros(text: str) -> bool:
    return "8<-" in text or "{*" in text or "{include}" in text


def expand_includes(text: str, including: Path, root: Path) -> tuple[str, list[str]]:
    """``text`` with every snippet and code-include macro replaced by what it includes, and the
    targets no file was found for inside ``root`` (the ingest reports them)."""
    missing: list[str] = []
    lines = _expanded_lines(text, including, root.resolve(), depth=0, seen=frozenset(), missing=missing)
    return "\n".join(lines), missing


def included_files(text: str, including: Path, root: Path) -> list[Path]:
    """Every file the macros of ``text`` read, nested snippets too (re-ingest compares them)."""
    found: list[Path] = []
    _expanded_lines(text, including, root.resolve(), depth=0, seen=frozenset(), found=found)
    for target in _MYST_FILE_DIRECTIVE.findall(text):  # {literalinclude}, {include} of code or rST
        path = resolve_include(target.lstrip("/"), including, root.resolve())
        if path is not None and path not in found:
            found.append(path)
    return found


def _expanded_lines(
    text: str, including: Path, root: Path, *, depth: int, seen: frozenset[Path],
    found: list[Path] | None = None, missing: list[str] | None = None,
) -> list[str]:
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if _SNIPPET_FENCE.match(line):  # a block: one path a line, up to the closing marker
            end = next((j for j in range(i, len(lines)) if _SNIPPET_FENCE.match(lines[j])), None)
            if end is not None:
                indent = line[: len(line) - len(line.lstrip())]
                for target in (t.strip() for t in lines[i:end]):
                    if target and not target.startswith("#"):
                        out.extend(_snippet(target, indent, line, including, root, depth, seen, found, missing))
                i = end + 1
                continue
        if (match := _MYST_INCLUDE.match(line)) and match["target"].lower().endswith(_MARKDOWN_SUFFIXES):
            included, end = _myst_include(match, lines, i, including, root, depth, seen, found, missing)
            if included is not None:
                out.extend(included)
                i = end
                continue
        if match := _SNIPPET_LINE.match(line):
            out.extend(_snippet(match["target"], match["indent"], line, including, root, depth, seen, found, missing))
        elif match := _CODE_MACRO.match(line):
            out.extend(_code_include(match, line, including, root, found, missing))
        elif _SNIPPET_SECTION_MARK.match(line):
            continue  # a section marker of a file meant to be included: not content
        else:
            out.append(_ESCAPED_SNIPPET.sub(r"\1\2", line))
    return out


def _snippet(
    spec: str, indent: str, line: str, including: Path, root: Path, depth: int,
    seen: frozenset[Path], found: list[Path] | None, missing: list[str] | None,
) -> list[str]:
    target, selection = _split_selection(spec)
    path = resolve_include(target, including, root)
    if path is None and missing is not None:
        missing.append(target)
    if path is None or path in seen or depth >= _MAX_DEPTH:
        return [line]
    if found is not None and path not in found:
        found.append(path)
    content = _selected(read_text(path), selection)
    nested = _expanded_lines(content, path, root, depth=depth + 1, seen=seen | {path}, found=found, missing=missing)
    return [indent + part if part else part for part in nested]


def _myst_include(
    match: re.Match[str], lines: list[str], i: int, including: Path, root: Path, depth: int,
    seen: frozenset[Path], found: list[Path] | None, missing: list[str] | None,
) -> tuple[list[str] | None, int]:
    """The lines a ```{include} fence opened above line ``i`` stands for, and the line after it;
    (None, i) when the fence has a body or options this cannot honour (literal, code)."""
    fence = match["fence"]
    options: dict[str, str] = {}
    j = i
    while j < len(lines) and (option := MYST_OPTION.fullmatch(lines[j])):
        options[option[1].lower()] = option[2].strip().strip("'\"")
        j += 1
    closing = lines[j].strip() if j < len(lines) else ""
    if not (closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0])) or {"literal", "code"} & set(options):
        return None, i
    path = resolve_include(match["target"].lstrip("/"), including, root)
    if path is None:
        if missing is not None:
            missing.append(match["target"])
        return [], j + 1
    if path in seen or depth >= _MAX_DEPTH:
        return [], j + 1
    if found is not None and path not in found:
        found.append(path)
    content = between_markers(read_text(path), options)
    nested = _expanded_lines(content, path, root, depth=depth + 1, seen=seen | {path}, found=found, missing=missing)
    return ["", *(match["indent"] + part if part else part for part in nested), ""], j + 1


def between_markers(text: str, options: dict[str, str]) -> str:
    """docutils' include options: ``start-line``/``end-line`` (0-based, end excluded), then
    ``start-after``/``end-before`` (text markers)."""
    start, end = options.get("start-line", ""), options.get("end-line", "")
    if _is_int(start) or _is_int(end):
        text = "\n".join(text.split("\n")[int(start) if _is_int(start) else 0 : int(end) if _is_int(end) else None])
    after, before = options.get("start-after"), options.get("end-before")
    if after and after in text:
        text = text.split(after, 1)[1]
    if before and before in text:
        text = text.split(before, 1)[0]
    return text


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _code_include(
    match: re.Match[str], line: str, including: Path, root: Path, found: list[Path] | None, missing: list[str] | None
) -> list[str]:
    path = resolve_include(match["target"], including, root)
    if path is None:
        if missing is not None:
            missing.append(match["target"])
        return [line]
    if found is not None and path not in found:
        found.append(path)
    content = read_text(path)
    if ranges := _LINE_SELECTION.search(match["args"]):
        content = _lines(content, ranges.group(1))
    block = fenced(content, LANGUAGE_BY_SUFFIX.get(path.suffix.lower(), ""))
    return [match["indent"] + part if part else part for part in block.split("\n")]


def _split_selection(spec: str) -> tuple[str, str]:
    """``"file.py:3:10"`` → ("file.py", "3:10"); ``"file.md:intro"`` → ("file.md", "intro")."""
    head, sep, tail = spec.partition(":")
    if not sep or "/" in tail or "\\" in tail:
        return spec, ""
    return head, tail


def _selected(content: str, selection: str) -> str:
    if not selection:
        return content
    if re.fullmatch(r"[\d:,]+", selection):
        return _lines(content, selection, open_end=True)
    start = re.search(rf"-{{1,2}}8<-{{1,2}}[ \t]+\[start:{re.escape(selection)}\][^\n]*\n", content)
    end = re.search(rf"\n[^\n]*-{{1,2}}8<-{{1,2}}[ \t]+\[end:{re.escape(selection)}\]", content)
    if not start or not end or end.start() < start.end():
        return ""
    return content[start.end(): end.start()]


def _lines(content: str, ranges: str, *, open_end: bool = False) -> str:
    """The 1-based lines that ``ranges`` names, "1:11,14:18" or "21" (FastAPI's ``ln``). With
    ``open_end`` (snippets), a bound left out runs to the file's edge: "3" and "3:" are line 3 to
    the end, ":3" lines 1 to 3."""
    lines = content.split("\n")
    picked: list[str] = []
    for part in ranges.split(","):
        bounds = re.fullmatch(r"\s*(\d*)\s*(:?)\s*(\d*)\s*", part)
        if not bounds or not (bounds[1] or bounds[3]):
            continue
        start = int(bounds[1] or 1)
        if bounds[3]:
            end = int(bounds[3])
        else:
            end = len(lines) if open_end else start
        picked.extend(lines[start - 1: end] if start >= 1 else [])
    return "\n".join(picked)


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
