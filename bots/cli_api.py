"""`docrag apikey ...`: keys for the REST API. The plaintext key is printed once and never stored.

Exposed as ``apikey_group`` for the main group (bots/cli.py) to add; works on its own in tests.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from bots.cli_common import friendly_errors, settings_of

if TYPE_CHECKING:
    from core.tenancy.apikeys import ApiKeys, KeyInfo


def _keys(ctx: click.Context) -> ApiKeys:
    from bots.wiring import open_database  # the database stack loads only when a key command runs
    from core.tenancy.apikeys import ApiKeys

    database = open_database(settings_of(ctx))
    ctx.call_on_close(database.dispose)
    return ApiKeys(database.sessions)


@click.group("apikey")
def apikey_group() -> None:
    """API keys for the REST API (/api/v1), each scoped to collections."""


@apikey_group.command("create")
@click.option("--collection", "-c", "collections", multiple=True, required=True,
              help="A collection the key may use; repeat for several.")
@click.option("--name", "-n", default="", help="What the key is for, shown in `docrag apikey list`.")
@click.option("--json", "as_json", is_flag=True, help='Print {"key": ..., "id": ...} only.')
@click.pass_context
@friendly_errors
def create(ctx: click.Context, collections: tuple[str, ...], name: str, as_json: bool) -> None:
    """Create a key and print it once: DocRag keeps only its hash."""
    new = _keys(ctx).create(list(collections), name=name)
    if as_json:
        click.echo(json.dumps({"key": new.key, "id": new.info.id, "collections": list(new.info.collections)}))
        return
    click.echo(new.key)
    click.echo(
        f"API key {new.info.id} for {', '.join(new.info.collections)} created. Copy it now: it is not shown again.\n"
        f"Send it as 'Authorization: Bearer <key>'; revoke it with: docrag apikey revoke {new.info.id}",
        err=True,
    )


@apikey_group.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
@friendly_errors
def revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke key KEY_ID (see `docrag apikey list`); requests with it get 401 from now on."""
    info = _keys(ctx).revoke(key_id)
    click.echo(f"API key {info.id} ({info.prefix}…) is revoked.")


@apikey_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.pass_context
@friendly_errors
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """List keys (id, name, first characters, collections, state); never the keys themselves."""
    keys = _keys(ctx).list()
    if as_json:
        click.echo(json.dumps([_row(k) for k in keys]))
        return
    if not keys:
        click.echo("No API keys yet. Create one: docrag apikey create --collection NAME")
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        click.echo(f"{key.id:>4}  {key.prefix}…  {state:<18} {','.join(key.collections):<30} {key.name}")


def _row(key: KeyInfo) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "collections": list(key.collections),
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }
