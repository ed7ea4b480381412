"""What every `docrag` command module shares: clean error lines and the loaded settings.

Nothing heavy is imported at module level: `docrag --help` and every command's start-up only pay
for what that command uses (settings, the database, an SDK), imported inside the command.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

import click

from core.errors import DocRagError

if TYPE_CHECKING:
    from core.config import Settings


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show DocRag's own errors as one clean line and exit 1, never as a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DocRagError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def settings_of(ctx: click.Context) -> Settings:
    """The settings, read from the environment the first time a command asks for them (pydantic
    takes a noticeable part of a second to import), and logging configured from them."""
    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "settings" not in root.obj:
        root.obj["settings"] = _load_and_configure_logging()
    return root.obj["settings"]


def _load_and_configure_logging() -> Settings:
    from bots.logs import configure_logging
    from core.config import load_settings

    settings = load_settings()
    # A terminal shows warnings and errors only, unless a level was asked for.
    configure_logging(settings.log_level if settings.log_level != "INFO" else "WARNING", json_lines=settings.log_json)
    return settings
