"""Git repository sources: the files of a branch, and only what changed since the last synced commit.

Through the git CLI, not a Python library (dulwich is the kept one): the git the machine already
has speaks every transport a team uses (https with a token, ssh with its keys and known_hosts,
the git protocol, local paths) the way their own git does, its rename detection (``diff -M``) is
the reference implementation, and a shallow fetch plus one ``diff-tree`` of two commits costs
milliseconds on a 2,000-file repository where walking trees in pure Python does not. Everything
goes through a handful of plumbing commands whose output formats are stable (``-z``).

Each source has a bare mirror under the mirrors folder (``source-<id>.git``), fetched shallow:
``git diff-tree`` needs the two commits' trees, not the history between them, and the previous
commit's objects stay in the mirror (automatic gc is off there). A sync:

* fetches the branch; the same commit as last time (and nothing to retry) ends the sync there;
* lists the files changed since the last synced commit (``diff-tree -r -M --name-status``): added
  and modified files are read, deleted ones removed, and a rename keeps its document (its source
  is moved to the new path, then re-read for its new link);
* with no usable previous commit (first sync, lost mirror, branch or globs changed) lists every
  file of the commit; documents of paths no longer there are removed (a commit is authoritative).

Which files: ``include``/``exclude`` globs over repository paths (``**`` crosses folders); by default
the ``docs/`` folder and every Markdown or reStructuredText file, hidden folders left out, and
only formats DocRag reads.

Links point at the file on its web host, at the branch (default) or the synced commit
(``link_ref: commit``): GitHub ``/blob/<ref>/<path>``, GitLab ``/-/blob/<ref>/<path>``, Gitea and
Forgejo ``/src/branch|commit/<ref>/<path>``, recognised from the host name or set with ``host`` and
``web_url`` for a self-hosted server. Chunk anchors are added by the pipeline. A local repository
without ``web_url`` links relative paths, which the playground serves.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import quote, urlsplit

from core.errors import DocumentError
from core.sources.registry import redacted
from core.sources.sync import SyncContext, SyncPlan

if TYPE_CHECKING:
    from core.ingest.sources import SourceItem
    from core.storage.models import Source

DEFAULT_INCLUDE = ("docs/**", "**/*.md", "**/*.markdown", "**/*.mdx", "**/*.rst")
FETCH_TIMEOUT_S = 900
_HOST_KINDS = (("github", "github"), ("gitlab", "gitlab"), ("gitea", "gitea"), ("codeberg", "gitea"), ("forgejo", "gitea"))


def plan_git(source: Source, ctx: SyncContext) -> SyncPlan:
    options, previous = source.options or {}, source.state or {}
    mirror = Mirror(ctx.options.mirrors_dir / f"source-{source.id}.git", source.target, git_environment(source, ctx))
    branch = options.get("branch") or previous.get("branch") or mirror.default_branch()
    head = mirror.fetch(branch)
    include, exclude = options.get("include") or DEFAULT_INCLUDE, options.get("exclude") or ()
    root = f"git+{redacted(source.target)}@{branch}"
    state = {"commit": head, "branch": branch, "filter": PathFilter.fingerprint_of(include, exclude)}
    old = previous.get("commit")
    retry = [uri[len(root) + 1 :] for uri in previous.get("retry") or [] if uri.startswith(root + ":")]
    reader = BlobReader(mirror, head)
    plan = SyncPlan(root=root, items=[], complete=False, state=state, counts={"commit": head[:12]}, close=reader.close)
    incremental = old and previous.get("branch") == branch and previous.get("filter") == state["filter"]
    if incremental and old == head and not retry:  # the common case: nothing new, nothing more to load
        plan.counts["changed_files"] = 0
        return plan

    from core.ingest.loaders import SUPPORTED_SUFFIXES
    from core.ingest.sources import SourceItem

    # The commit's files on disk, for the pages that include other files; removed when the sync ends.
    tree = Path(tempfile.mkdtemp(prefix=f"docrag-source-{source.id}-")).resolve()

    def close() -> None:
        reader.close()
        shutil.rmtree(tree, ignore_errors=True)
    plan.close = close
    try:
        mirror.checkout(head, tree)
    except Exception:
        close()
        raise
    select = PathFilter(include, exclude, SUPPORTED_SUFFIXES)
    links = WebLinks.for_remote(source.target, options, ref=head if options.get("link_ref") == "commit" else branch)

    def item(path: str) -> SourceItem:
        return SourceItem(uri=f"{root}:{path}", name=PurePosixPath(path).name, link=links.file(path),
                          fetch=lambda: (reader.read(path), None), root=root, folder=tree, local_file=tree / path)
    if incremental and mirror.has_commit(old):
        to_read: list[str] = []
        changes = mirror.changes(old, head)
        for status, path, new_path in changes:
            if status == "D" and select(path):
                plan.deleted.append(f"{root}:{path}")
            elif status == "R":
                if select(path) and select(new_path):
                    plan.renamed.append((f"{root}:{path}", f"{root}:{new_path}"))
                elif select(path):
                    plan.deleted.append(f"{root}:{path}")
                if select(new_path):
                    to_read.append(new_path)
            elif status != "D" and select(path):
                to_read.append(path)
        changed = {tree / new_path for _, _, new_path in changes}
        to_read += [path for path in _includers_of(changed, mirror.files(head), select, tree) if path not in to_read]
        plan.counts["changed_files"] = len(to_read) + len(plan.deleted)
    else:
        to_read = [path for path in mirror.files(head) if select(path)]
        listed = {f"{root}:{path}" for path in to_read}
        plan.deleted = sorted(uri for uri in ctx.stored_uris if uri not in listed)
    for path in retry:
        if path not in to_read and mirror.exists(head, path) and select(path):
            to_read.append(path)
    plan.items = [item(path) for path in to_read]
    return plan


def _includers_of(changed: set[Path], paths: Sequence[str], select: PathFilter, tree: Path) -> list[str]:
    """The selected pages that include one of the ``changed`` files: a page whose example file
    changed is re-read, though the page itself did not change."""
    from core.ingest.loaders import included_files

    if not changed:
        return []
    found = []
    for path in paths:
        if not select(path):
            continue
        page = tree / path
        try:
            data = page.read_bytes()
            if any(f in changed for f in included_files(data, name=page.name, source_path=page, include_root=tree)):
                found.append(path)
        except (OSError, ValueError):  # the ingest reads it again, and reports what is wrong with it
            continue
    return found


def git_environment(source: Source, ctx: SyncContext) -> dict[str, str]:
    """What git needs beyond the process's environment: no prompts, and the credentials, passed in
    the environment (GIT_CONFIG_*), never on a command line another user could read."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    config: list[tuple[str, str]] = []
    credentials = source.credentials or {}

    def secret(role: str) -> str | None:
        variable = credentials.get(role)
        if not variable:
            return None
        value = ctx.secret(variable)
        if not value:
            raise DocumentError(f"credential {role}: environment variable {variable} is not set")
        return value

    token = secret("token")
    if token:
        user = secret("username") or "x-access-token"
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    key_file = secret("ssh_key")
    if key_file:
        env["GIT_SSH_COMMAND"] = f"ssh -i '{key_file}' -o IdentitiesOnly=yes -o BatchMode=yes"
    if (source.options or {}).get("added_by") == "api":  # an API key holder's repository: public https only
        from core.ingest.public_urls import check_public_url

        if urlsplit(source.target).scheme != "https":
            raise DocumentError("repositories added through the API must be https URLs")
        check_public_url(source.target)
        env["GIT_ALLOW_PROTOCOL"] = "https"
        config.append(("http.followRedirects", "false"))
    for n, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    env["GIT_CONFIG_COUNT"] = str(len(config))
    return env


class Mirror:
    """A bare, shallow mirror of one branch of a remote repository."""

    def __init__(self, path: Path, remote: str, env: dict[str, str]) -> None:
        self.path = path
        self.remote = remote if "://" in remote or not os.path.isdir(remote) else Path(remote).resolve().as_uri()
        self.env = {**os.environ, **env}  # git needs PATH and HOME (ssh keys, known_hosts)

    def git(self, *args: str, timeout: float = 120, input: bytes | None = None) -> bytes:
        try:
            done = subprocess.run(["git", *args], capture_output=True, env=self.env, timeout=timeout, input=input,
                                  cwd=self.path if self.path.is_dir() else None)
        except subprocess.TimeoutExpired:
            raise DocumentError(f"git {args[0]} of {redacted(self.remote)} timed out after {timeout:g} s") from None
        except OSError as exc:
            raise DocumentError(f"cannot run git: {exc}") from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            fatal = [line for line in message if line.startswith(("fatal:", "error:"))]
            detail = (fatal or message or [f"exit status {done.returncode}"])[0]
            raise DocumentError(f"git {args[0]} failed for {redacted(self.remote)}: {redacted_text(detail)}")
        return done.stdout

    def ensure(self) -> None:
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "init", "--bare", "-q", str(self.path)], check=True, env=self.env)
            self.git("config", "gc.auto", "0")  # keep the last synced commit's objects

    def default_branch(self) -> str:
        out = self.git("ls-remote", "--symref", self.remote, "HEAD", timeout=FETCH_TIMEOUT_S).decode()
        match = re.search(r"^ref: refs/heads/(\S+)\s+HEAD", out, re.M)
        if not match:
            raise DocumentError(f"cannot tell the default branch of {redacted(self.remote)}: set the branch option")
        return match.group(1)

    def fetch(self, branch: str) -> str:
        """Fetch the branch's newest commit (shallow); its id."""
        self.ensure()
        self.git("fetch", "--quiet", "--no-tags", "--depth=1", self.remote,
                 f"+refs/heads/{branch}:refs/heads/{branch}", timeout=FETCH_TIMEOUT_S)
        return self.git("rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}").decode().strip()

    def has_commit(self, commit: str) -> bool:
        try:
            self.git("cat-file", "-e", f"{commit}^{{tree}}")
            return True
        except DocumentError:
            return False

    def exists(self, commit: str, path: str) -> bool:
        try:
            self.git("cat-file", "-e", f"{commit}:{path}")
            return True
        except DocumentError:
            return False

    def checkout(self, commit: str, into: Path) -> None:
        """The commit's files written under ``into`` (``git archive``, streamed), so the pages that
        include other files (``.. include::``, snippets, ``literalinclude``) find them."""
        process = subprocess.Popen(["git", "-C", str(self.path), "archive", "--format=tar", commit],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        assert process.stdout is not None and process.stderr is not None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                archive.extractall(into, filter="data")  # nothing outside ``into``, no devices or odd modes
        except tarfile.TarError as exc:
            raise DocumentError(f"git archive of {commit[:12]} could not be read: {exc}") from None
        finally:
            process.stdout.close()
            error = process.stderr.read().decode("utf-8", "replace").strip()
            process.wait(timeout=FETCH_TIMEOUT_S)
        if process.returncode != 0:
            raise DocumentError(f"git archive failed for {redacted(self.remote)}: {redacted_text(error)}")

    def files(self, commit: str) -> list[str]:
        out = self.git("ls-tree", "-r", "-z", "--name-only", commit)
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def changes(self, old: str, new: str) -> list[tuple[str, str, str]]:
        """(status letter, path, new path) of every file changed between two commits, renames detected."""
        out = self.git("diff-tree", "-r", "-z", "-M", "--name-status", "--no-commit-id", old, new)
        fields = [f.decode("utf-8", "surrogateescape") for f in out.split(b"\0")]
        changes: list[tuple[str, str, str]] = []
        i = 0
        while i < len(fields) and fields[i]:
            status = fields[i][0]
            if status in "RC":
                changes.append((status if status == "R" else "A", fields[i + 1], fields[i + 2]))
                i += 3
            else:
                changes.append((status, fields[i + 1], fields[i + 1]))
                i += 2
        return changes


class BlobReader:
    """File contents at one commit through one ``git cat-file --batch`` process."""

    def __init__(self, mirror: Mirror, commit: str) -> None:
        self.mirror, self.commit = mirror, commit
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def read(self, path: str) -> bytes:
        with self._lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(f"{self.commit}:{path}\n".encode("utf-8", "surrogateescape"))
            process.stdin.flush()
            header = process.stdout.readline().decode().split()
            if len(header) != 3 or header[1] != "blob":
                raise DocumentError(f"{path} is not a file at commit {self.commit[:12]}")
            size = int(header[2])
            data = process.stdout.read(size)
            process.stdout.read(1)  # the newline after the contents
        from core.ingest.sources import MAX_DOCUMENT_BYTES

        if size > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"file too large: {path} is {size // (1024 * 1024)} MiB")
        return data

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            self._process = subprocess.Popen(
                ["git", "-C", str(self.mirror.path), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.mirror.env,
            )
        return self._process

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)
            self._process = None


class PathFilter:
    """include/exclude globs over repository paths: ``*`` within a folder, ``**`` across folders."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str], suffixes: frozenset[str]) -> None:
        self.include = [_glob_regex(g) for g in include]
        self.exclude = [_glob_regex(g) for g in exclude]
        self.suffixes = suffixes
        self.fingerprint = self.fingerprint_of(include, exclude)

    @staticmethod
    def fingerprint_of(include: Sequence[str], exclude: Sequence[str]) -> str:
        return "|".join(include) + "!" + "|".join(exclude)

    def __call__(self, path: str) -> bool:
        if any(part.startswith(".") for part in path.split("/")):
            return False  # .github/, .venv/... as in folder ingests
        if PurePosixPath(path).suffix.lower() not in self.suffixes:
            return False
        return any(r.match(path) for r in self.include) and not any(r.match(path) for r in self.exclude)


def _glob_regex(glob: str) -> re.Pattern[str]:
    glob = glob.strip().lstrip("/")
    if glob.endswith("/"):
        glob += "**"
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class WebLinks:
    """The web page of a file in a repository at a ref, on GitHub, GitLab or Gitea/Forgejo."""

    def __init__(self, base: str | None, host: str | None, ref: str, *, is_commit: bool) -> None:
        self.base, self.host, self.ref, self.is_commit = base, host, ref, is_commit

    @classmethod
    def for_remote(cls, remote: str, options: dict[str, Any], *, ref: str) -> WebLinks:
        base = options.get("web_url") or web_base(remote)
        host = options.get("host") or (host_kind(base) if base else None) or ("github" if options.get("web_url") else None)
        return cls(base.rstrip("/") if base and host else None, host, ref, is_commit=options.get("link_ref") == "commit")

    def file(self, path: str) -> str:
        quoted = quote(path, safe="/")
        if not self.base:
            return quoted  # relative: the playground serves it at /docs/<collection>/<path>
        ref = quote(self.ref, safe="/")
        if self.host == "gitlab":
            return f"{self.base}/-/blob/{ref}/{quoted}"
        if self.host == "gitea":
            return f"{self.base}/src/{'commit' if self.is_commit else 'branch'}/{ref}/{quoted}"
        return f"{self.base}/blob/{ref}/{quoted}"


def web_base(remote: str) -> str | None:
    """``https://host/owner/repo`` for https, ssh and scp-like remotes; None for local ones."""
    scp = re.match(r"^[\w.-]+@([\w.-]+):(?!//)(.+)$", remote)
    if scp:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(remote)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    path = path.strip("/").removesuffix(".git")
    return f"https://{host}/{path}" if path else None


def host_kind(base: str) -> str | None:
    hostname = (urlsplit(base).hostname or "").lower()
    return next((kind for marker, kind in _HOST_KINDS if marker in hostname), None)


def redacted_text(text: str) -> str:
    """A git error line without credentials in any URL it quotes."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)
