"""`docrag` commands for the processes and for Slack: serve, worker, slack ..., workspace map.

Exposed as objects the main group adds (bots/cli.py): ``serve``, ``worker``, ``slack_group``,
``workspace_group``. This module does not import bots.cli, so either can import the other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bots.cli_common import friendly_errors, settings_of
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.config import Settings
# bots.wiring (the database, the engine) and the SDKs are imported inside the commands that use
# them, so that `docrag --help` and unrelated commands do not pay for them.

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


# -- processes ------------------------------------------------------------------------------------
@click.command()
@click.option("--host", default=None, help=f"Interface to listen on (default {DEFAULT_HOST}, or 0.0.0.0 with $PORT).")
@click.option("--port", type=int, default=None, help=f"Port (default $PORT or {DEFAULT_PORT}).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes (default: bots/gunicorn_conf.py).")
@click.pass_context
@friendly_errors
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web process (gunicorn): playground at /, REST API at /api/v1, Slack at /slack/events."""
    from bots.wiring import open_database

    settings = settings_of(ctx)
    open_database(settings).dispose()  # one clear error (schema, pgvector) before any worker forks
    address = _bind_address(host, port)
    _warn_if_public_beyond_loopback(settings, address)
    click.echo(f"DocRag is serving on http://{address}/ (playground), /api/v1, /slack/events, /metrics. Ctrl-C stops it.")
    run_gunicorn(host=host, port=port, workers=workers)


def _warn_if_public_beyond_loopback(settings: Settings, address: str) -> None:
    """Anyone who can reach this address could read the documentation through a public playground."""
    from adapters.web.signin import is_loopback
    from bots.web_signin import playground_access

    access = playground_access(settings, listen=(address,))
    if access.public and not is_loopback(address):
        click.secho(f"Warning: the playground is public ({access.reason}) and listens on {address}: anyone who can "
                    "reach it can read your documentation. Set up sign-in (docs/signing-in.md) or unset "
                    "DOCRAG_PLAYGROUND_PUBLIC.", fg="yellow", err=True)
    else:
        click.echo(f"Playground: {'public' if access.public else 'signed-in people only'} ({access.reason}).")


def _bind_address(host: str | None, port: int | None) -> str:
    from bots import gunicorn_conf

    default_host, _, default_port = str(gunicorn_conf.bind).rpartition(":")
    return f"{host or default_host}:{port or default_port}"


@click.command()
@click.option("--concurrency", type=int, default=4, show_default=True, help="Jobs run at once.")
@click.option("--nice", type=click.IntRange(0, 19), default=0, show_default=True,
              help="Lower CPU priority, e.g. 10 on a machine shared with `docrag serve`: "
              "acknowledgements to Slack stay fast while answers wait a little.")
@click.pass_context
@friendly_errors
def worker(ctx: click.Context, concurrency: int, nice: int) -> None:
    """Run background job workers: Slack answers and other queued work."""
    from bots.worker import run

    run(settings_of(ctx), concurrency=concurrency, nice=nice)


# -- slack ----------------------------------------------------------------------------------------
@click.group("slack")
def slack_group() -> None:
    """Slack: Socket Mode and per-channel behaviour."""


@slack_group.command("socket")
@click.pass_context
@friendly_errors
def socket(ctx: click.Context) -> None:
    """Connect to Slack over Socket Mode (no public URL needed); needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN."""
    run_socket_mode(settings_of(ctx))


@slack_group.command("channel-mode")
@click.argument("channel")
@click.option("--workspace", "team_id", default=None,
              help="Workspace (team) id, T...; default: the workspace of SLACK_BOT_TOKEN.")
@click.option("--mentions-only/--all", "mentions", default=None,
              help="Answer thread follow-ups only when mentioned, or all of them (the default).")
@click.pass_context
@friendly_errors
def channel_mode(ctx: click.Context, channel: str, team_id: str | None, mentions: bool | None) -> None:
    """Choose how DocRag treats follow-ups in CHANNEL's threads."""
    from bots.wiring import build_container
    from core.tenancy.channels import set_mentions_only

    if mentions is None:
        raise click.UsageError("Choose --mentions-only or --all.")
    settings = settings_of(ctx)
    team_id = team_id or _bot_workspace(settings)
    container = build_container(settings)
    with container.database.sessions.begin() as session:
        set_mentions_only(session, "slack", team_id, channel, mentions)
    behaviour = "only when mentioned" if mentions else "for every follow-up"
    click.echo(f"Channel {channel} in workspace {team_id}: DocRag answers in threads {behaviour}.")


def _bot_workspace(settings: Settings) -> str:
    if settings.slack_bot_token is None:
        raise ConfigurationError("Pass --workspace T... (or set SLACK_BOT_TOKEN so DocRag can look it up).")
    from adapters.slack.clients import build_web_client

    client = build_web_client(settings.slack_api_url, settings.slack_bot_token.get_secret_value())
    return str(client.auth_test()["team_id"])


def run_gunicorn(*, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    """Run gunicorn with bots/gunicorn_conf.py on ``bots.web:create_app()``; blocks until stopped."""
    from gunicorn.app.base import BaseApplication

    from bots import gunicorn_conf

    class WebProcess(BaseApplication):
        def load_config(self) -> None:
            for name, value in vars(gunicorn_conf).items():
                if name in self.cfg.settings and value is not None:
                    self.cfg.set(name, value)
            if host or port:
                self.cfg.set("bind", _bind_address(host, port))
            if workers:
                self.cfg.set("workers", workers)

        def load(self) -> Any:
            from bots.web import create_app

            return create_app()

    WebProcess().run()


def run_socket_mode(settings: Settings) -> None:
    """Serve Slack over Socket Mode in this process (with job workers on the embedded default)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from adapters.slack.app import build_bolt_app
    from bots.web import start_worker_if_embedded
    from bots.wiring import build_container, build_slack_services, open_job_queue

    if settings.slack_app_token is None or settings.slack_bot_token is None:
        raise ConfigurationError("Socket Mode needs SLACK_APP_TOKEN (xapp-...) and SLACK_BOT_TOKEN (xoxb-...).")
    container = build_container(settings)
    jobs = open_job_queue(container)
    lifecycle = container.lifecycle(jobs)
    services = build_slack_services(container, lifecycle)
    assert services is not None  # a bot token is set
    bolt = build_bolt_app(settings, services, container.database.engine, socket_mode=True)
    worker = start_worker_if_embedded(container, lifecycle, services)
    click.echo("Connected to Slack over Socket Mode. Ctrl-C to stop.", err=True)
    try:
        SocketModeHandler(bolt, app_token=settings.slack_app_token.get_secret_value()).start()
    finally:
        services.after_ack.shutdown()
        if worker is not None:
            worker.stop()
        jobs.close()


# -- workspaces -----------------------------------------------------------------------------------
@click.group("workspace")
def workspace_group() -> None:
    """Which collection each Slack workspace or Discord server answers from."""


@workspace_group.command("map")
@click.option("--platform", type=click.Choice(["slack", "discord"]), required=True)
@click.argument("workspace")
@click.argument("collection")
@click.pass_context
@friendly_errors
def workspace_map(ctx: click.Context, platform: str, workspace: str, collection: str) -> None:
    """Answer questions from WORKSPACE (Slack team id or Discord server id) with COLLECTION."""
    from bots.wiring import build_container
    from core.tenancy.collections import get_collection, map_workspace

    container = build_container(settings_of(ctx))
    with container.database.sessions.begin() as session:
        map_workspace(session, platform, workspace, get_collection(session, collection))
    click.echo(f"{platform} workspace {workspace} now answers from collection {collection}.")
