"""reStructuredText and Sphinx, through docutils."""
from __future__ import annotations

import functools
import io
import re
from pathlib import Path
from typing import Any, Callable

from core.errors import DocumentError
from core.ingest.loaders.admonitions import TAB_DIRECTIVES, code_tab, label_lead
from core.ingest.loaders.cleaning import PROSE_ROLES, code_span, collapse, fenced, normalise_code, role_text
from core.ingest.loaders.document import LoadedDocument, SectionBuilder, title_from_name
from core.ingest.loaders.includes import LANGUAGE_BY_SUFFIX, resolve_include

_RST_ROLE = re.compile(r":([\w:.+-]+):`([^`]*)`_{0,2}|`([^`]*)`:([\w:.+-]+):")


def _rst_role_text(raw: str, mark: Callable[[str], str] = str.strip) -> str:
    """``:ref:`Label <target>``` -> ``Label``; ``:func:`~a.b``` -> ``a.b``, marked as code by ``mark``
    (Sphinx roles docutils lacks)."""

    def repl(m: re.Match[str]) -> str:
        role = (m.group(1) or m.group(4)).rsplit(":", 1)[-1]
        text = role_text(m.group(2) if m.group(2) is not None else m.group(3))
        return text if role in PROSE_ROLES else mark(text)

    return _RST_ROLE.sub(repl, raw)


def _default_role_text(inner: str, mark: Callable[[str], str] = str.strip) -> str:
    """`load <Schema.load>` under a project's ``default_role`` (py:obj in many Sphinx projects, a
    title reference to docutils) is a cross-reference: the page shows ``load``, not the target. A
    name (no spaces) is code; a phrase is a title, shown as text."""
    text = role_text(inner)
    return mark(text) if text and " " not in text else text


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
SPHINX_DROPPED_DIRECTIVES = (
    "toctree index highlight currentmodule py:currentmodule sectionauthor "
    "codeauthor moduleauthor autosummary automodule autoclass autofunction automethod "
    "autoattribute autodata autoexception autoproperty autodecorator tabularcolumns "
    "click:run"  # pallets-sphinx-themes runs the example at build time; its output is generated
).split()
# Directives whose content is example code (pallets-sphinx-themes' click:example: Click, Flask...).
_SPHINX_CODE_DIRECTIVES = {"click:example": "python"}
VERSION_LABELS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "versionremoved": "Removed in version",
    "deprecated": "Deprecated since version",
}


# The docutils setting that carries the ingested root to ``RootedInclude``.
_INCLUDE_ROOT_SETTING = "docrag_include_root"
_INCLUDE_LINE = re.compile(rb"^[ \t]*\.\.[ \t]+(?:literal)?include::[ \t]*(\S[^\r\n]*)", re.MULTILINE)


def _included_file(target: str, including: Path, root: Path) -> Path | None:
    """The file an ``.. include:: target`` (or ``literalinclude``) in ``including`` reads, if it lies
    inside ``root`` (after symlinks are followed) and exists. A target starting with "/" is
    relative to Sphinx's source folder: the ingested folder, or, with a wider include root, the
    nearest folder above the page that has the file."""
    target = target.strip()
    if target.startswith("/"):
        return resolve_include(target.lstrip("/"), including, root)
    path = (including.parent / target).resolve()
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


def literal_excerpt(text: str, options: dict[str, Any]) -> str:
    """The part of an included file a ``literalinclude`` shows: between ``start-after`` and
    ``end-before``, then the ``lines`` it selects ("1,3,5-10")."""
    after, before = options.get("start-after"), options.get("end-before")
    if after and after in text:
        text = text.split(after, 1)[1].split("\n", 1)[-1]
    if before and before in text:
        text = text.split(before, 1)[0].rsplit("\n", 1)[0]
    spec = (options.get("lines") or "").strip()
    if spec:
        lines, chosen = text.split("\n"), []
        for part in spec.split(","):
            first, _, last = part.strip().partition("-")
            if first.isdigit() or (not first and last.isdigit()):
                lo = int(first or 1)
                hi = int(last) if last.isdigit() else (len(lines) if _ else lo)
                chosen.extend(lines[lo - 1 : hi])
        text = "\n".join(chosen)
    return text.strip("\n")


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
            args = [a.strip() for a in self.arguments if a.strip()]
            if self.name in TAB_DIRECTIVES:
                return [self._tab(args)]
            container = nodes.container()
            label = VERSION_LABELS.get(self.name)
            if label and args:  # ".. versionchanged:: 3.2\n   What changed."
                line = f"{label} {args[0]}" + (f": {' '.join(args[1:])}" if len(args) > 1 else "")
            elif args and self.name not in ("only", "tab-set", "grid", "hlist", "glossary"):
                line = " ".join(args)  # a signature, a card's title...
            else:
                line = ""
            if line:
                container += self._paragraph(line)
            if self.content:
                self.state.nested_parse(self.content, self.content_offset, container)
            return [container]

        def _paragraph(self, line: str) -> Any:
            inline_nodes, _ = self.state.inline_text(line, self.lineno)
            return nodes.paragraph(line, "", *inline_nodes)

        def _tab(self, args: list[str]) -> Any:
            """The tab's content led by "label:" (in its first paragraph when it opens with one)."""
            container = nodes.container()
            if self.name == "code-tab":  # ".. code-tab:: py [Label]": the content is the code
                language, label = code_tab(" ".join(args))
                code = "\n".join(self.content)
                container += self._paragraph(f"{label}:")
                container += nodes.literal_block(code, code, classes=["code", language] if language else ["code"])
                return container
            if self.content:
                self.state.nested_parse(self.content, self.content_offset, container)
            label = " ".join(args)
            if not label:
                return container
            lead = label_lead(label)
            first = container.children[0] if container.children else None
            if isinstance(first, nodes.paragraph):
                first.insert(0, nodes.Text(f"{lead} "))
            else:
                container.insert(0, self._paragraph(lead))
            return container

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

    class RootedLiteralInclude(Directive):
        """Sphinx's ``.. literalinclude::``: the file as a code block, read only inside the ingested
        root (``:lines:``, ``:start-after:`` and ``:end-before:`` honoured; ``:language:`` kept)."""

        required_arguments = 1
        final_argument_whitespace = True
        option_spec = AnyOptions()

        def run(self) -> list[Any]:
            root = getattr(self.state.document.settings, _INCLUDE_ROOT_SETTING, None)
            if root is None:
                return []
            path = _included_file(self.arguments[0], Path(self.state.document.current_source), root)
            if path is None:
                return []  # outside the ingested root, or missing: never read
            code = literal_excerpt(path.read_text("utf-8", errors="replace"), self.options)
            language = (self.options.get("language") or LANGUAGE_BY_SUFFIX.get(path.suffix.lower(), "")).strip()
            return [nodes.literal_block(code, code, classes=["code", language] if language else ["code"])]

    class CodeExample(Directive):
        has_content = True
        option_spec = AnyOptions()

        def run(self) -> list[Any]:
            code = "\n".join(self.content)
            return [nodes.literal_block(code, code, classes=["code", _SPHINX_CODE_DIRECTIVES[self.name]])]

    for name in _SPHINX_CODE_DIRECTIVES:
        directives.register_directive(name, CodeExample)
    directives.register_directive("include", RootedInclude)
    directives.register_directive("literalinclude", RootedLiteralInclude)
    for name in _SPHINX_CONTENT_DIRECTIVES + SPHINX_DROPPED_DIRECTIVES:
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


def load_rst(
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

    def inline(node: Any, code: bool = True) -> str:
        """A node's text; with ``code``, inline literals and code roles stay Markdown code spans (so
        no door reads ``__init__`` as emphasis). Headings and titles are read without marks."""
        parts: list[str] = []
        mark = code_span if code else str.strip

        def rec(n: Any) -> None:
            for child in n.children:
                if isinstance(child, nodes.Text):
                    parts.append(child.astext())  # astext() drops docutils' escape markers (NUL)
                elif isinstance(child, nodes.literal):
                    parts.append(mark(child.astext()))
                elif isinstance(child, nodes.problematic):
                    parts.append(_rst_role_text(child.astext(), mark))
                elif isinstance(child, nodes.title_reference):
                    parts.append(_default_role_text(child.astext(), mark))
                elif isinstance(child, (nodes.system_message, nodes.target, nodes.substitution_definition)):
                    continue
                elif isinstance(child, nodes.footnote_reference):
                    parts.append(f"[{child.astext()}]")
                else:
                    rec(child)

        rec(node)
        return collapse("".join(parts))

    builder = SectionBuilder()
    list_ids = iter(range(1, 1 << 62))

    def body(node: Any, depth: int, first: str = "", cont: str = "", group: object = None) -> None:
        """Render ``node``'s body elements. ``first`` prefixes the first block (a list
        marker, "Note: "), ``cont`` the blocks after it (the item's indentation)."""
        for child in node.children:
            if isinstance(child, nodes.section):
                section(child, depth + 1)
                continue
            if isinstance(child, nodes.subtitle):  # docutils promotes a lone first section's title
                builder.heading(depth + 1, inline(child, code=False), child["ids"][0] if child.get("ids") else None)
                continue
            if isinstance(child, skip):
                continue
            if isinstance(child, nodes.topic) and "contents" in child.get("classes", ()):
                continue  # a generated table of contents
            mark = first
            if isinstance(child, nodes.line_block):  # verse, addresses: text whose lines matter
                code = normalise_code(child.astext())
                if code:
                    builder.add(mark + code if mark.strip() else code, group)
                    first = cont
            elif isinstance(child, verbatim):
                code = fenced(child.astext(), _rst_code_language(child))
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
                text = collapse(child.astext())
                if text:
                    builder.add(mark + text, group)
                    first = cont

    def section(node: Any, depth: int) -> None:
        title_node = node.children[0] if node.children and isinstance(node.children[0], nodes.title) else None
        heading = inline(title_node, code=False) if title_node is not None else ""
        anchor = node["ids"][0] if node.get("ids") else None
        builder.heading(depth, heading or "Untitled section", anchor)
        body(node, depth)

    doc_title = ""
    if doctree.children and isinstance(doctree.children[0], nodes.title):
        doc_title = inline(doctree.children[0], code=False)
    if doc_title:
        builder.heading(0, doc_title, doctree["ids"][0] if doctree.get("ids") else None)
    body(doctree, 0 if doc_title else -1)
    sections = builder.finish()
    if not doc_title:  # a leading ":title: ..." field, as some doc generators write
        fields = next(iter(doctree.findall(nodes.field_list)), None)
        for field in fields.children if fields is not None else ():
            if isinstance(field, nodes.field) and inline(field.children[0]).lower() == "title":
                doc_title = inline(field.children[1], code=False) if len(field.children) > 1 else ""
                break
    return LoadedDocument(doc_title or title_from_name(name), sections)


def rst_fragment_text(text: str, name: str, *, source_path: Path | None = None, include_root: Path | None = None) -> str:
    """The text of a piece of reStructuredText inside another document (MyST's ``{eval-rst}``
    fence): its blocks as ``load_rst`` reads them, headings left to the including document."""
    try:
        loaded = load_rst(text, name, source_path=source_path, include_root=include_root)
    except DocumentError:
        return ""
    return "\n\n".join(section.text for section in loaded.sections if section.text)
