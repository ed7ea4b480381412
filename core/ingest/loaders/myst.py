"""MyST directives written as backtick fences (```{name} args), read as the built page shows them.

markdown-it sees ```{note} as a code block in a language called "{note}", so a box was stored as
code, a ```{code-block} python as code in the language "{code-block}" with its ":caption:" line
inside, and a table of contents as its options. MyST renders a labelled box, a code block, a
version note, reStructuredText, an included file, or nothing; so does this. (Colon fences,
:::{note}, are rewritten before parsing by admonitions.py.)
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.ingest.loaders.admonitions import box_label, code_tab, label_lead
from core.ingest.loaders.cleaning import fenced
from core.ingest.loaders.includes import LANGUAGE_BY_SUFFIX, MYST_OPTION, between_markers, read_text, resolve_include
from core.ingest.loaders.rst import SPHINX_DROPPED_DIRECTIVES, VERSION_LABELS, literal_excerpt

_CODE = {"code-block", "code", "sourcecode", "code-cell"}
_TESTS = {"doctest": "pycon", "testcode": "python", "testsetup": "python", "testoutput": ""}
_DROPPED = set(SPHINX_DROPPED_DIRECTIVES) | {"contents", "image", "raw", "tableofcontents", "bibliography"}
_YAML_OPTION = re.compile(r"[ \t]*([\w-]+):[ \t]*(.*)")
MAX_INCLUDE_DEPTH = 4


@dataclass(frozen=True)
class Readers:
    """How the including page reads what a directive holds: Markdown (the page's own loader) and
    reStructuredText, each returning the text of its blocks; and where included files may come from."""

    markdown: Callable[[str, Path | None, int], str]  # (text, path it came from, include depth)
    rst: Callable[[str, Path | None], str]
    source_path: Path | None = None
    include_root: Path | None = None
    depth: int = 0


def is_directive(info: str) -> bool:
    return info.lstrip().startswith("{") and "}" in info


def directive_text(info: str, content: str, read: Readers) -> str:
    """The text a MyST directive fence shows on the built page ("" for one that shows nothing)."""
    name, _, args = info.strip()[1:].partition("}")
    name, args = name.strip().lower(), args.strip()
    if name == "eval-rst":
        return read.rst(content, read.source_path)
    options, body = _options(content)
    if name in _CODE:
        return fenced(body, args or options.get("language", ""))
    if name in _TESTS:
        return fenced(body, _TESTS[name])
    if name in ("include", "literalinclude"):
        return _included(name, args, options, read)
    if name in _DROPPED:
        return ""
    if name == "code-tab":  # ```{code-tab} py [Label]
        language, label = code_tab(args)
        return _led(label, fenced(body, language)) if language else fenced(body, "")
    text = read.markdown(body, read.source_path, read.depth)
    if label := VERSION_LABELS.get(name):
        return _led(f"{label} {args}".strip() if args else label, text)
    if label := box_label("{" + name + "}", args or None):
        return _led(label, text)
    return text  # tab sets, cards, figures...: their content, as text


def _led(label: str, text: str) -> str:
    if not text:
        return label
    lead = label_lead(label)
    return f"{lead}\n\n{text}" if text.startswith(("```", "- ", "* ", "|")) else f"{lead} {text}"


def _options(content: str) -> tuple[dict[str, str], str]:
    """A directive's options (":key: value" lines, or a "---" YAML block) and the body after them."""
    lines = content.split("\n")
    options: dict[str, str] = {}
    i = 0
    if lines and lines[0].strip() == "---" and "---" in (line.strip() for line in lines[1:]):
        end = next(j for j in range(1, len(lines)) if lines[j].strip() == "---")
        for line in lines[1:end]:
            if match := _YAML_OPTION.fullmatch(line):
                options[match[1].lower()] = _unquoted(match[2])
        i = end + 1
    else:
        while i < len(lines) and (match := MYST_OPTION.fullmatch(lines[i])):
            options[match[1].lower()] = _unquoted(match[2])
            i += 1
    return options, "\n".join(lines[i:]).strip("\n")


def _unquoted(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _included(name: str, target: str, options: dict[str, str], read: Readers) -> str:
    """``{include}`` (Markdown or rST, or code with ``:literal:``/``:code:``) and ``{literalinclude}``,
    read only from inside the include root, as Sphinx resolves them (relative to the page)."""
    if not (read.source_path and read.include_root and target) or read.depth >= MAX_INCLUDE_DEPTH:
        return ""
    path = resolve_include(target.lstrip("/"), read.source_path, read.include_root)
    if path is None:
        return ""
    text = read_text(path)
    language = options.get("language") or options.get("code") or LANGUAGE_BY_SUFFIX.get(path.suffix.lower(), "")
    if name == "literalinclude":
        return fenced(literal_excerpt(text, options), language)
    text = between_markers(text, options)
    if "literal" in options or "code" in options:
        return fenced(text, language)
    if path.suffix.lower() in (".rst", ".rest", ".txt"):
        return read.rst(text, path)
    return read.markdown(text, path, read.depth + 1)  # the pre-pass (includes.py) inlines most of these
