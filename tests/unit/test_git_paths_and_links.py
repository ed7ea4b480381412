"""Which repository paths a git source ingests, and where their citations link (GitHub, GitLab, Gitea)."""
import pytest

from core.ingest.loaders import SUPPORTED_SUFFIXES
from core.sources.git import DEFAULT_INCLUDE, PathFilter, WebLinks, web_base
from core.sources.registry import redacted


def test_default_globs_take_the_docs_folder_and_markdown_or_rst_anywhere():
    select = PathFilter(DEFAULT_INCLUDE, (), SUPPORTED_SUFFIXES)
    assert [p for p in ("docs/a/b.html", "docs/x.txt", "README.md", "pkg/notes.rst", "src/app.py",
                        ".github/issue.md", "docs/.drafts/x.md", "guide/page.html") if select(p)] == [
        "docs/a/b.html", "docs/x.txt", "README.md", "pkg/notes.rst"]


def test_include_and_exclude_globs():
    select = PathFilter(["handbook/**/*.md", "*.rst"], ["handbook/archive/"], SUPPORTED_SUFFIXES)
    assert select("handbook/a.md") and select("handbook/x/y/b.md") and select("index.rst")
    assert not select("handbook/archive/old.md") and not select("sub/index.rst") and not select("docs/a.md")


@pytest.mark.parametrize(("remote", "options", "link"), [
    ("https://github.com/acme/handbook.git", {}, "https://github.com/acme/handbook/blob/main/docs/a%20b.md"),
    ("git@github.com:acme/handbook.git", {}, "https://github.com/acme/handbook/blob/main/docs/a%20b.md"),
    ("https://gitlab.com/acme/team/handbook", {}, "https://gitlab.com/acme/team/handbook/-/blob/main/docs/a%20b.md"),
    ("ssh://git@codeberg.org/acme/handbook.git", {}, "https://codeberg.org/acme/handbook/src/branch/main/docs/a%20b.md"),
    ("https://git.internal/acme/handbook.git", {"web_url": "https://git.internal/acme/handbook", "host": "gitea"},
     "https://git.internal/acme/handbook/src/branch/main/docs/a%20b.md"),
    ("/srv/repos/handbook.git", {}, "docs/a%20b.md"),
])
def test_links_follow_each_hosts_pattern(remote, options, link):
    assert WebLinks.for_remote(remote, options, ref="main").file("docs/a b.md") == link


def test_links_at_the_synced_commit():
    links = WebLinks.for_remote("https://gitea.example.com/acme/h.git", {"link_ref": "commit"}, ref="0123abc")
    assert links.file("docs/a.md") == "https://gitea.example.com/acme/h/src/commit/0123abc/docs/a.md"


def test_passwords_in_remotes_are_never_shown():
    assert redacted("https://user:hunter22@github.com/acme/h.git") == "https://github.com/acme/h.git"
    assert redacted("https://ghp_token@github.com/acme/h.git") == "https://github.com/acme/h.git"
    assert redacted("ssh://git@host/acme/h.git") == "ssh://git@host/acme/h.git"
    assert web_base("file:///srv/h.git") is None
