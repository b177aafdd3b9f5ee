"""The built-in commands of ``mastra-admin``: the server's plugin adds them to the
command line through the ``mastra_admin_cli`` hook, like any plugin's (``add_commands``).

Commands that need only the platform's records (``users``, ``tokens``) compose only
storage (``STORAGE_KINDS``), so they run while ``serve`` runs on the same data dir.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import click

from mastra_admin.core.compose import STORAGE_KINDS
from mastra_admin.core.errors import MastraAdminError, NotFound
from mastra_admin.core.inputs import CreateApiToken
from mastra_admin.core.node_engines import MASTRA_NODE_RANGE, parse_version, satisfies
from mastra_admin.server.cli import _settings, run_async
from mastra_admin.server.runtime import Platform, run, run_platform, run_workers, running_admin
from mastra_admin.server.settings import ServerSettings

__all__ = ["COMMANDS", "add_commands"]


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="API and UI port (default 3000).")
@click.option(
    "--collector-port",
    type=int,
    help="Port that serves only the collector, for deployed servers (default: port + 1; 0: none).",
)
@click.option("--no-ingestion", is_flag=True, help="Do not run the ingestion worker here.")
@click.pass_context
@run_async
async def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    collector_port: int | None,
    no_ingestion: bool,
) -> None:
    """Run the whole platform: API, UI, the collector, build workers, ingestion and the
    router."""
    overrides = ctx.obj.setdefault("overrides", {})
    overrides.update({"host": host, "port": port, "collector_port": collector_port})
    settings = _settings(ctx)
    server_settings = ServerSettings()
    if no_ingestion:
        server_settings.ingestion = False

    def ready(platform: Platform) -> None:
        admin = platform.admin
        click.echo(f"MastraAdmin is running at {settings.admin_url}")
        if settings.collector:
            click.echo(f"Deployed servers post telemetry to {settings.collector_base_url}")
        if admin.router is not None:
            click.echo(f"Deployed servers are routed at {admin.router.public_url('<name>')}")
        click.echo(f"Data dir: {settings.data_dir.resolve()}")
        if platform.bootstrap_token:
            click.echo("")
            click.echo("First start: an admin user was created (admin@example.com). Its API token,")
            click.echo("shown only this once, signs you in to the UI and the API:")
            click.echo("")
            click.echo(f"    {platform.bootstrap_token}")
            click.echo("")
        click.echo("Press Ctrl+C to stop.")

    await run_platform(settings, server_settings, on_ready=ready)


@click.command()
@click.option("--once", is_flag=True, help="Drain the queue once and exit.")
@click.pass_context
@run_async
async def worker(ctx: click.Context, once: bool) -> None:
    """Run build workers only, against the configured database (for more machines)."""
    processed = await run_workers(_settings(ctx), once=once)
    if once:
        click.echo(f"processed {processed} build(s)")


@click.command()
@click.pass_context
@run_async
async def migrate(ctx: click.Context) -> None:
    """Create or upgrade the database and observability schemas (idempotent)."""
    async with running_admin(_settings(ctx), only={"observability"}) as admin:
        if admin.observability is not None:
            await admin.observability.ping()  # a server that did not answer is no success
        click.echo("schemas are up to date")


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name")
@click.option("--platform-admin", is_flag=True, help="Give full platform access.")
@click.pass_context
@run_async
async def users_create(
    ctx: click.Context, email: str, name: str | None, platform_admin: bool
) -> None:
    """Create a user (and print an API token for them)."""
    async with running_admin(_settings(ctx), only=STORAGE_KINDS) as admin:
        user, token = await admin.system_create_user(
            email, name=name, platform_admin=platform_admin
        )
        click.echo(f"created user {user.email} ({user.id})")
        click.echo(f"API token (shown once): {token}")


@users.command("list")
@click.pass_context
@run_async
async def users_list(ctx: click.Context) -> None:
    """List users."""
    async with running_admin(_settings(ctx), only=STORAGE_KINDS) as admin:
        for user in await admin.storage.users.list_all(limit=10_000):
            click.echo(f"{user.id}  {user.email}  {user.name or ''}")


@click.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.option("--email", required=True, help="The user the token signs in as.")
@click.option("--name", required=True, help="What the token is for.")
@click.pass_context
@run_async
async def tokens_create(ctx: click.Context, email: str, name: str) -> None:
    """Create an API token for a user; it is shown once."""
    async with running_admin(_settings(ctx), only=STORAGE_KINDS) as admin:
        user = await admin.storage.users.get_by_email(email)
        if user is None:
            raise NotFound(f"no user with email {email}")
        token, raw = await admin.create_user_token(user.id, CreateApiToken(name=name))
        click.echo(f"token {token.id} ({token.token_prefix}...) for {user.email}")
        click.echo(f"API token (shown once): {raw}")


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_context
@run_async
async def tokens_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke an API token by id."""
    async with running_admin(_settings(ctx), only=STORAGE_KINDS) as admin:
        from mastra_admin.core.models import utcnow

        if not await admin.storage.users.revoke_token(token_id, utcnow()):
            raise NotFound(f"no token {token_id}")
        click.echo(f"revoked {token_id}")


@click.group()
def licence() -> None:
    """Licence information."""


@licence.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def licence_show(ctx: click.Context, as_json: bool) -> None:
    """Show the tier, features, limits and expiry of the configured licence."""
    from mastra_admin.core.licence import LicenceValidator

    settings = _settings(ctx)
    info = LicenceValidator(settings.licence_key, settings.licence_public_key).info()
    if as_json:
        click.echo(json.dumps(info.model_dump(mode="json"), indent=2))
        return
    for key, value in info.model_dump(mode="json").items():
        click.echo(f"{key:>14}: {value}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _tool_version(tool: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check configuration, database, ClickHouse, node/npm and ports; one verdict each."""
    results: list[tuple[str, bool, str]] = []
    try:
        settings = _settings(ctx)
        results.append(("config", True, f"data dir {settings.data_dir.resolve()}"))
    except Exception as exc:
        click.echo(f"FAIL  config: {exc}")
        raise SystemExit(1) from exc

    node = _tool_version("node")
    results.append(("node", node is not None, node or "node is not on PATH (needed to build)"))
    warnings: list[tuple[str, str]] = []
    version = parse_version(node) if node is not None else None
    if node is not None and (version is None or not satisfies(version, MASTRA_NODE_RANGE)):
        warnings.append(
            (
                "node version",
                f"Mastra 1.71 needs Node.js {MASTRA_NODE_RANGE}; the local runner builds "
                f"with {node} (projects asking for more get a warning in their build log)",
            )
        )
    npm = _tool_version("npm")
    results.append(("npm", npm is not None, npm or "npm is not on PATH (needed to build)"))
    ports = [("api port", settings.port)]
    if settings.collector_listener_port is not None:
        ports.append(("collector port", settings.collector_listener_port))
    for name, port in ports:
        free = _port_free(settings.host, port)
        results.append((name, free, f"{settings.host}:{port} " + ("free" if free else "in use")))

    async def services() -> None:
        from mastra_admin.core.compose import build_admin

        try:
            admin = await build_admin(settings)
        except MastraAdminError as exc:
            results.append(("providers", False, exc.message))
            return
        results.append(("providers", True, repr(admin)))
        try:
            await admin.storage.init()
            await admin.storage.ping()
            results.append(("database", True, f"{admin.storage.type} answers"))
        except Exception as exc:
            results.append(("database", False, f"{type(exc).__name__}: {exc}"))
        if admin.observability is not None:
            try:
                await admin.observability.init()
                await admin.observability.ping()
                results.append(("clickhouse", True, f"{admin.observability.type} answers"))
            except Exception as exc:
                results.append(("clickhouse", False, f"{type(exc).__name__}: {exc}"))
        await admin.close()

    run(services())
    width = max(len(name) for name, _, _ in results)
    width = max(width, *(len(name) for name, _ in warnings)) if warnings else width
    for name, ok, detail in results:
        click.echo(f"{'ok  ' if ok else 'FAIL'}  {name:<{width}}  {detail}")
    for name, detail in warnings:
        click.echo(f"warn  {name:<{width}}  {detail}")
    failed = [name for name, ok, _ in results if not ok]
    if failed:
        click.echo(f"\n{len(failed)} check(s) failed: {', '.join(failed)}")
        raise SystemExit(1)
    click.echo("\nall checks passed")


COMMANDS: tuple[click.Command, ...] = (serve, worker, migrate, users, tokens, licence, doctor)
"""The built-in commands, in the order ``--help`` lists them."""


def add_commands(group: click.Group) -> None:
    """Add the built-in commands to ``group`` (the ``mastra-admin`` root)."""
    for command in COMMANDS:
        group.add_command(command)
