"""`docrag source add|list|show|sync|remove`: sources kept in sync (docs/sources.md)."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click

from bots.cli_common import friendly_errors, settings_of

if TYPE_CHECKING:
    from bots.wiring import Container
    from core.sources.registry import SourceView
    from core.sources.sync import SyncResult

SYNC_FAILED_EXIT = 3  # as a partial `docrag ingest`: the sync failed, the index is as it was


def _container(ctx: click.Context) -> Container:
    from bots.wiring import build_container

    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "container" not in root.obj:
        root.obj["container"] = build_container(settings_of(ctx))
    return root.obj["container"]


@click.group("source")
def source_group() -> None:
    """Sources kept in sync: folders, URLs and sitemaps, git repositories."""


@source_group.command("add")
@click.argument("kind", type=click.Choice(["folder", "url", "sitemap", "git", "confluence", "notion"]))
@click.argument("target")
@click.option("--collection", "-c", default=None, help="Collection to feed (default: DOCRAG_DEFAULT_COLLECTION).")
@click.option("--name", default=None, help="A name to refer to it by (default: from the target).")
@click.option("--every", "schedule", default=None, help="Sync on a schedule: an interval (30m, 6h, 1d) or a cron line.")
@click.option("--branch", default=None, help="git: the branch (default: the remote's default branch).")
@click.option("--include", multiple=True, help="git: a glob of paths to ingest (repeatable; default: docs/** and Markdown/rST).")
@click.option("--exclude", multiple=True, help="git: a glob of paths to leave out (repeatable).")
@click.option("--web-url", default=None, help="git: the repository's web page, for links (self-hosted servers).")
@click.option("--host", type=click.Choice(["github", "gitlab", "gitea"]), default=None, help="git: link pattern of --web-url.")
@click.option("--link-ref", type=click.Choice(["branch", "commit"]), default=None, help="git: links at the branch or the synced commit.")
@click.option("--base-url", default=None, help="folder: the public URL of the folder, for links.")
@click.option("--include-root", default=None, metavar="FOLDER",
              help="folder: a folder holding it that its pages may include files from (default: the folder itself).")
@click.option("--delay", "delay_s", type=float, default=None, help="url: seconds between two requests to the site.")
@click.option("--credential", "credentials", multiple=True, metavar="ROLE=ENV_VAR",
              help="git: token=ENV, username=ENV or ssh_key=ENV; confluence: token=ENV [email=ENV]; notion: token=ENV "
                   "(names of environment variables, not values).")
@click.option("--sync/--no-sync", "sync_now", default=True, show_default=True, help="Sync once now.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def source_add(ctx: click.Context, kind: str, target: str, collection: str | None, name: str | None,
               schedule: str | None, branch: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
               web_url: str | None, host: str | None, link_ref: str | None, base_url: str | None,
               include_root: str | None, delay_s: float | None, credentials: tuple[str, ...], sync_now: bool, as_json: bool) -> None:
    """Add a source and sync it. KIND folder, url, sitemap, git, confluence or notion; TARGET a path, a URL, a
    repository, a Confluence space's URL (https://site.atlassian.net/wiki/spaces/KEY), or for notion `workspace`
    or a page's URL or id (that page and the pages under it)."""
    from core.sources.registry import SourceSpec

    container = _container(ctx)
    wanted = {"branch": branch, "include": list(include), "exclude": list(exclude), "web_url": web_url,
              "host": host, "link_ref": link_ref, "base_url": base_url, "delay_s": delay_s,
              "include_root": include_root and os.path.abspath(os.path.expanduser(include_root))}
    allowed = {"git": {"branch", "include", "exclude", "web_url", "host", "link_ref"}, "folder": {"base_url", "include_root"}}
    options = {k: v for k, v in wanted.items() if v not in (None, [])}
    misplaced = set(options) - allowed.get(kind, {"delay_s"})
    if misplaced:
        raise click.UsageError(f"not an option of a {kind} source: {', '.join('--' + m.replace('_', '-') for m in sorted(misplaced))}")
    view = container.sources.add(SourceSpec(
        kind=kind, target=target, collection=collection or container.settings.default_collection, name=name,
        options=options, credentials=_credentials(credentials), schedule=schedule,
    ))
    result = container.syncer.sync(view.id) if sync_now else None
    if as_json:
        click.echo(json.dumps({"source": container.sources.get(view.id).as_dict(), "sync": _result_dict(result)}))
    else:
        click.echo(f"Added source {view.id} ({view.name}) to collection {view.collection}.")
        if result is not None:
            click.echo(render_result(result))
    if result is not None and result.status == "failed":
        ctx.exit(SYNC_FAILED_EXIT)


def _credentials(pairs: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        role, sep, variable = pair.partition("=")
        if not sep or not role or not variable:
            raise click.UsageError(f"--credential {pair!r}: write ROLE=ENV_VAR, e.g. token=DOCS_REPO_TOKEN")
        found[role.strip()] = variable.strip()
    return found


@source_group.command("list")
@click.option("--collection", "-c", default=None, help="Only this collection's sources.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def source_list(ctx: click.Context, collection: str | None, as_json: bool) -> None:
    """List sources with their state."""
    views = _container(ctx).sources.list([collection] if collection else None)
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in views]))
        return
    if not views:
        click.echo("No sources yet: docrag source add folder|url|git TARGET")
        return
    click.echo(f"{'id':>4}  {'collection':<14} {'kind':<6} {'status':<8} {'docs':>6}  {'last sync':<20} name")
    for v in views:
        when = v.last_sync_at.strftime("%Y-%m-%d %H:%M:%S") if v.last_sync_at else "never"
        click.echo(f"{v.id:>4}  {v.collection[:14]:<14} {v.kind:<6} {v.status:<8} {v.documents:>6}  {when:<20} {v.name}")


@source_group.command("show")
@click.argument("source_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def source_show(ctx: click.Context, source_id: int, as_json: bool) -> None:
    """Show one source: its target, options, schedule, last sync and last error."""
    view = _container(ctx).sources.get(source_id)
    if as_json:
        click.echo(json.dumps(view.as_dict()))
        return
    click.echo(render_view(view))


def render_view(v: SourceView) -> str:
    lines = [
        f"source {v.id}: {v.name} ({v.kind}) in collection {v.collection}",
        f"  target        {v.target}",
        f"  options       {json.dumps(v.options) if v.options else '-'}",
        f"  credentials   {', '.join(f'{r} from ${n}' for r, n in v.credentials.items()) or '-'}",
        f"  schedule      {v.schedule or 'by hand'}" + (f" (next {v.next_sync_at:%Y-%m-%d %H:%M:%S %Z})" if v.next_sync_at else ""),
        f"  status        {v.status}" + (f", {v.consecutive_failures} failed sync(s) in a row" if v.consecutive_failures else ""),
        f"  documents     {v.documents}",
    ]
    if v.last_sync_at:
        lines.append(f"  last sync     {v.last_sync_at:%Y-%m-%d %H:%M:%S %Z} in {v.last_sync_seconds or 0:.2f}s: {_counts(v.last_counts)}")
    if v.last_error:
        lines.append(f"  last error    {v.last_error}" + (f" ({v.last_error_at:%Y-%m-%d %H:%M:%S %Z})" if v.last_error_at else ""))
    return "\n".join(lines)


@source_group.command("sync")
@click.argument("source_id", type=int)
@click.option("--queue", is_flag=True, help="Hand the sync to a worker instead of running it here.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def source_sync(ctx: click.Context, source_id: int, queue: bool, as_json: bool) -> None:
    """Sync a source now: only what changed is read again."""
    container = _container(ctx)
    if queue:
        from bots.worker import open_job_queue
        from core.sources.jobs import defer_sync

        jobs = open_job_queue(container)
        try:
            queued = defer_sync(jobs, container.sources.get(source_id).id)
        finally:
            jobs.close()
        click.echo(f"Sync of source {source_id} {'queued' if queued else 'already queued'}.")
        return
    result = container.syncer.sync(source_id)
    click.echo(json.dumps(_result_dict(result)) if as_json else render_result(result))
    if result.status == "failed":
        ctx.exit(SYNC_FAILED_EXIT)


@source_group.command("remove")
@click.argument("source_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@friendly_errors
def source_remove(ctx: click.Context, source_id: int, yes: bool) -> None:
    """Remove a source and exactly its documents."""
    container = _container(ctx)
    view = container.sources.get(source_id)
    if not yes:
        click.confirm(f"Remove source {view.id} ({view.name}) and its {view.documents} documents?", abort=True)
    container.sources.remove(source_id)
    click.echo(f"Removed source {view.id} ({view.name}) and its {view.documents} documents.")


def render_result(result: SyncResult) -> str:
    if result.status == "busy":
        return f"Source {result.source_id} is being synced by another process; try again when it ends."
    if result.status == "failed":
        return f"Sync of source {result.source_id} failed: {result.error}\nThe index is as it was before this sync."
    text = f"Synced source {result.source_id} in {result.seconds:.2f}s: {_counts(result.counts)}."
    return text + (f"\n  {result.error}" if result.error else "")


def _counts(counts: dict[str, Any]) -> str:
    order = ("read", "added", "updated", "unchanged", "renamed", "removed", "pending_removal", "failed", "commit")
    shown = [f"{counts[k]} {k.replace('_', ' ')}" for k in order if k in counts and k != "commit"]
    if "commit" in counts:
        shown.append(f"at commit {counts['commit']}")
    return ", ".join(shown) or "nothing to do"


def _result_dict(result: SyncResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"source_id": result.source_id, "status": result.status, "counts": result.counts,
            "error": result.error, "seconds": round(result.seconds, 3)}
