"""What every `docrag` command module shares: clean error lines and the loaded settings."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

from core.config import Settings, load_settings
from core.errors import DocRagError


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
    """The settings the main group loaded, or the environment's when a group runs on its own."""
    if isinstance(ctx.obj, dict) and "settings" in ctx.obj:
        return ctx.obj["settings"]
    return load_settings()
