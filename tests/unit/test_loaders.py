"""Loaders (bytes -> titled sections) and sources (CLI targets -> items to fetch).

Every fixture is built here: files in tmp_path, PDFs written by hand, and a small web
site served on 127.0.0.1 by a stdlib ThreadingHTTPServer.
"""
from __future__ import annotations

import gzip
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import DocumentError, NothingToIndex
from tests.builders import make_pdf
from core.ingest.loaders import (
    SUPPORTED_SUFFIXES,
    LoadedDocument,
    Section,
    github_slug,
    load_document,
)
from core.ingest.sources import USER_AGENT, SourceItem, discover, target_root


def by_path(doc: LoadedDocument) -> dict[tuple[str, ...], Section]:
    return {s.heading_path: s for s in doc.sections}


def all_text(doc: LoadedDocument) -> str:
    return "\n".join(" / ".join(s.heading_path) + "\n" + s.text for s in doc.sections)


# --------------------------------------------------------------------------- Markdown

MARKDOWN = """\
---
title: "Front matter title"
tags: [docs]
---
Text before any heading.

# DocRag Guide

Some **bold**, _emphasis_, `__init__`, snake_case_name and a [link](https://example.com/a_(b)).
A wrapped line of the same paragraph &amp; an entity.

## Install & Setup

- first item
- second *item*
  - nested `code`
1. step one
2. step two

```bash
# this is a shell comment, not a heading
pip install docrag
    indented line
```

| Option | Default |
|--------|:-------:|
| `timeout` | 20 |

> A quoted **note**.

[ref]: https://example.com/ref
See [the reference][ref].<br>

### Rate limits

Ten per second.

## Install & Setup

Same heading again.

Setext heading
--------------

Under a setext heading.

<div><script>alert("md-script")</script>HTML <b>block</b> text</div>
"""


def test_markdown_sections_headings_and_anchors() -> None:
    doc = load_document(MARKDOWN.encode(), name="guide.md")
    assert doc.title == "DocRag Guide"  # first H1 beats front matter
    paths = [(s.heading_path, s.anchor) for s in doc.sections]
    assert paths == [
        ((), None),
        (("DocRag Guide",), "docrag-guide"),
        (("DocRag Guide", "Install & Setup"), "install--setup"),
        (("DocRag Guide", "Install & Setup", "Rate limits"), "rate-limits"),
        (("DocRag Guide", "Install & Setup"), "install--setup-1"),
        (("DocRag Guide", "Setext heading"), "setext-heading"),
    ]
    sections = doc.sections
    assert sections[0].text == "Text before any heading."
    assert sections[1].text == (
        "Some bold, emphasis, `__init__`, snake_case_name and a link. "
        "A wrapped line of the same paragraph & an entity."
    )
    assert "Same heading again." == sections[4].text


def test_markdown_keeps_code_fenced_with_its_language_lists_and_tables_as_text() -> None:
    doc = load_document(MARKDOWN.encode(), name="guide.md")
    install = doc.sections[2].text
    assert "- first item\n- second item\n  - nested `code`\n1. step one\n2. step two" in install
    assert "# this is a shell comment, not a heading\npip install docrag\n    indented line" in install
    assert "Option: `timeout` | Default: 20" in install
    assert "A quoted note." in install
    assert "See the reference." in install
    assert "https://example.com/ref" not in install  # reference definitions are not text
    # code stays fenced code with its language, so an answer can quote it as code
    assert "\n\n```bash\n# this is a shell comment, not a heading\n" in install
    assert "    indented line\n```\n\nOption" in install


def test_markdown_front_matter_stripped_and_html_blocks_cleaned() -> None:
    doc = load_document(MARKDOWN.encode(), name="guide.md")
    text = all_text(doc)
    assert "tags:" not in text and "Front matter title" not in text
    assert "md-script" not in text and "<" not in text
    assert doc.sections[-1].text == "Under a setext heading.\n\nHTML block text"


def test_markdown_title_fallbacks() -> None:
    fm = load_document(b"---\ntitle: 'From front matter'\n---\n\n## Only H2\n\nbody\n", name="x.md")
    assert fm.title == "From front matter"
    assert fm.sections == [Section(("Only H2",), "only-h2", "body")]
    stem = load_document(b"plain body\n", name="docs/getting_started-guide.md")
    assert stem.title == "Getting started guide"
    toml = load_document(b'+++\ntitle = "Toml title"\n+++\nbody\n', name="t.md")
    assert toml.title == "Toml title" and toml.sections[0].text == "body"


def test_markdown_heading_chain_and_slug_dedupe() -> None:
    md = "# A\n\na\n\n### Deep\n\nd\n\n## B\n\nb\n\n## B\n\nb2\n\n## B 1\n\nb3\n\n# Second top\n\ns\n"
    doc = load_document(md.encode(), name="x.markdown")
    assert [(s.heading_path, s.anchor) for s in doc.sections] == [
        (("A",), "a"),
        (("A", "Deep"), "deep"),
        (("A", "B"), "b"),
        (("A", "B"), "b-1"),
        (("A", "B 1"), "b-1-1"),  # GitHub: "b-1" is taken, so the next free suffix
        (("Second top",), "second-top"),
    ]


def test_github_slug() -> None:
    assert github_slug("Rate limits") == "rate-limits"
    assert github_slug("What's new in v2.0?") == "whats-new-in-v20"
    assert github_slug("`fs.readFile(path[, options])`") == "fsreadfilepath-options"
    assert github_slug("snake_case & more") == "snake_case--more"
    assert github_slug("Ünïcode Überschrift") == "ünïcode-überschrift"


def test_markdown_list_followed_by_rule_is_not_a_heading() -> None:
    doc = load_document(b"# T\n\n- item\n---\n\nafter\n", name="x.md")
    assert [s.heading_path for s in doc.sections] == [("T",)]
    assert doc.sections[0].text == "- item\n\nafter"


def test_markdown_only_headings_is_no_text() -> None:
    with pytest.raises(NothingToIndex, match="no text to index"):
        load_document(b"# Title\n\n## Sub\n", name="empty.md")


def test_markdown_with_300_kb_of_unmatched_inline_markup_still_loads() -> None:
    # How long it takes is bench/ingest.py's business; a quadratic parser would stall the suite here.
    line = "*a _b `c [d](e " * 20000
    doc = load_document(f"# T\n\n{line}\n".encode(), name="x.md")
    assert doc.title == "T"
    assert doc.sections[0].text.count("[d](e") == 20000


# --------------------------------------------------------------------------- reStructuredText

RST = """\
=====
Guide
=====

:Author: Someone

Intro with ``literal`` text, :ref:`a label <target>` and :func:`~pkg.func`.

.. contents::

Rate limits
===========

Requests are *limited*.

.. code-block:: bash

   docrag ingest ./docs
     --prune

.. note:: Be careful.

.. include:: /etc/passwd

.. raw:: html

   <script>alert("rst-raw")</script>

Burst
-----

- one
- two

  - nested

3. three
4. four

==== =====
Key  Value
==== =====
a    1
==== =====

Other topic
===========

Last words.
"""


def test_rst_sections_titles_and_anchors() -> None:
    doc = load_document(RST.encode(), name="guide.rst")
    assert doc.title == "Guide"
    assert [(s.heading_path, s.anchor) for s in doc.sections] == [
        (("Guide",), "guide"),
        (("Guide", "Rate limits"), "rate-limits"),
        (("Guide", "Rate limits", "Burst"), "burst"),
        (("Guide", "Other topic"), "other-topic"),
    ]
    sections = by_path(doc)
    assert sections[("Guide",)].text == "Author: Someone\n\nIntro with `literal` text, a label and `pkg.func`."
    rate = sections[("Guide", "Rate limits")].text
    assert "Requests are limited." in rate
    assert "```bash\ndocrag ingest ./docs\n  --prune\n```" in rate  # code: fenced, language and indentation kept
    assert "Note: Be careful." in rate
    burst = sections[("Guide", "Rate limits", "Burst")].text
    assert "- one\n- two\n  - nested" in burst
    assert "3. three\n4. four" in burst
    assert "Key | Value\na | 1" in burst


def test_rst_is_safe_and_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    doc = load_document(RST.encode(), name="guide.rst", content_type="text/x-rst")
    text = all_text(doc)
    assert "root:" not in text and "/etc/passwd" not in text
    assert "rst-raw" not in text and "include" not in text
    assert "Contents" not in text  # generated table of contents
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_rst_sphinx_directives_and_roles_keep_their_text() -> None:
    src = """\
API
===

.. function:: fetch(url, *, timeout=20)
   :noindex:

   Download *url*; see :ref:`the guide <guide>` and :class:`~pkg.Client`.

   .. versionchanged:: 0.2
      The ``timeout`` argument.

.. toctree::
   :maxdepth: 2

   other-page

.. tab:: Unix

   Use ``ls``.
"""
    doc = load_document(src.encode(), name="api.rst")
    assert doc.sections == [
        Section(
            ("API",),
            "api",
            "fetch(url, *, timeout=20)\n\nDownload url; see the guide and `pkg.Client`.\n\n"
            "Changed in version 0.2: The `timeout` argument.\n\nUnix: Use `ls`.",
        )
    ]


def test_sphinx_tabs_label_their_content_in_rst_and_myst() -> None:
    # pytest's docs give each setting as ".. tab:: toml" and ".. tab:: ini" code; click's shell
    # completion steps are ".. group-tab:: Bash" tabs. The label was a paragraph of its own ("toml"),
    # so an answer quoting "...the strict_xfail ini option:" stopped before either tab's code.
    rst = """\
Config
======

Set the option:

.. tab:: toml

    .. code-block:: toml

        [pytest]
        xfail_strict = true

.. tab:: ini

    .. code-block:: ini

        [pytest]
        xfail_strict = true

.. tabs::

    .. group-tab:: Bash

        Add this to ``~/.bashrc``:

        .. code-block:: bash

            eval "$(_FOO_BAR_COMPLETE=bash_source foo-bar)"

    .. code-tab:: py Python 3

        print(1)
"""
    myst = (
        "# Install\n\n::::{tab-set}\n:::{tab-item} pip\n```bash\npip install x\n```\n:::\n"
        ":::{tab-item} conda\nUse conda:\n```bash\nconda install x\n```\n:::\n::::\n\n"
        "````{tab-set}\n```{tab-item} uv\nRun `uv add x`.\n```\n````\n"
    )

    assert all_text(load_document(rst.encode(), name="config.rst")) == (
        "Config\nSet the option:\n\ntoml:\n\n```toml\n[pytest]\nxfail_strict = true\n```\n\n"
        "ini:\n\n```ini\n[pytest]\nxfail_strict = true\n```\n\n"
        'Bash: Add this to `~/.bashrc`:\n\n```bash\neval "$(_FOO_BAR_COMPLETE=bash_source foo-bar)"\n```\n\n'
        "Python 3:\n\n```py\nprint(1)\n```"
    )
    assert all_text(load_document(myst.encode(), name="install.md")) == (
        "Install\npip:\n\n```bash\npip install x\n```\n\nconda: Use conda:\n\n```bash\nconda install x\n```\n\n"
        "uv: Run `uv add x`."
    )


def test_rst_default_role_cross_references_show_their_text() -> None:
    # Found in marshmallow's docs (default_role = "py:obj"): answers quoted "load <Schema.load>".
    src = "Loading\n=======\n\nThe `dump <Schema.dump>` method, `~marshmallow.fields.Nested` and `A Title`.\n"

    doc = load_document(src.encode(), name="quickstart.rst")

    assert doc.sections[0].text == "The `dump` method, `marshmallow.fields.Nested` and A Title."


def test_rst_without_document_title_uses_file_stem() -> None:
    src = "First\n=====\n\none\n\nSecond\n======\n\ntwo\n"
    doc = load_document(src.encode(), name="my_notes.rst")
    assert doc.title == "My notes"
    assert [(s.heading_path, s.anchor, s.text) for s in doc.sections] == [
        (("First",), "first", "one"),
        (("Second",), "second", "two"),
    ]


# --------------------------------------------------------------------------- HTML

HTML = """<!DOCTYPE html>
<html><head><title>Rate limits &mdash; DocRag</title>
<script>var secret = "HEAD-SCRIPT";</script><style>body { color: red }</style></head>
<body>
<header><a href="/">Home</a> Site banner</header>
<nav><ul><li>Nav link</li></ul></nav>
<div role="navigation">Sidebar junk</div>
<main>
<section id="rate-limits">
<h1>Rate limits<a class="headerlink" href="#rate-limits" title="Permalink">¶</a></h1>
<p>Requests are   limited&nbsp;to <b>10</b>/s &amp; bursts &lt;= 20.</p>
<script>document.write("BODY-SCRIPT")</script>
<noscript>Enable JS</noscript>
<ul><li>First <code>item</code></li><li><p>Second</p><ul><li>nested</li></ul></li></ul>
<ol start="3"><li>three</li><li>four</li></ol>
<section id="configuration"><h2>Configuration</h2>
<pre><code>docrag ingest ./docs
    --prune</code></pre>
<table><tr><th>Key</th><th>Value</th></tr><tr><td>timeout</td><td>20</td></tr></table>
</section>
<h2><a name="legacy"></a>Legacy</h2><p>old<br>stuff</p>
<h3>Plain heading</h3><p>first</p>
<h3>Plain heading</h3><p>second</p>
<form><label>Search</label><input name="q"></form>
<svg><text>SVG-TEXT</text></svg>
</section>
</main>
<aside>Aside text</aside>
<footer>Footer text</footer>
</body></html>
"""


def test_html_sections_titles_anchors() -> None:
    doc = load_document(HTML.encode(), name="/docs/rate.html", content_type="text/html; charset=utf-8")
    assert doc.title == "Rate limits — DocRag"
    assert [(s.heading_path, s.anchor) for s in doc.sections] == [
        (("Rate limits",), "rate-limits"),
        (("Rate limits", "Configuration"), "configuration"),
        (("Rate limits", "Legacy"), "legacy"),
        (("Rate limits", "Legacy", "Plain heading"), "plain-heading"),
        (("Rate limits", "Legacy", "Plain heading"), "plain-heading-1"),
    ]
    first = doc.sections[0].text
    assert first.startswith("Requests are limited to 10/s & bursts <= 20.\n\n")
    assert "- First `item`\n- Second\n  - nested" in first
    assert "3. three\n4. four" in first
    config = doc.sections[1].text
    assert config == "```\ndocrag ingest ./docs\n    --prune\n```\n\nKey | Value\ntimeout | 20"
    assert doc.sections[2].text == "old\nstuff"


def test_html_drops_scripts_and_page_chrome() -> None:
    doc = load_document(HTML.encode(), name="page.html")
    text = all_text(doc)
    for junk in ("HEAD-SCRIPT", "BODY-SCRIPT", "color: red", "Enable JS", "Nav link", "Site banner",
                 "Sidebar junk", "Aside text", "Footer text", "Search", "SVG-TEXT", "¶"):
        assert junk not in text, junk
    for entity in ("&amp;", "&lt;", "&nbsp;", "&mdash;", "\xa0"):
        assert entity not in text


def test_html_without_main_or_title() -> None:
    page = b"<body><nav>menu</nav><h1 id='top'>Hello</h1><p>World</p><h2>Next</h2><p>More</p></body>"
    doc = load_document(page, name="/guide/intro.htm")
    assert doc.title == "Hello"
    assert doc.sections == [Section(("Hello",), "top", "World"), Section(("Hello", "Next"), "next", "More")]
    untitled = load_document(b"<p>Just text</p>", name="/guide/intro.htm")
    assert untitled.title == "Intro" and untitled.sections == [Section((), None, "Just text")]


def test_html_charset_from_meta_when_not_utf8() -> None:
    page = '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body><p>d\xe9j\xe0 vu</p></body></html>'
    doc = load_document(page.encode("cp1252"), name="x.html")
    assert doc.title == "Café" and doc.sections[0].text == "déjà vu"


# --------------------------------------------------------------------------- PDF


def test_pdf_pages_become_sections() -> None:
    data = make_pdf(["Hello PDF world\nSecond line (with parens)", "", "Third page text"], title="The Manual")
    doc = load_document(data, name="manual.pdf")
    assert doc.title == "The Manual"
    assert doc.sections == [
        Section(("Page 1",), "page=1", "Hello PDF world\nSecond line (with parens)"),
        Section(("Page 3",), "page=3", "Third page text"),
    ]


def test_pdf_title_falls_back_to_stem_and_content_type_dispatch() -> None:
    doc = load_document(make_pdf(["abc"]), name="/files/user_guide", content_type="application/pdf")
    assert doc.title == "User guide"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "broken PDF"),
        (make_pdf(["truncated"])[:150], "broken PDF"),
        (b"<html>not a pdf</html>", "not a PDF"),
        (make_pdf(["", ""]), "no text found in the PDF"),
    ],
)
def test_bad_pdfs_raise_document_error(data: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        load_document(data, name="bad.pdf")


def test_encrypted_pdf() -> None:
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(["secret text"])
    locked = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    locked.encrypt("user-password", "owner", algorithm="RC4-128")
    buf = io.BytesIO()
    locked.write(buf)
    with pytest.raises(DocumentError, match="encrypted"):
        load_document(buf.getvalue(), name="locked.pdf")
    # an owner password alone (empty user password) still opens
    open_ = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    open_.encrypt("", "owner", algorithm="RC4-128")
    buf = io.BytesIO()
    open_.write(buf)
    assert load_document(buf.getvalue(), name="open.pdf").sections[0].text == "secret text"


# --------------------------------------------------------------------------- plain text, decoding, dispatch


def test_plain_text() -> None:
    doc = load_document("Release notes\n\nFixed   a bug.\n\n\n\n  indented line\r\n".encode(), name="notes.txt")
    assert doc.title == "Release notes"
    assert doc.sections == [Section((), None, "Release notes\n\nFixed a bug.\n\n  indented line")]
    long_first = ("word " * 30 + "\nmore").encode()
    assert load_document(long_first, name="long_notes.text").title == "Long notes"


def test_non_utf8_is_rejected() -> None:
    with pytest.raises(DocumentError, match="not valid UTF-8 text"):
        load_document("caf\xe9 au lait".encode("latin-1"), name="x.md")
    with pytest.raises(DocumentError, match="not valid UTF-8 text"):
        load_document(b"ok \xc3\x28 broken", name="x.txt", content_type="text/plain")


def test_declared_charset_and_boms() -> None:
    latin = load_document("caf\xe9".encode("latin-1"), name="x.txt", content_type="text/plain; charset=ISO-8859-1")
    assert latin.sections[0].text == "café"
    assert load_document(b"\xef\xbb\xbf# Title\n\nbody", name="x.md").title == "Title"
    assert load_document("# Wide\n\nbody".encode("utf-16"), name="x.md").title == "Wide"
    with pytest.raises(DocumentError, match="NUL"):
        load_document(b"abc\x00def", name="x.txt")


@pytest.mark.parametrize("data", [b"", b"   \n\n\t", b"<html><body><script>x()</script></body></html>"])
def test_no_text_found(data: bytes) -> None:
    with pytest.raises(NothingToIndex, match="no text to index"):
        load_document(data, name="empty.html")


def test_dispatch() -> None:
    assert SUPPORTED_SUFFIXES == frozenset({".md", ".markdown", ".mdx", ".rst", ".txt", ".text", ".html", ".htm", ".pdf"})
    # the content type wins for a web page...
    html = load_document(b"<h1>Hi</h1><p>there</p>", name="/page.md", content_type="text/html")
    assert html.sections == [Section(("Hi",), "hi", "there")]
    # ...but text/plain and generic types defer to a known suffix (Markdown served as text/plain)
    md = load_document(b"# Hi\n\nthere", name="/raw/README.md", content_type="text/plain; charset=utf-8")
    assert md.sections == [Section(("Hi",), "hi", "there")]
    assert load_document(b"# Hi\n\nthere", name="/x", content_type="text/markdown").title == "Hi"
    assert load_document(b"Hi\n==\n\nthere", name="/x", content_type="text/x-rst").title == "Hi"
    assert load_document(b"# not a heading", name="/x", content_type="text/plain").title == "# not a heading"
    with pytest.raises(DocumentError, match=r"unsupported file type \.xyz"):
        load_document(b"data", name="file.xyz")
    with pytest.raises(DocumentError, match="unsupported content type image/png"):
        load_document(b"\x89PNG", name="/logo", content_type="image/png")


# --------------------------------------------------------------------------- sources: local files


def write(path: Path, text: str = "# T\n\nbody\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def docs_tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for rel in [
        "index.md",
        "b.rst",
        "a.txt",
        "guide/install.md",
        "guide/z.html",
        "guide/with space.md",
        "manual.pdf",
        "Upper.MD",
        "notes.docx",  # unsupported: skipped in folders
        "script.py",
        ".hidden.md",
        ".git/HEAD.md",
        ".venv/lib/readme.md",
        "node_modules/pkg/README.md",
        "guide/.draft/secret.md",
    ]:
        write(root / rel)
    return root


def test_folder_discovery_is_sorted_and_filtered(docs_tree: Path) -> None:
    items = list(discover([str(docs_tree)]))
    rels = [Path(i.uri).relative_to(docs_tree).as_posix() for i in items]
    assert rels == [
        "Upper.MD",
        "a.txt",
        "b.rst",
        "guide/install.md",
        "guide/with space.md",
        "guide/z.html",
        "index.md",
        "manual.pdf",
    ]
    root = docs_tree.absolute().as_posix()
    first = items[3]
    assert first.uri == f"{root}/guide/install.md"
    assert first.name == "install.md"
    assert first.root == root
    assert first.link == "guide/install.md"  # relative to the folder: no server path in answers
    assert items[4].link == "guide/with%20space.md"
    assert all(i.uri.startswith(root + "/") for i in items)
    assert first.fetch() == (b"# T\n\nbody\n", None)
    # order is stable across runs
    assert [i.uri for i in discover([str(docs_tree)])] == [i.uri for i in items]


def test_a_sphinx_html_build_is_ingested_without_its_source_copies(tmp_path: Path) -> None:
    # Found in alembic's sdist: its built docs hold every page twice, as page.html and as
    # _sources/page.rst(.txt); answers quoted the same sentence from both.
    html = tmp_path / "html"
    (html / "_sources" / "api").mkdir(parents=True)
    (html / "api").mkdir()
    (html / "searchindex.js").write_text("Search.setIndex({})")
    for page in ("index", "api/ops"):
        (html / f"{page}.html").write_text("<h1>T</h1><p>body</p>")
        (html / "_sources" / f"{page}.rst.txt").write_text("T\n=\n\nbody\n")
    plain = tmp_path / "plain" / "_sources"  # not a Sphinx build: a folder that happens to be named so
    plain.mkdir(parents=True)
    (plain / "notes.md").write_text("# Notes\n")

    assert [Path(i.uri).relative_to(html).as_posix() for i in discover([str(html)])] == ["api/ops.html", "index.html"]
    assert [i.name for i in discover([str(tmp_path / "plain")])] == ["notes.md"]


def test_folder_discovery_with_base_url(docs_tree: Path) -> None:
    items = {Path(i.uri).name: i for i in discover([str(docs_tree)], base_url="https://docs.example.com/v1/")}
    assert items["install.md"].link == "https://docs.example.com/v1/guide/install.md"
    assert items["with space.md"].link == "https://docs.example.com/v1/guide/with%20space.md"
    assert items["index.md"].link == "https://docs.example.com/v1/index.md"


def test_a_single_file_without_base_url_links_to_its_name(docs_tree: Path) -> None:
    (item,) = list(discover([str(docs_tree / "guide" / "install.md")]))
    assert item.link == "install.md"


def test_single_file_any_suffix(docs_tree: Path) -> None:
    odd = docs_tree / "notes.docx"
    (item,) = list(discover([str(odd)], base_url="https://x.org"))
    assert item.uri == odd.absolute().as_posix() and item.root == item.uri
    assert item.name == "notes.docx" and item.link == "https://x.org/notes.docx"
    data, ctype = item.fetch()
    with pytest.raises(DocumentError, match=r"unsupported file type \.docx"):
        load_document(data, name=item.name, content_type=ctype)
    hidden = list(discover([str(docs_tree / ".hidden.md")]))
    assert [i.name for i in hidden] == [".hidden.md"]


def test_missing_path_raises_before_yielding(docs_tree: Path, tmp_path: Path) -> None:
    gen = discover([str(docs_tree), str(tmp_path / "nope")])
    with pytest.raises(DocumentError, match="no such file or folder: .*nope"):
        next(gen)
    with pytest.raises(DocumentError, match="unsupported URL scheme ftp"):
        list(discover(["ftp://example.com/docs"]))


def test_duplicates_and_unreadable_files(docs_tree: Path) -> None:
    items = list(discover([str(docs_tree), str(docs_tree / "index.md"), str(docs_tree) + "/"]))
    assert len(items) == 8  # each document once, under its first root
    gone = next(i for i in items if i.name == "a.txt")
    Path(gone.uri).unlink()
    with pytest.raises(DocumentError, match="cannot read"):
        gone.fetch()


def test_relative_target(docs_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(docs_tree.parent)
    items = list(discover(["docs/guide"]))
    assert [i.name for i in items] == ["install.md", "with space.md", "z.html"]
    assert items[0].root == (docs_tree / "guide").absolute().as_posix()
    assert target_root("docs/guide/") == target_root("./docs/./guide") == items[0].root
    assert target_root("https://x.org/sitemap.xml#frag") == "https://x.org/sitemap.xml"


def test_discovered_files_load(docs_tree: Path) -> None:
    write(docs_tree / "guide/install.md", "# Install\n\nRun `pip install docrag`.\n")
    (docs_tree / "manual.pdf").write_bytes(make_pdf(["Manual text"], title="Manual"))
    loaded = {}
    for item in discover([str(docs_tree)]):
        data, ctype = item.fetch()
        loaded[item.name] = load_document(data, name=item.name, content_type=ctype)
    assert loaded["install.md"].sections[0].text == "Run `pip install docrag`."
    assert loaded["manual.pdf"].title == "Manual"


# --------------------------------------------------------------------------- sources: web


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, user agent)
        self.base = ""

    def add(self, path: str, body: str | bytes, ctype: str = "text/html; charset=utf-8", status: int = 200) -> None:
        self.routes[path] = (status, ctype, body.encode() if isinstance(body, str) else body)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Site:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib API
            state.requests.append((self.path, self.headers.get("User-Agent", "")))
            if self.path == "/old":
                self.send_response(301)
                self.send_header("Location", "/page")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status, ctype, body = state.routes.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def urlset(base: str, paths: list[str]) -> str:
    urls = "".join(
        f"<url><loc>{base}{p}</loc><image:image><image:loc>{base}/img.png</image:loc></image:image></url>"
        for p in paths
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">' + urls + "</urlset>"
    )


def sitemapindex(base: str, paths: list[str]) -> str:
    maps = "".join(f"<sitemap><loc>{base}{p}</loc></sitemap>" for p in paths)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
    )


def test_single_page(site: Site) -> None:
    site.add("/page", "<title>A page</title><main><h1 id='top'>Top</h1><p>Hello web</p></main>")
    (item,) = list(discover([site.base + "/page#section"]))
    assert item.uri == item.link == item.root == site.base + "/page"
    assert item.name == "/page"
    data, ctype = item.fetch()
    assert ctype == "text/html; charset=utf-8"
    doc = load_document(data, name=item.name, content_type=ctype)
    assert doc.title == "A page" and doc.sections == [Section(("Top",), "top", "Hello web")]
    assert site.hits("/page") == 1  # the discovery response is reused by the first fetch
    item.fetch()
    assert site.hits("/page") == 2
    assert all(ua == USER_AGENT for _, ua in site.requests)


def test_sitemap_index_to_sitemaps_to_pages(site: Site) -> None:
    b = site.base
    site.add("/sitemap.xml", sitemapindex(b, ["/sitemap-docs.xml", "/sitemap-blog.xml.gz", "/sitemap.xml"]), "application/xml")
    site.add("/sitemap-docs.xml", urlset(b, ["/docs/a", "/docs/b.md", "/docs/a#dup", "/missing"]), "application/xml")
    site.add("/sitemap-blog.xml.gz", gzip.compress(urlset(b, ["/blog/post", "/docs/b.md"]).encode()), "application/gzip")
    site.add("/docs/a", "<h1>A</h1><p>Page A</p>")
    site.add("/docs/b.md", "# B\n\nPage B", "text/plain")
    site.add("/blog/post", "<h1>Post</h1><p>Blog</p>")

    items = list(discover([b + "/sitemap.xml"]))
    assert [i.uri for i in items] == [b + "/docs/a", b + "/docs/b.md", b + "/missing", b + "/blog/post"]
    assert all(i.root == b + "/sitemap.xml" for i in items)
    assert site.hits("/docs/a") == 0  # pages are fetched lazily
    texts = {}
    for item in items[:2] + items[3:]:
        data, ctype = item.fetch()
        texts[item.name] = load_document(data, name=item.name, content_type=ctype).sections[0].text
    assert texts == {"/docs/a": "Page A", "/docs/b.md": "Page B", "/blog/post": "Blog"}
    with pytest.raises(DocumentError, match=r"HTTP 404 .*for http://127\.0\.0\.1:\d+/missing"):
        items[2].fetch()


def test_sitemap_detected_by_content_and_capped(site: Site) -> None:
    site.add("/map", urlset(site.base, [f"/p{i}" for i in range(10)]), "text/xml")
    items = list(discover([site.base + "/map"], max_pages=3))
    assert [i.name for i in items] == ["/p0", "/p1", "/p2"]


def test_web_errors(site: Site) -> None:
    (missing,) = list(discover([site.base + "/nope"]))
    with pytest.raises(DocumentError, match="HTTP 404"):
        missing.fetch()
    with pytest.raises(DocumentError, match="HTTP 404"):
        list(discover([site.base + "/gone-sitemap.xml"]))
    site.add("/feed.xml", "<rss><channel/></rss>", "application/xml")
    with pytest.raises(DocumentError, match="not a sitemap"):
        list(discover([site.base + "/feed.xml"]))
    site.add("/broken.xml", "<urlset><url><loc>", "application/xml")
    with pytest.raises(DocumentError, match="not a valid sitemap"):
        list(discover([site.base + "/broken.xml"]))
    site.add("/index.xml", sitemapindex(site.base, ["/gone.xml"]), "application/xml")
    with pytest.raises(DocumentError, match="HTTP 404"):
        list(discover([site.base + "/index.xml"]))  # a partial list would mislead --prune


def test_redirect_and_unreachable(site: Site) -> None:
    site.add("/page", "<p>moved here</p>")
    (item,) = list(discover([site.base + "/old"]))
    data, ctype = item.fetch()
    assert load_document(data, name=item.name, content_type=ctype).sections[0].text == "moved here"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (dead,) = list(discover([f"http://127.0.0.1:{port}/x"], http_timeout_s=2))
    with pytest.raises(DocumentError, match="cannot fetch"):
        dead.fetch()


def test_mixed_targets(site: Site, docs_tree: Path) -> None:
    site.add("/page", "<p>web</p>")
    items = list(discover([str(docs_tree / "index.md"), site.base + "/page"]))
    assert [i.name for i in items] == ["index.md", "/page"]
    assert isinstance(items[0], SourceItem)


def test_rst_backslash_escapes_leave_no_nul_in_the_text() -> None:
    # docutils marks a backslash-escaped character with a NUL; PostgreSQL text refuses NUL, and one
    # such file used to abort a whole ingest (seen in a Sphinx project's docs: `Group`\s).
    doc = load_document(b"Groups\n======\n\nCollect `Group`\\s and ``Item``\\s here.\n", name="groups.rst")

    assert doc.sections[0].text == "Collect `Group`s and `Item`s here."



def test_code_blocks_stay_fenced_with_their_language_in_every_markup() -> None:
    rst = "Title\n=====\n\nInstall it::\n\n    pip install x\n\n.. code-block:: python\n\n    import x\n\n>>> 1 + 1\n2\n"
    assert load_document(rst.encode(), name="a.rst").sections[0].text == (
        "Install it:\n\n```\npip install x\n```\n\n```python\nimport x\n```\n\n```pycon\n>>> 1 + 1\n2\n```"
    )
    html = '<main><p>Run:</p><div class="highlight-python"><pre>import a</pre></div><pre><code class="language-bash">ls</code></pre></main>'
    assert load_document(html.encode(), name="a.html").sections[0].text == "Run:\n\n```python\nimport a\n```\n\n```bash\nls\n```"
    md = "Fenced code that holds a fence:\n\n````markdown\n```\ninner\n```\n````\n"
    assert "````markdown\n```\ninner\n```\n````" in load_document(md.encode(), name="a.md").sections[0].text


def test_rst_include_is_resolved_relative_to_the_including_file_inside_the_root_only(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "snippets").mkdir(parents=True)
    (tmp_path / "CHANGES.rst").write_text("Changes\n=======\n\nOutside the root: zebrafish.\n")
    (docs / "snippets" / "install.rst").write_text("Run ``pip install kumquat``.\n\n.. include:: note.txt\n")
    (docs / "snippets" / "note.txt").write_text("Nested from the snippet's own folder: marmalade.\n")
    (docs / "snippets" / "escape.rst").symlink_to(tmp_path / "CHANGES.rst")
    page = docs / "guide.rst"
    page.write_text(
        "Guide\n=====\n\n.. include:: snippets/install.rst\n\n.. include:: ../CHANGES.rst\n\n"
        ".. include:: snippets/escape.rst\n\n.. include:: /etc/passwd\n\n"
        ".. include:: snippets/note.txt\n   :literal:\n\n.. include:: <isonum.txt>\n\nCopyright |copy| 2026.\n"
    )

    doc = load_document(page.read_bytes(), name="guide.rst", source_path=page, include_root=docs)

    text = all_text(doc)
    assert "Run `pip install kumquat`." in text
    assert text.count("Nested from the snippet's own folder: marmalade.") == 2  # nested, and :literal:
    assert "Copyright © 2026." in text  # docutils' own <isonum.txt>
    assert "zebrafish" not in text and "root:" not in text  # outside the root, via .. or a symlink


def test_rst_literalinclude_shows_the_file_as_code_inside_the_root_only(tmp_path: Path) -> None:
    # pytest's fixture reference shows its examples with ".. literalinclude:: /example/fixtures/...",
    # which used to be dropped, leaving "For example:" with nothing after it.
    docs = tmp_path / "docs"
    (docs / "example").mkdir(parents=True)
    (docs / "how-to").mkdir()
    (docs / "example" / "test_order.py").write_text("import pytest\n\n\ndef test_order(order):\n    assert order\n")
    (docs / "example" / "setup.cfg").write_text("[tool]\n# start\nkey = value\n# end\nother = 1\n")
    (tmp_path / "secret.py").write_text("TOKEN = 'outside the root'\n")
    page = docs / "how-to" / "fixtures.rst"
    page.write_text(
        "Fixtures\n========\n\nFor example:\n\n.. literalinclude:: /example/test_order.py\n   :lines: 4-5\n\n"
        "And:\n\n.. literalinclude:: ../example/setup.cfg\n   :language: ini\n   :start-after: # start\n"
        "   :end-before: # end\n\n.. literalinclude:: ../../secret.py\n"
    )

    doc = load_document(page.read_bytes(), name="fixtures.rst", source_path=page, include_root=docs)

    assert all_text(doc) == (
        "Fixtures\nFor example:\n\n```python\ndef test_order(order):\n    assert order\n```\n\n"
        "And:\n\n```ini\nkey = value\n```"
    )


def test_rst_include_without_a_folder_reads_nothing(tmp_path: Path) -> None:
    (tmp_path / "part.rst").write_text("Included words.\n")
    page = "Page\n====\n\nOwn words.\n\n.. include:: part.rst\n"

    doc = load_document(page.encode(), name="page.rst")  # a web page or an upload

    assert "Own words." in all_text(doc) and "Included" not in all_text(doc)


def test_markdown_heading_attribute_lists_give_the_anchor_and_include_macros_are_dropped() -> None:
    # Found in FastAPI's MkDocs docs: attr_list ids on every heading, docs_src include macros.
    src = (
        "# Request Body { #request-body }\n\nSend data.\n\n"
        "{* ../../docs_src/body/tutorial001_py310.py hl[4,23] *}\n\n"
        "## Import `BaseModel` {: #import-basemodel .big }\n\nUse it.\n\n"
        '--8<-- "snippets/warning.md"\n\n'
        "## Sets {literal}\n\nBraces that are text stay.\n"
    )

    doc = load_document(src.encode(), name="body.md")

    assert doc.title == "Request Body"
    assert [(s.heading_path, s.anchor, s.text) for s in doc.sections] == [
        (("Request Body",), "request-body", "Send data."),
        (("Request Body", "Import BaseModel"), "import-basemodel", "Use it."),
        (("Request Body", "Sets {literal}"), "sets-literal", "Braces that are text stay."),
    ]


def _markdown_text(src: str) -> str:
    return "\n\n".join(section.text for section in load_document(src.encode(), name="page.md").sections)


def test_mkdocs_admonitions_become_labelled_text_not_code() -> None:
    # Found in MkDocs and Material docs: the indented body of "!!! note" parsed as a code block.
    src = (
        "# Config\n\n"
        '!!! warning "Strict mode"\n'
        "    Set `strict: true` to fail the build on warnings.\n\n"
        "    It also checks links.\n\n"
        "    ```yaml\n    strict: true\n    ```\n\n"
        "??? tip\n    Collapsible, and still text.\n\n"
        "After the boxes.\n"
    )

    assert _markdown_text(src) == (
        "Strict mode: Set `strict: true` to fail the build on warnings.\n\n"
        "It also checks links.\n\n"
        "```yaml\nstrict: true\n```\n\n"
        "Tip: Collapsible, and still text.\n\n"
        "After the boxes."
    )


def test_docusaurus_myst_and_pymdownx_boxes_lose_their_fences() -> None:
    # Found in Prettier's Docusaurus docs (":::warning"), attrs' MyST docs (":::{caution}") and
    # FastAPI's pymdownx blocks ("/// note", "//// tab | Python 3.10+").
    src = (
        "# Options\n\n"
        'import Tabs from "@theme/Tabs";\n\n'
        ":::warning\n\n**Prefer 80 columns:**\n\nLonger lines are harder to read.\n\n:::\n\n"
        ":::tip[Cache]\nUse `--cache`.\n:::\n\n"
        ":::{caution}\n:class: dropdown\nAnnotate every field.\n:::\n\n"
        "/// admonition | Careful\n    type: warning\n\nDo not run as root.\n///\n\n"
        "//// tab | Python 3.10+\n\n```python\nx: int | None\n```\n\n////\n\n"
        "::: fastapi.Request\n    options:\n      members: true\n\n"
        ":::note this box is never closed, so it is text\n"
    )

    assert _markdown_text(src) == (
        "Warning: Prefer 80 columns:\n\n"
        "Longer lines are harder to read.\n\n"
        "Cache: Use `--cache`.\n\n"
        "Caution: Annotate every field.\n\n"
        "Careful: Do not run as root.\n\n"
        "Python 3.10+:\n\n```python\nx: int | None\n```\n\n"
        ":::note this box is never closed, so it is text"
    )


def test_box_markers_inside_code_are_code() -> None:
    src = "# Rust\n\n```rust\n/// note\nfn main() {}\n///\n```\n\n    !!! note\n        indented code\n"

    text = _markdown_text(src)

    assert text.startswith("```rust\n/// note\nfn main() {}\n///\n```")
    assert "!!! note" in text


def test_markdown_shortcut_reference_links_keep_only_their_text() -> None:
    # Found in MkDocs' docs: "[GitHub Pages] to host" with "[GitHub Pages]: https://..." below.
    src = (
        "# Deploy\n\nHost it on [GitHub] with [GitHub Pages], or see [the guide][guide].\n"
        "There are two [kinds of sites]: project and user sites.\n"
        "Extras install with pip install mkdocs[i18n] and a list [1, 2].\n\n"
        "[GitHub]: https://github.com/\n[github pages]: https://pages.github.com/\n[guide]: guide.md\n"
        "[kinds of sites]: https://example.com/kinds\n"
    )

    assert _markdown_text(src) == (
        "Host it on GitHub with GitHub Pages, or see the guide. "
        "There are two kinds of sites: project and user sites. "
        "Extras install with pip install mkdocs[i18n] and a list [1, 2]."
    )


def test_markdown_tables_of_one_or_two_rows_name_each_cell_longer_ones_keep_one_header() -> None:
    # Found in Prettier's option pages: "| Default | CLI Override | API Override |" over one row,
    # whose "80 | --print-width <int>" said nothing once quoted or chunked without its header.
    src = (
        "# Options\n\n"
        "| Default | CLI Override | API Override |\n| --- | --- | --- |\n| `80` | `--print-width <int>` | `printWidth: <int>` |\n\n"
        "| Setting | Default |\n|---|---|\n| `a` | 1 |\n| `b` | 2 |\n| `c` | 3 |\n"
    )

    assert _markdown_text(src) == (
        "Default: `80` | CLI Override: `--print-width <int>` | API Override: `printWidth: <int>`\n\n"
        "Setting | Default\n`a` | 1\n`b` | 2\n`c` | 3"
    )


def test_myst_roles_read_as_the_built_page_shows_them() -> None:
    # Found in Click's MyST docs, whose answers quoted "{meth}Context.invoke" and "{attr}~Context...".
    src = (
        "# Advanced\n\n"
        "Use {meth}`~click.Context.with_resource` to enter it, and {func}`pass_context` for the context.\n\n"
        "See {ref}`the testing guide <testing>`, {issue}`1649` and {pep}`8`; press {kbd}`Ctrl+C`.\n\n"
        "A literal `{meth}` stays, and so does {this}.\n"
    )

    assert _markdown_text(src) == (
        "Use `click.Context.with_resource` to enter it, and `pass_context` for the context.\n\n"
        "See the testing guide, #1649 and PEP 8; press Ctrl+C.\n\n"
        "A literal `{meth}` stays, and so does {this}."
    )


def test_code_in_a_block_quote_or_a_list_item_stays_fenced_code() -> None:
    # Found in MkDocs' plugin guide ("> EXAMPLE:" then "> ```python"), whose code was flattened
    # into one line of prose, and in numbered steps whose fence is indented under the item.
    src = (
        "# Plugins\n\n"
        "> EXAMPLE:\n>\n> ```python\n> import logging\n>\n> log = logging.getLogger(__name__)\n> ```\n\n"
        "> [!NOTE]\n> Alerts still read as notes.\n\n"
        "2. Then configure it:\n\n    ```yaml\n    plugins: [thing]\n    ```\n\n"
        "Indented code:\n\n    x = 1\n"
    )

    assert _markdown_text(src) == (
        "EXAMPLE:\n\n```python\nimport logging\n\nlog = logging.getLogger(__name__)\n```\n\n"
        "Note: Alerts still read as notes.\n\n"
        "2. Then configure it:\n\n```yaml\nplugins: [thing]\n```\n\n"
        "Indented code:\n\n```\nx = 1\n```"
    )


def test_html_inline_code_stays_code_and_headings_stay_plain() -> None:
    # Sphinx and MkDocs builds wrap inline literals and cross-references in <code>.
    page = (
        b"<html><body><main><h1>Frozen <code>__slots__</code></h1>"
        b'<p>Override <code class="docutils literal"><span class="pre">__setattr__</span></code> and see '
        b'<a href="api.html"><code class="xref"><span class="pre">Schema.load</span></code></a>.</p>'
        b"<pre><code>x = 1</code></pre></main></body></html>"
    )

    (section,) = load_document(page, name="frozen.html").sections

    assert section.heading_path == ("Frozen __slots__",)
    assert section.text == "Override `__setattr__` and see `Schema.load`.\n\n```\nx = 1\n```"


# Built-HTML generators read as their pages show them (markup seen in the PostgreSQL and Debian
# Reference manuals, DocBook XSL, and on the SQLite site; minimal fixtures, not copied pages).

DOCBOOK = """<html><head><title>20.3. Connections</title></head><body>
<div class="navheader"><table><tr><th colspan="3">20.3. Connections</th></tr>
<tr><td><a accesskey="p" href="prev.html">Prev</a></td><td><a href="index.html">Home</a></td>
<td><a href="next.html">Next</a></td></tr></table><hr /></div>
<div class="sect1" id="RUNTIME-CONFIG-CONNECTION"><div class="titlepage"><div><div>
<h2 class="title">20.3. Connections</h2></div></div></div>
<div class="toc"><p><b>Table of Contents</b></p><dl class="toc"><dt><span class="sect2">
<a href="#RUNTIME-CONFIG-CONNECTION-SETTINGS">20.3.1. Connection Settings</a></span></dt></dl></div>
<div class="sect2" id="RUNTIME-CONFIG-CONNECTION-SETTINGS"><div class="titlepage"><div><div>
<h3 class="title">20.3.1. Connection Settings</h3></div></div></div>
<p>Sets the maximum number of connections.</p>
<div class="note"><h3 class="title">Note</h3><p>On Windows, set it to 0.</p></div>
<p>This parameter can only be set at server start.</p>
<div class="warning"><table border="0" summary="Warning"><tr>
<td rowspan="2"><img alt="[Warning]" src="images/warning.png"/></td><th align="left">Warning</th></tr>
<tr><td><p>Add "<code class="literal">auth optional pam_group.so</code>" to
"<code class="literal">/etc/pam.d/common-auth</code>" (see <a href="ch04.html">Chapter 4, <em>Auth</em></a>).</p>
</td></tr></table></div>
</div></div>
<div class="navfooter"><hr /><table><tr><td><a href="prev.html">Prev</a></td><td>Up</td></tr>
<tr><td>20.2. File Locations</td><td>Home</td></tr></table></div>
</body></html>"""


def test_docbook_navigation_and_tables_of_contents_are_not_content() -> None:
    doc = load_document(DOCBOOK.encode(), name="runtime-config-connection.html")
    text = all_text(doc)
    for junk in ("Prev", "Home", "Next", "Table of Contents", "File Locations"):
        assert junk not in text, junk
    # the TOC was all the chapter heading held: only the real section remains
    assert [s.heading_path for s in doc.sections] == [("20.3. Connections", "20.3.1. Connection Settings")]


def test_docbook_section_anchor_is_the_id_of_the_section_around_its_titlepage() -> None:
    doc = load_document(DOCBOOK.encode(), name="runtime-config-connection.html")
    assert doc.sections[0].anchor == "RUNTIME-CONFIG-CONNECTION-SETTINGS"


def test_docbook_call_out_boxes_lead_with_their_label_and_are_no_heading() -> None:
    doc = load_document(DOCBOOK.encode(), name="runtime-config-connection.html")
    assert len(doc.sections) == 1  # "Note" does not open a section
    # (backticks aside: whether inline code is marked as a code span is not what this is about)
    assert doc.sections[0].text.replace("`", "") == (
        "Sets the maximum number of connections.\n\n"
        "Note: On Windows, set it to 0.\n\n"
        "This parameter can only be set at server start.\n\n"
        'Warning: Add "auth optional pam_group.so" to "/etc/pam.d/common-auth" (see Chapter 4, Auth).'
    )


def test_html_table_cells_keep_inline_markup_tight() -> None:
    page = (b"<table><tr><th>package</th><th>description</th></tr>"
            b"<tr><td><code>apt</code></td><td>use \"<code>apt-get</code>\" (see <em>APT</em>).<p>More.</p></td></tr></table>")
    doc = load_document(page, name="t.html")
    assert doc.sections[0].text == 'package | description\napt | use "apt-get" (see APT). More.'


def test_sqlite_site_banner_is_dropped_and_exponents_keep_their_caret() -> None:
    page = b"""<html><head><title>Limits</title></head><body>
<div class=nosearch><a href="index.html"><img alt="SQLite"></a>
<div class="tagline">Small. Fast. Reliable.<br>Choose any three.</div>
<div class="menu mainmenu"><ul><li><a href="about.html">About</a></li></ul></div></div>
<div class=fancy><div class=nosearch><div class="fancy_title">Limits</div>
<div class="fancy_toc"><a href="#rows">1. Rows</a></div></div>
<h1 id="rows">1. Rows</h1>
<p>At most 2<sup><small>64</small></sup> rows; see note<sup><a href="#fn1">1</a></sup>.</p></div>
</body></html>"""
    doc = load_document(page, name="limits.html")
    assert doc.sections == [Section(("1. Rows",), "rows", "At most 2^64 rows; see note1.")]


def _pdf_with_outline(pages: list[str], outline: list[tuple[str, int, str | None]]) -> bytes:
    """make_pdf's pages with an outline of (title, page index, parent title) entries."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages))))
    items: dict[str, object] = {}
    for title, page, parent in outline:
        items[title] = writer.add_outline_item(title=title, page_number=page, parent=items[parent] if parent else None)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_reads_without_print_furniture_and_under_its_outline_headings() -> None:
    # the layout of the R manuals (texinfo PDFs): contents pages with dot leaders, running heads
    # that print the page number, bare page numbers, words hyphenated and addresses cut at line ends
    data = _pdf_with_outline(
        [
            "A Manual\nby Someone",
            "i\nTable of Contents\n1 Getting started . . . . . . . . 1\n1.1 Installing ............ 1\n2 Usage . . 2\n2.1 Running ........ 2",
            "1 Getting started\nThis chapter explains the infor-\nmation you need.\n1.1 Installing\n"
            "Run the installer with care-\nful attention to the well-\nknown steps.\n1",
            "Chapter 1: Getting started 2\nMore about installing, as is known: https://example.\n"
            "org/install.html (and https://\nexample.org/faq/\nupgrade.html).\n"
            "1.2 Removing the program and all of\nits files\nDelete it.",
        ],
        [("1 Getting started", 2, None), ("Installing", 2, "1 Getting started"),
         ("Removing the program and all of its files", 3, "1 Getting started")],
    )
    doc = load_document(data, name="manual.pdf")
    assert [(s.heading_path, s.anchor, s.text) for s in doc.sections] == [
        (("Page 1",), "page=1", "A Manual\nby Someone"),
        (("1 Getting started",), "page=3", "This chapter explains the information\nyou need."),
        (("1 Getting started", "Installing"), "page=3",
         "Run the installer with careful\nattention to the well-known\nsteps."),
        (("1 Getting started", "Installing"), "page=4",  # addresses cut at line ends are whole
         "More about installing, as is known: https://example.org/install.html "
         "(and https://example.org/faq/upgrade.html)."),
        (("1 Getting started", "Removing the program and all of its files"), "page=4", "Delete it."),  # wrapped
    ]


def test_html_heading_closed_with_the_wrong_level_does_not_swallow_the_page() -> None:
    # SQLite's pages: "<h2>Documentation</h1>", "<h4>3.10 ...</h3>"; Python's parser keeps the
    # heading open, so the rest of the page was heading text and its sections were lost.
    page = (b"<h1>Guide</h1><h2>Keyword Index</h1><var>Other indexes:<ul><li>Books</ul></var>"
            b"<p>Intro.</p><h3>3.10 Background jobs</h2><p>Run them.</p>")
    doc = load_document(page, name="k.html")
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        (("Guide", "Keyword Index"), "Other indexes:\n\n- Books\n\nIntro."),
        (("Guide", "Keyword Index", "3.10 Background jobs"), "Run them."),
    ]


def test_html_table_without_end_tags_keeps_its_rows_and_cells() -> None:
    # SQLite's tables omit </td> and </tr> (valid HTML): cells were glued, "10241.5351.020".
    page = (b"<table border=1><tr><th>Page size<th>10k<th>20k\n<tr><td>1024<td>1.535<td>1.020\n"
            b"<tr><td>2048<td>2.004<td><table><tr><td>inner</td></tr></table></table><p>After.</p>")
    doc = load_document(page, name="blobs.html")
    assert doc.sections[0].text == "Page size | 10k | 20k\n1024 | 1.535 | 1.020\n2048 | 2.004 | inner\n\nAfter."


def test_html_section_that_is_only_a_long_list_of_links_is_an_index_not_content() -> None:
    # SQLite's keyword index, sitemap and "List Of Functions" sections; Sphinx's genindex
    entries = "".join(f'<li><a href="api.html#f{i}">f{i}() (in module api)</a></li>' for i in range(45))
    prose = "".join(f'<p>Call <a href="api.html#f{i}">f{i}()</a> to run step {i} of the job.</p>' for i in range(45))
    page = f"<h1>Index</h1><ul>{entries}</ul><h1>Guide</h1>{prose}<h1>Few</h1><ul>{entries[:400]}</ul>"
    doc = load_document(page.encode(), name="genindex.html")
    assert [s.heading_path for s in doc.sections] == [("Guide",), ("Few",)]


def test_html_labels_of_diagrams_the_text_leaves_out_are_dropped() -> None:
    # SQLite's syntax pages: "column-def:" and a show/hide button before each railroad diagram
    # (an <svg>, nested diagrams inside hidden containers); the page began with runs of labels.
    page = b"""<h1>ALTER TABLE</h1>
<p><b><a href="syntax/alter-table-stmt.html">alter-table-stmt:</a></b><button>hide</button></p>
<div class='imgcontainer'><div><svg><text>ALTER</text></svg></div>
<p><b><a href="syntax/column-def.html">column-def:</a></b><button>show</button></p>
<div style='display:none;' class='imgcontainer'><svg><text>name</text></svg></div></div>
<p>SQLite supports a limited subset of ALTER TABLE. Options:</p><ul><li>rename</li></ul>"""
    doc = load_document(page, name="lang_altertable.html")
    assert doc.sections[0].text == "SQLite supports a limited subset of ALTER TABLE. Options:\n\n- rename"


def test_pdf_running_heads_with_roman_page_numbers_are_furniture() -> None:
    # the Debian Reference PDF's front matter: "DebianReference xxiv" over each page
    from core.ingest.loaders.pdf_layout import strip_page_furniture

    pages = ["Debian Reference xxiv\nConventions used.", "Debian Reference xxv\nMore text.", "Debian Reference xxvi\nEnd."]
    assert strip_page_furniture(pages) == ["Conventions used.", "More text.", "End."]


def _fastapi_like_repo(tmp_path: Path) -> tuple[Path, Path]:
    """FastAPI's layout: pages in docs/en/docs, their examples in docs_src at the repository's top,
    named from the MkDocs project folder (docs/en) as ../../docs_src/..."""
    (tmp_path / "docs_src" / "cookies").mkdir(parents=True)
    (tmp_path / "docs_src" / "cookies" / "tutorial001.py").write_text(
        "from fastapi import FastAPI, Response\n\napp = FastAPI()\n\n\n"
        "@app.post('/cookie/')\ndef create_cookie(response: Response):\n"
        "    response.set_cookie(key='fakesession', value='fake-cookie-session-value')\n"
        "    return {'message': 'Come to the dark side, we have cookies'}\n"
    )
    (tmp_path / "secret.py").write_text("TOKEN = 'never read'\n")
    page = tmp_path / "docs" / "en" / "docs" / "advanced" / "response-cookies.md"
    page.parent.mkdir(parents=True)
    page.write_text(
        "# Response Cookies\n\nDeclare a parameter of type `Response`, then set cookies in it:\n\n"
        "{* ../../docs_src/cookies/tutorial001.py ln[6:8] hl[8] *}\n\nThe whole file:\n\n"
        "{* ../../docs_src/cookies/tutorial001.py *}\n\n{* ../../../../../secret.py *}\n"
    )
    return tmp_path, page


def test_markdown_code_includes_show_the_example_as_code(tmp_path: Path) -> None:
    # FastAPI's tutorials show every example with {* ../../docs_src/... *}; dropped, a page said
    # "set cookies in it:" and stopped, and no answer about cookies could quote set_cookie.
    repo, page = _fastapi_like_repo(tmp_path)

    doc = load_document(page.read_bytes(), name=page.name, source_path=page, include_root=repo)

    text = all_text(doc)
    assert text.startswith(
        "Response Cookies\nDeclare a parameter of type `Response`, then set cookies in it:\n\n```python\n"
        "@app.post('/cookie/')\ndef create_cookie(response: Response):\n"
        "    response.set_cookie(key='fakesession', value='fake-cookie-session-value')\n```\n\nThe whole file:\n\n"
        "```python\nfrom fastapi import FastAPI, Response\n"
    )
    assert "never read" not in text and "{*" not in text


def test_markdown_code_includes_outside_the_include_root_are_not_read(tmp_path: Path) -> None:
    repo, page = _fastapi_like_repo(tmp_path)

    doc = load_document(page.read_bytes(), name=page.name, source_path=page, include_root=page.parent.parent)

    assert all_text(doc) == "Response Cookies\nDeclare a parameter of type `Response`, then set cookies in it:\n\nThe whole file:"


def test_markdown_snippets_are_read_from_the_project_folder(tmp_path: Path) -> None:
    # pymdownx.snippets (MkDocs Material sites): paths from the project folder, most often inside a
    # code fence; lines, named sections, blocks of paths, nested snippets, escaped markers.
    (tmp_path / "docs" / "guide").mkdir(parents=True)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "hello.py").write_text(
        "import sys\n\n# --8<-- [start:main]\ndef main():\n    print('hello')\n# --8<-- [end:main]\n"
    )
    (tmp_path / "docs" / "snippets").mkdir()
    (tmp_path / "docs" / "snippets" / "note.md").write_text("Note: run it with `python hello.py`.\n\n--8<-- \"docs/snippets/loop.md\"\n")
    (tmp_path / "docs" / "snippets" / "loop.md").write_text("Loops stop here.\n\n--8<-- \"docs/snippets/note.md\"\n")
    (tmp_path / "CONTRIBUTING.md").write_text("Open a pull request against `main`.\n")
    page = tmp_path / "docs" / "guide" / "hello.md"
    page.write_text(
        "# Hello\n\nThe entry point:\n\n```python\n--8<-- \"examples/hello.py:main\"\n```\n\n"
        "Its first line:\n\n```python\n--8<-- \"examples/hello.py:1:1\"\n```\n\n"
        "--8<-- \"docs/snippets/note.md\"\n\n--8<--\nCONTRIBUTING.md\n--8<--\n\n"
        "To include a file, write:\n\n```\n;--8<-- \"file.md\"\n```\n"
    )

    doc = load_document(page.read_bytes(), name=page.name, source_path=page, include_root=tmp_path)

    assert all_text(doc) == (
        "Hello\nThe entry point:\n\n```python\ndef main():\n    print('hello')\n```\n\n"
        "Its first line:\n\n```python\nimport sys\n```\n\n"
        "Note: run it with `python hello.py`.\n\nLoops stop here.\n\n"  # the cycle back to note.md is cut
        "Open a pull request against `main`.\n\n"
        "To include a file, write:\n\n```\n--8<-- \"file.md\"\n```"
    )


def test_markdown_includes_without_a_folder_read_nothing(tmp_path: Path) -> None:
    repo, page = _fastapi_like_repo(tmp_path)

    doc = load_document(page.read_bytes(), name=page.name)  # a web page or an upload

    assert "set_cookie" not in all_text(doc)


def test_rst_root_paths_stay_sphinx_source_paths_under_a_wider_include_root(tmp_path: Path) -> None:
    # With --include-root above the docs folder, "/example/..." still means the docs folder's
    # example/ (Sphinx's source folder), not one at the include root.
    docs = tmp_path / "doc" / "en"
    (docs / "example").mkdir(parents=True)
    (docs / "how-to").mkdir()
    (docs / "example" / "conftest.py").write_text("import pytest\n")
    page = docs / "how-to" / "fixtures.rst"
    page.write_text("Fixtures\n========\n\n.. literalinclude:: /example/conftest.py\n")

    doc = load_document(page.read_bytes(), name="fixtures.rst", source_path=page, include_root=tmp_path)

    assert all_text(doc) == "Fixtures\n```python\nimport pytest\n```"


def test_myst_eval_rst_blocks_read_as_rst_and_click_examples_stay_code() -> None:
    # Click's MyST docs put each example in ```{eval-rst} / .. click:example:: ; stored as a code
    # block of rST it quoted ".. click:example::" and ".. click:run::" lines, and the rST loader
    # alone dropped the unknown directive with the example in it.
    src = (
        "# Options\n\nHere's an example for a `--version` flag:\n\n```{eval-rst}\n.. click:example::\n\n"
        "    @click.command()\n    @click.option('--version', is_flag=True, is_eager=True)\n    def hello():\n"
        "        click.echo('Hello World!')\n\nWhat it looks like:\n\n.. click:run::\n\n    invoke(hello)\n\n"
        ".. autoclass:: click.Option\n   :members:\n\nSee ``is_eager`` above.\n```\n\nThe end.\n"
    )

    doc = load_document(src.encode(), name="options.md")

    assert all_text(doc) == (
        "Options\nHere's an example for a `--version` flag:\n\n```python\n@click.command()\n"
        "@click.option('--version', is_flag=True, is_eager=True)\ndef hello():\n    click.echo('Hello World!')\n```\n\n"
        "What it looks like:\n\nSee `is_eager` above.\n\nThe end."
    )


def test_myst_directive_fences_read_as_the_built_page_shows_them() -> None:
    # attrs' and Click's MyST docs: ```{code-block} python with a :caption: line was code in the
    # language "{code-block}" with the option inside; ```{note} boxes were code; a table of
    # contents was stored as its options.
    src = (
        "# Testing\n\n```{contents}\n:depth: 1\n:local: true\n```\n\n"
        "```{code-block} python\n:caption: test_hello.py\n\nfrom click.testing import CliRunner\n```\n\n"
        "```{versionadded} 8.0\nThe `catch_exceptions` flag.\n```\n\n"
        "```{doctest}\n>>> 1 + 1\n2\n```\n\n"
        "````{note}\nUse `result.output`.\n\n```python\nassert result.output == 'Hello Peter!\\n'\n```\n````\n\n"
        "```{admonition} Why not mock?\nIt tests **less**.\n```\n\n"
        "```{toctree}\n:maxdepth: 2\n\nquickstart\n```\n"
    )

    doc = load_document(src.encode(), name="testing.md")

    assert all_text(doc) == (
        "Testing\n```python\nfrom click.testing import CliRunner\n```\n\n"
        "Added in version 8.0: The `catch_exceptions` flag.\n\n"
        "```pycon\n>>> 1 + 1\n2\n```\n\n"
        "Note: Use `result.output`.\n\n```python\nassert result.output == 'Hello Peter!\\n'\n```\n\n"
        "Why not mock? It tests less."
    )


def test_myst_include_reads_the_file_in_place_with_its_headings_inside_the_root_only(tmp_path: Path) -> None:
    # attrs' docs/index.md: ```{include} ../README.md with :start-after: / :end-before: markers.
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "README.md").write_text(
        "# attrs\n\nBadges.\n\n<!-- teaser-begin -->\n*attrs* brings back the joy of writing classes.\n\n"
        "## Sponsors\n\nThank you.\n<!-- teaser-end -->\n\nNot shown.\n"
    )
    (docs / "example.py").write_text("import attrs\n\n@attrs.define\nclass C:\n    x: int\n")
    page = docs / "index.md"
    page.write_text(
        "# Welcome\n\n```{include} ../README.md\n:start-after: '<!-- teaser-begin -->'\n:end-before: '<!-- teaser-end'\n```\n\n"
        "## Example\n\n```{literalinclude} example.py\n:lines: 3-5\n```\n"
    )

    wide = load_document(page.read_bytes(), name="index.md", source_path=page, include_root=tmp_path)
    narrow = load_document(page.read_bytes(), name="index.md", source_path=page, include_root=docs)

    assert [(s.heading_path, s.text) for s in wide.sections] == [
        (("Welcome",), "attrs brings back the joy of writing classes."),
        (("Welcome", "Sponsors"), "Thank you."),
        (("Welcome", "Example"), "```python\n@attrs.define\nclass C:\n    x: int\n```"),
    ]
    assert "joy" not in all_text(narrow) and "@attrs.define" in all_text(narrow)
    assert narrow.missing_includes == ("../README.md",)


def test_content_tabs_keep_their_titles_and_their_prose_is_not_code() -> None:
    # MkDocs Material's '=== "pip"' tabs indent their content, which CommonMark reads as a code
    # block ("Pull the image:" was quoted as code); Docusaurus' <TabItem value="npm"> labels were
    # dropped with the tags, leaving five install commands with no word of which tool each is for.
    material = (
        '# Install\n\n=== "pip"\n\n    ```bash\n    pip install mkdocs-material\n    ```\n\n'
        '=== "docker"\n\n    Pull the image:\n\n    ```\n    docker pull squidfunk/mkdocs-material\n    ```\n\nDone.\n'
    )
    docusaurus = (
        '# Install\n\n<Tabs groupId="pm">\n<TabItem value="npm">\n\n```bash\nnpm install prettier\n```\n\n'
        '</TabItem>\n<TabItem value="yarn" label="Yarn (classic)">\n\n```bash\nyarn add prettier\n```\n\n</TabItem>\n</Tabs>\n'
    )

    assert all_text(load_document(material.encode(), name="install.md")) == (
        "Install\npip:\n\n```bash\npip install mkdocs-material\n```\n\n"
        "docker: Pull the image:\n\n```\ndocker pull squidfunk/mkdocs-material\n```\n\nDone."
    )
    assert all_text(load_document(docusaurus.encode(), name="install.mdx")) == (
        "Install\nnpm:\n\n```bash\nnpm install prettier\n```\n\nYarn (classic):\n\n```bash\nyarn add prettier\n```"
    )
