"""Real third-party documentation sets for benchmarks, downloaded once into a cache.

    python bench/corpus_cache.py [NAME ...]      # download (or list) corpora; prints their folders

Each corpus is pinned to one release, so figures stay comparable between runs:

* ``sdist``: a PyPI source distribution (``pip download --no-binary``), its docs folder;
* ``deb``: a Debian package (``apt-get download``, unpacked with ``dpkg-deb -x``): built HTML, PDF;
* ``git``: a public repository snapshot brought by the session search tool's ``fetch``
  (``/work/.mirror/owner+name``), exported with ``git archive``; only where that mirror exists.

The cache is ``$DOCRAG_CORPUS_CACHE`` or ``~/.cache/docrag-corpora``; nothing of a corpus is
committed. Flask's own documentation is reserved for independent checks: never add it here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MIRRORS = Path("/work/.mirror")


@dataclass(frozen=True)
class Corpus:
    name: str
    kind: str  # "sdist" | "deb" | "git"
    package: str  # PyPI name, Debian package, or "owner/name"
    version: str  # release, Debian version, or "" for a git snapshot's newest commit
    docs: str  # folder inside the unpacked source that holds the documentation
    markup: str  # what a reader should expect: "rst", "markdown", "mdx", "html", "pdf", "mixed"
    # Paths beside the docs folder that its pages include (FastAPI's docs_src examples): fetched
    # too, and the source's top folder is then the ingest's include root (docrag ingest --include-root).
    includes: tuple[str, ...] = ()


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus("click", "sdist", "click", "8.5.1", "docs", "markdown"),
        Corpus("attrs", "sdist", "attrs", "26.1.0", "docs", "mixed"),
        Corpus("pytest", "sdist", "pytest", "9.2.0", "doc/en", "rst"),
        Corpus("alembic", "sdist", "alembic", "1.20.1", "docs/build", "rst"),
        Corpus("celery", "sdist", "celery", "5.7.0", "docs", "rst"),
        Corpus("marshmallow", "sdist", "marshmallow", "4.4.0", "docs", "rst"),
        Corpus("sqlite", "deb", "sqlite3-doc", "3.40.1-2+deb12u2", "usr/share/doc/sqlite3", "html"),
        Corpus("postgresql", "deb", "postgresql-doc-15", "15.20-0+deb12u1", "usr/share/doc/postgresql-doc-15/html", "html"),
        Corpus("debian-reference", "deb", "debian-reference-en", "2.100", "usr/share/debian-reference", "html"),
        Corpus("r-manuals", "deb", "r-doc-pdf", "4.2.2.20221110-2", "usr/share/R/doc/manual", "pdf"),
        Corpus("fastapi", "git", "fastapi/fastapi", "c3f316b7e814667e8ee81e03a7330d00ee61e45c", "docs/en/docs", "markdown", ("docs_src",)),
        Corpus("mkdocs", "git", "mkdocs/mkdocs", "2862536793b3c67d9d83c33e0dd6d50a791928f8", "docs", "markdown",
               ("CONTRIBUTING.md",)),
        Corpus("prettier", "git", "prettier/prettier", "4f84a934201322ca87750e2b9b25baf296da6560", "docs", "markdown"),
        # Astro Starlight: .mdx pages with Tabs components, in 17 languages.
        Corpus("starlight", "git", "withastro/starlight", "3999be7cc18b41095d61e3b63d68ff3e6c6c050b",
               "docs/src/content/docs", "mdx"),
    )
}


def cache_root() -> Path:
    return Path(os.environ.get("DOCRAG_CORPUS_CACHE", Path.home() / ".cache" / "docrag-corpora"))


class CorpusUnavailable(Exception):
    """The corpus cannot be had on this machine (no registry, no mirror); the message says why."""


def ensure_corpus(name: str) -> Path:
    """The corpus's documentation folder, downloading and unpacking it the first time."""
    corpus = CORPORA[name]
    target = cache_root() / f"{corpus.name}-{corpus.version or 'snapshot'}"
    docs = target / corpus.docs
    if docs.is_dir() and all((target / path).exists() for path in corpus.includes):
        return docs
    with tempfile.TemporaryDirectory(prefix=f"corpus-{name}-") as scratch:
        unpacked = Path(scratch) / "unpacked"
        {"sdist": _unpack_sdist, "deb": _unpack_deb, "git": _export_git}[corpus.kind](corpus, Path(scratch), unpacked)
        if not (unpacked / corpus.docs).is_dir() or not all((unpacked / p).exists() for p in corpus.includes):
            raise CorpusUnavailable(f"{name}: no {corpus.docs}/ in the downloaded {corpus.kind}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(unpacked), target)
    return docs


def include_root(name: str) -> Path | None:
    """The folder a corpus's pages include files from, when it is wider than its docs folder."""
    corpus = CORPORA[name]
    return cache_root() / f"{corpus.name}-{corpus.version or 'snapshot'}" if corpus.includes else None


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise CorpusUnavailable(f"{what} failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")


def _unpack_sdist(corpus: Corpus, scratch: Path, unpacked: Path) -> None:
    spec = f"{corpus.package}=={corpus.version}"
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", spec, "-d", str(scratch)],
         f"pip download {spec}")
    archive = next(p for p in scratch.iterdir() if p.is_file())
    extracted = scratch / "extracted"
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            z.extractall(extracted)
    else:
        with tarfile.open(archive) as t:
            t.extractall(extracted, filter="data")
    (top,) = list(extracted.iterdir())  # an sdist holds one top folder, name-version/
    top.rename(unpacked)


def _unpack_deb(corpus: Corpus, scratch: Path, unpacked: Path) -> None:
    spec = f"{corpus.package}={corpus.version}" if corpus.version else corpus.package
    done = subprocess.run(["apt-get", "download", spec], cwd=scratch, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise CorpusUnavailable(f"apt-get download {spec} failed (run apt-get update first?): {done.stderr.strip()[-200:]}")
    (deb,) = list(scratch.glob("*.deb"))
    _run(["dpkg-deb", "-x", str(deb), str(unpacked)], f"dpkg-deb -x {deb.name}")


def _export_git(corpus: Corpus, scratch: Path, unpacked: Path) -> None:
    mirror = next(iter(sorted(MIRRORS.glob(f"{corpus.package.replace('/', '+')}*"))), None)
    if mirror is None:
        raise CorpusUnavailable(f"{corpus.name}: no mirror of {corpus.package} (fetch github:{corpus.package} first)")
    git_dir = next((p.parent for p in mirror.rglob("HEAD") if (p.parent / "objects").is_dir()), mirror)
    archive = scratch / "export.tar"
    _run(["git", f"--git-dir={git_dir}", "archive", "-o", str(archive), corpus.version or "HEAD", corpus.docs, *corpus.includes],
         f"git archive {corpus.package}")
    unpacked.mkdir()
    with tarfile.open(archive) as t:
        t.extractall(unpacked, filter="data")


def main(argv: list[str]) -> int:
    names = argv or list(CORPORA)
    status = 0
    for name in names:
        try:
            print(f"{name}\t{ensure_corpus(name)}")
        except (CorpusUnavailable, KeyError) as exc:
            print(f"{name}\tunavailable: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
