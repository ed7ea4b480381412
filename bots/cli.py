"""The `docrag` command for operators and for trying DocRag in a terminal.

Start-up matters here (`docrag --help` should feel instant): the database, SQLAlchemy, Alembic,
pydantic and every SDK are imported inside the commands that use them, never at module level.
bench/startup.py measures it.
"""
from __future__ import annotations

import json
import sys
import uuid
from typing import TYPE_CHECKING, Any, Sequence

import click

from bots.cli_api import apikey_group
from bots.cli_common import friendly_errors, settings_of
from bots.cli_db import db_status
from bots.cli_learned import learned_group
from bots.cli_privacy import PRIVACY_COMMANDS
from bots.cli_questions import ask_once, request_id_option, waiting_door
from bots.cli_render import render_answer, render_passages
from bots.cli_slack import serve, slack_group, worker, workspace_group
from bots.cli_sources import source_group
from bots.start_up_gc import wait_while_starting
from core.errors import DocRagError
from core.types import SessionKey

if TYPE_CHECKING:
    from bots.wiring import Container, Database
    from core.config import Settings
    from core.questions.waiting import WaitingDoor


def settings_from(ctx: click.Context) -> Settings:
    return settings_of(ctx)


def container_from(ctx: click.Context) -> Container:
    from bots.wiring import build_container

    root = ctx.find_root().obj
    if "container" not in root:
        root["container"] = container = build_container(settings_from(ctx))
        # Its connections close when the command ends, each saying goodbye to the server (left to
        # the exit, a frozen pool would not be collected: bots/start_up_gc.py).
        ctx.find_root().call_on_close(container.database.dispose)
    return root["container"]


def database_from(ctx: click.Context, *, check_schema: bool) -> Database:
    from bots.wiring import open_database

    database = open_database(settings_from(ctx), check_schema=check_schema)
    ctx.find_root().call_on_close(database.dispose)  # as container_from's
    return database


class DocRagGroup(click.Group):
    def main(self, args: Sequence[str] | None = None, *rest: Any, **options: Any) -> Any:
        if args is None:  # the `docrag` process itself (console script, python -m), not a caller's CliRunner
            wait_while_starting()
        return super().main(args, *rest, **options)


@click.group(cls=DocRagGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """DocRag: answers questions from your documentation, in Slack, Discord, the web and here."""
    ctx.obj = {}  # settings and collaborators, built the first time a command needs them


# -- database -----------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
@friendly_errors
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from core.storage import schema
    from core.storage.db import safe_url

    database = database_from(ctx, check_schema=False)
    schema.upgrade(database.url, revision)
    click.echo(f"Database {safe_url(database.url)} is at revision {schema.current_revision(database.engine)}.")


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
@friendly_errors
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every DocRag table)."""
    from core.storage import schema
    database = database_from(ctx, check_schema=False)
    schema.downgrade(database.url, revision)
    click.echo(f"Database is at revision {schema.current_revision(database.engine)}.")


@db.command("current")
@click.pass_context
@friendly_errors
def db_current(ctx: click.Context) -> None:
    """Show the schema revision of the database and of the code."""
    from core.storage import schema
    database = database_from(ctx, check_schema=False)
    click.echo(f"database: {schema.current_revision(database.engine)}  code: {schema.head_revision()}")


# -- documents ----------------------------------------------------------------------------
PARTIAL_INGEST_EXIT = 3  # some documents failed, the others landed (1 is a stopped run, 2 a usage error)


@main.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--collection", "-c", default=None, help="Collection to ingest into (default: DOCRAG_DEFAULT_COLLECTION).")
@click.option("--prune", is_flag=True, help="Remove documents whose source is gone from these folders/sites.")
@click.option("--base-url", default=None, help="Public URL of a local folder, so citations link to the site.")
@click.option("--include-root", default=None, metavar="FOLDER",
              help="A folder holding the ingested one, that its pages may include files from (default: the folder itself).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
@friendly_errors
def ingest(ctx: click.Context, targets: tuple[str, ...], collection: str | None, prune: bool, base_url: str | None,
           include_root: str | None, as_json: bool) -> None:
    """Ingest files, folders, web pages or sitemaps. Unchanged documents are not read again.

    \b
    Exit status:
      0  every document was ingested, or was unchanged, or had no text to index (skipped)
      1  the run stopped: a bad argument, or the database could not be used
      3  some documents failed (each is listed with its reason); all the others were ingested
    """
    container = container_from(ctx)
    name = collection or container.settings.default_collection
    progress = _progress_line if sys.stderr.isatty() and not as_json else None
    announce = None if as_json else _announcer(bool(progress))
    # Each target is recorded as a source (found or created), so `docrag source` lists and syncs it.
    sources = container.sources.record_ingest(name, list(targets), base_url=base_url, include_root=include_root)
    report = container.ingestor.ingest(
        list(targets), collection=name, prune=prune, base_url=base_url, include_root=include_root,
        progress=progress, announce=announce, sources=sources,
    )
    if progress:
        click.echo(err=True)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(
            f"Collection {name}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.removed} removed, {len(report.skipped)} skipped, {len(report.failed)} failed; "
            f"{report.chunks} chunks in {report.seconds:.1f}s."
        )
        for skipped in report.skipped:
            click.echo(f"  skipped: {skipped.source}: {skipped.reason}", err=True)
        for failure in report.failed:
            click.echo(f"  failed: {failure.source}: {failure.reason}", err=True)
        if report.includes_not_found:
            _tell_of_missing_includes(report.includes_not_found, include_root)
    if report.failed:
        ctx.exit(PARTIAL_INGEST_EXIT)


def _tell_of_missing_includes(pages: list, include_root: str | None) -> None:
    """One note, not a line a page: FastAPI's docs alone have 120 pages including docs_src files."""
    first = pages[0]
    where = include_root or "the ingested folder"
    click.echo(
        f"  note: {len(pages)} page(s) include files not found inside {where}, e.g. {first.source} "
        f"({first.reason}). If those files live beside the folder, ingest again "
        "with --include-root FOLDER (a folder holding both) to show them.",
        err=True,
    )


def _announcer(after_progress_bar: bool):
    def announce(text: str) -> None:
        click.echo(("\n" if after_progress_bar else "") + text + "...", err=True)

    return announce


def _progress_line(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    click.echo(f"\rIngesting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", nl=False, err=True)


@main.command()
@click.option("--collection", "-c", required=True, help="Collection to re-embed with the configured embedder.")
@click.pass_context
@friendly_errors
def reindex(ctx: click.Context, collection: str) -> None:
    """Re-embed a collection after changing DOCRAG_EMBEDDER."""
    container = container_from(ctx)
    count = container.ingestor.reindex(collection)
    click.echo(f"Re-embedded {count} chunks of {collection} with {container.embedder.name}.")


# -- asking -------------------------------------------------------------------------------
# A question is often about an option: `docrag ask what does -x do` or `docrag search --lf` must
# take "-x" and "--lf" as words of the question, not fail with "No such option".
QUESTION_WORDS = {"ignore_unknown_options": True}


@main.command(context_settings=QUESTION_WORDS)
@click.argument("words", nargs=-1, required=True, type=click.UNPROCESSED, metavar="QUERY")
@click.option("--collection", "-c", default=None)
@click.option("--k", "limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def search(ctx: click.Context, words: tuple[str, ...], collection: str | None, limit: int, as_json: bool) -> None:
    """Show the passages hybrid search ranks highest for QUERY (quotes optional)."""
    query = " ".join(words)
    container = container_from(ctx)
    passages = container.searcher.search(query, collection=collection or container.settings.default_collection, limit=limit)
    rows = [
        {"source": p.source, "title": p.title, "heading": p.heading, "score": round(p.score, 5), "text": p.text}
        for p in passages
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    render_passages(passages)


def cli_session(thread: str) -> SessionKey:
    return SessionKey(platform="cli", workspace="local", channel="terminal", thread=thread, user="cli")


@main.command(context_settings=QUESTION_WORDS)
@click.argument("words", nargs=-1, required=True, type=click.UNPROCESSED, metavar="QUESTION")
@click.option("--collection", "-c", default=None)
@click.option("--thread", default=None, help="Reuse a thread id to ask a follow-up.")
@click.option("--request-id", default=None, callback=request_id_option,
              help="Ask at most once per id: run again, it prints the answer this id got.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def ask(
    ctx: click.Context, words: tuple[str, ...], collection: str | None, thread: str | None, request_id: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the documents, with sources (quotes optional)."""
    question = " ".join(words)
    container = container_from(ctx)
    with waiting_door(container) as door:
        answer, key = ask_once(door, cli_session(thread or uuid.uuid4().hex[:12]), question,
                               collection=collection, request_id=request_id)
    if as_json:
        payload = {
            "answer": answer.text,
            "citations": [{"n": c.n, "source": c.source, "title": c.title} for c in answer.citations],
            "grounded": answer.grounded,
            "session": key.thread,
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        render_answer(answer)
        click.echo(f"\n(thread {key.thread}: pass --thread {key.thread} to follow up)", err=True)


@main.command()
@click.option("--collection", "-c", default=None)
@click.pass_context
@friendly_errors
def chat(ctx: click.Context, collection: str | None) -> None:
    """A conversation in the terminal: follow-ups keep their context. Ctrl-D to leave."""
    container = container_from(ctx)
    key = cli_session("chat-" + uuid.uuid4().hex[:12])
    click.echo("Ask a question about the documents (Ctrl-D or 'exit' to leave).")
    with waiting_door(container) as door:
        _converse(door, key, collection)


def _converse(door: WaitingDoor, key: SessionKey, collection: str | None) -> None:
    while True:
        try:
            question = click.prompt("\nyou", prompt_suffix="> ", default="", show_default=False)
        except (EOFError, click.Abort):
            click.echo()
            return
        if question.strip().lower() in ("exit", "quit"):
            return
        if not question.strip():
            continue
        try:
            accepted = door.accept(key, question, collection=collection)
            answer = door.answer(accepted)
        except DocRagError as exc:  # a bad question or an outage should not end the chat
            click.echo(f"\n{exc}", err=True)
            continue
        click.echo()
        render_answer(answer)


for command in (serve, worker, slack_group, workspace_group, apikey_group, learned_group, source_group, *PRIVACY_COMMANDS):
    main.add_command(command)
db.add_command(db_status)

if __name__ == "__main__":
    main()
