"""The ``mastra-admin`` command line: serve, worker, migrate, users, tokens, licence, doctor.

The commands come from plugins, through the ``mastra_admin_cli`` hook: the server's
own plugin (``mastra_admin.server.plugin``, always there, whatever ``plugins_allow``
and ``plugins_deny`` say) adds the built-in ones, adapters add theirs. Every command
reads the
same settings (``--config`` or ``MASTRA_ADMIN_CONFIG``, then ``MASTRA_ADMIN_*``
variables) and fails with a one-line message and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from mastra_admin.core.errors import MastraAdminError
from mastra_admin.core.log_config import configure_logging
from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.settings import MastraAdminSettings, load_settings
from mastra_admin.server.runtime import run

__all__ = ["cli", "command_plugins", "main"]

T = TypeVar("T")

_DISTRIBUTION = "mastra-admin-server"


def _settings(ctx: click.Context) -> MastraAdminSettings:
    """The command's settings; the first call also sets up logging from them (every
    command reads its settings before doing anything)."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        overrides = {k: v for k, v in obj.get("overrides", {}).items() if v is not None}
        try:
            settings = load_settings(obj.get("config"), **overrides)
        except MastraAdminError as exc:
            raise click.ClickException(exc.message) from exc
        log = {k: v for k, v in obj.get("log", {}).items() if v is not None}
        if log:
            settings.log = settings.log.model_copy(update=log)
        configure_logging(settings.log)
        obj["settings"] = settings
    settings_: MastraAdminSettings = obj["settings"]
    return settings_


def run_async(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command; turn MastraAdmin errors into a message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return run(fn(*args, **kwargs))
        except MastraAdminError as exc:
            raise click.ClickException(f"{exc.message} [{exc.code}]") from exc
        except KeyboardInterrupt:
            raise SystemExit(130) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MASTRA_ADMIN_CONFIG",
    help="TOML settings file (default: ./mastra-admin.toml when present).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where state lives (default ./.mastra-admin).",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    help="Log lines readable (console, the default) or one JSON object each (json); "
    "setting log.format.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="The least severe level logged (default info); setting log.level.",
)
@click.version_option(package_name="mastra-admin-server", prog_name="mastra-admin")
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    data_dir: Path | None,
    log_format: str | None,
    log_level: str | None,
) -> None:
    """Operate many Mastra servers from one place."""
    obj = ctx.ensure_object(dict)
    obj["config"] = config
    obj.setdefault("overrides", {})["data_dir"] = data_dir
    obj["log"] = {"format": log_format, "level": log_level}


def command_plugins() -> PluginManager:
    """The plugins whose commands the command line offers: the server's own plugin,
    registered in code so that the built-in commands are always there, and the entry
    points the settings let through. A broken plugin is reported as a warning and
    leaves the others' commands in place."""
    from mastra_admin.server import plugin as server_plugin

    manager = PluginManager()
    # Registered as its entry point would register it, so that loading the entry
    # points below takes it for already loaded.
    try:
        version: str | None = importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = None
    manager.register(
        server_plugin, server_plugin.PLUGIN_NAME, distribution=_DISTRIBUTION, version=version
    )
    try:
        settings = load_settings()
        allow, deny = settings.plugins_allow, settings.plugins_deny
    except MastraAdminError:  # the command itself reports bad settings
        allow, deny = None, []
    try:
        manager.load_entrypoints(allow, deny)
    except MastraAdminError as exc:
        click.echo(f"warning: plugins not loaded: {exc.message}", err=True)
    return manager


def main(argv: list[str] | None = None) -> None:
    command_plugins().call("mastra_admin_cli", group=cli)
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="mastra-admin")
