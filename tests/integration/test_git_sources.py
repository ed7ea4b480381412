"""Git repository sources against a git server on 127.0.0.1 (git daemon) and a local bare repository:
each sync reads only the files the new commits changed, a rename keeps its document, and citations
link to the file on its web host."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.sources.registry import SourceSpec
from core.storage.models import Document, DocumentChunk

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}


class Repo:
    """A working copy that pushes to a bare repository (what the server serves)."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "served" / "handbook.git"
        self.work = root / "work"
        self.git("init", "--bare", "-q", "-b", "main", str(self.bare), cwd=root)
        self.git("init", "-q", "-b", "main", str(self.work), cwd=root)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd or self.work, env=GIT_ENV, check=True,
                              capture_output=True, text=True).stdout

    def commit(self, files: dict[str, str | None], *, moves: dict[str, str] | None = None) -> str:
        for old, new in (moves or {}).items():
            (self.work / new).parent.mkdir(parents=True, exist_ok=True)
            self.git("mv", old, new)
        for path, text in files.items():
            target = self.work / path
            if text is None:
                self.git("rm", "-q", path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", path)
        self.git("commit", "-q", "-m", "change")
        self.git("push", "-q", str(self.bare), "main")
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path)
    repo.commit({
        "docs/install.md": "# Install\n\n## Requirements\n\nPython 3.11 and a database.\n",
        "docs/upgrade.md": "# Upgrade\n\nRun the migrations before starting the new release.\n",
        "docs/old.md": "# Old notes\n\nThese notes are obsolete.\n",
        "README.md": "# Handbook\n\nThe team handbook.\n",
        "src/app.py": "print('not documentation')\n",
        ".github/issue.md": "# Issue template\n\nNot documentation either.\n",
    })
    return repo


@pytest.fixture
def git_daemon(repo: Repo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = repo.bare.parent
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={served}", str(served)],
        env=GIT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"git://127.0.0.1:{port}/handbook.git"
    daemon.terminate()
    daemon.wait(timeout=10)


def documents(container) -> dict[str, int]:
    with container.database.sessions() as session:
        rows = session.execute(sa.select(Document.source_uri, Document.id)).all()
    return {uri.rsplit(":", 1)[-1]: doc_id for uri, doc_id in rows}


def test_each_sync_reads_only_what_the_new_commits_changed_and_a_rename_keeps_its_document(container, repo, git_daemon):
    source = container.sources.add(SourceSpec(kind="git", target=git_daemon, collection="handbook"))

    first = container.syncer.sync(source.id)
    assert first.status == "ok", first.error
    assert first.counts["added"] == 4  # docs/ and the README; not code, not hidden folders
    before = documents(container)
    assert set(before) == {"docs/install.md", "docs/upgrade.md", "docs/old.md", "README.md"}

    repo.commit(
        {"docs/install.md": "# Install\n\n## Requirements\n\nPython 3.12 and PostgreSQL 18.\n",
         "docs/old.md": None, "docs/faq.md": "# FAQ\n\nAsk in the channel.\n", "src/app.py": "print(2)\n"},
        moves={"docs/upgrade.md": "docs/guide/upgrading.md"},
    )
    second = container.syncer.sync(source.id)

    assert second.status == "ok", second.error
    counts = second.counts
    assert (counts["read"], counts["added"], counts["updated"], counts["renamed"], counts["removed"]) == (3, 1, 2, 1, 1)
    after = documents(container)
    assert set(after) == {"docs/install.md", "docs/guide/upgrading.md", "docs/faq.md", "README.md"}
    assert after["docs/guide/upgrading.md"] == before["docs/upgrade.md"]  # the same document, moved
    assert after["README.md"] == before["README.md"]

    third = container.syncer.sync(source.id)  # no new commit
    assert (third.counts["read"], third.counts["changed_files"]) == (0, 0)
    shown = container.sources.get(source.id)
    assert shown.status == "ok" and shown.documents == 4 and shown.last_counts["commit"] == counts["commit"]


def test_citations_link_to_the_file_on_its_web_host_with_the_heading_anchor(container, repo, git_daemon):
    source = container.sources.add(SourceSpec(
        kind="git", target=git_daemon, collection="handbook", options={"web_url": "https://github.com/example/handbook"},
    ))
    assert container.syncer.sync(source.id).status == "ok"

    with container.database.sessions() as session:
        links = set(session.scalars(sa.select(DocumentChunk.link)))
    assert "https://github.com/example/handbook/blob/main/docs/install.md#requirements" in links

    passages = container.engine.search("python database requirements", collection="handbook", limit=3)
    assert passages[0].source.startswith("https://github.com/example/handbook/blob/main/docs/install.md")


def test_a_local_bare_repository_with_include_and_exclude_globs(container, repo):
    source = container.sources.add(SourceSpec(
        kind="git", target=str(repo.bare), collection="handbook",
        options={"branch": "main", "include": ["docs/**"], "exclude": ["docs/old.md"], "link_ref": "commit"},
    ))

    result = container.syncer.sync(source.id)

    assert result.status == "ok", result.error
    assert set(documents(container)) == {"docs/install.md", "docs/upgrade.md"}
    with container.database.sessions() as session:
        links = set(session.scalars(sa.select(Document.link)))
    assert links == {"docs/install.md", "docs/upgrade.md"}  # no web host: relative, served by the playground


def test_a_repository_that_cannot_be_reached_fails_the_sync_and_keeps_the_documents(container, repo, tmp_path):
    source = container.sources.add(SourceSpec(kind="git", target=str(repo.bare), collection="handbook"))
    assert container.syncer.sync(source.id).status == "ok"
    moved = tmp_path / "moved.git"
    repo.bare.rename(moved)

    result = container.syncer.sync(source.id)

    assert result.status == "failed" and "git fetch failed" in result.error and "not appear to be a git repository" in result.error
    assert len(documents(container)) == 4
    assert container.sources.get(source.id).consecutive_failures == 1


def test_a_page_reads_the_files_it_includes_and_is_read_again_when_only_they_change(container, repo):
    repo.commit({
        "docs/example.rst": "Example\n=======\n\nThe worker is started like this:\n\n.. literalinclude:: ../examples/worker.py\n",
        "examples/worker.py": "start_worker(queue='emails')\n",
    })
    source = container.sources.add(SourceSpec(kind="git", target=str(repo.bare), collection="handbook"))
    assert container.syncer.sync(source.id).status == "ok"

    def example_text() -> str:
        with container.database.sessions() as session:
            return " ".join(session.scalars(
                sa.select(DocumentChunk.text).join(Document).where(Document.source_uri.endswith(":docs/example.rst"))
            ))
    assert "start_worker(queue='emails')" in example_text()

    repo.commit({"examples/worker.py": "start_worker(queue='invoices')\n"})  # the page itself is unchanged
    result = container.syncer.sync(source.id)

    assert result.status == "ok", result.error
    assert result.counts["updated"] == 1
    assert "start_worker(queue='invoices')" in example_text() and "emails" not in example_text()
