"""Commands: ``mastra-admin ingest`` and ``mastra-admin clickhouse migrate [--check]``.

Both read the installation's settings like the server does (``--config`` or
``MASTRA_ADMIN_CONFIG``, ``MASTRA_ADMIN_*`` variables, ``CLICKHOUSE_URL``). With the
embedded engine, ``ingest`` cannot run beside a server using the same data dir (the
engine admits one process); the server ingests by itself then. ``ingest`` takes the
file storage and the folders to tail (the runner's ``artifact_roots()``) from the
composition root, like the server: it knows no other adapter's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mastra_admin.core.errors import MastraAdminError
from mastra_admin.core.observability import ProcessingResult
from mastra_admin.core.plugins import ProviderKind
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.observability.clickhouse._backend import ClickHouseObservability
from mastra_admin.observability.clickhouse._settings import ClickHouseSettings
from mastra_admin.observability.clickhouse._worker import ClickHouseIngestionWorker

__all__ = ["clickhouse_group", "ingest_command", "main"]


@dataclass
class _Setup:
    settings: MastraAdminSettings
    clickhouse: ClickHouseSettings
    data_dir: Path


def _load(**changes: Any) -> _Setup:
    from mastra_admin.core.compose import provider_settings
    from mastra_admin.core.settings import load_settings
    from mastra_admin.observability.clickhouse.plugin import PROVIDER

    root = click.get_current_context().find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    overrides = {k: v for k, v in dict(obj.get("overrides", {})).items() if v is not None}
    settings = load_settings(obj.get("config"), **overrides)
    provider = settings.section("observability").provider
    if provider != "clickhouse":
        raise click.ClickException(
            f"the observability provider is {provider!r}; these commands are for 'clickhouse'"
        )
    clickhouse = provider_settings(PROVIDER, settings)
    assert isinstance(clickhouse, ClickHouseSettings)
    updates = {k: v for k, v in changes.items() if v is not None}
    if updates:
        clickhouse = ClickHouseSettings.model_validate({**clickhouse.model_dump(), **updates})
    return _Setup(settings, clickhouse, Path(settings.data_dir).expanduser().resolve())


def _summary(result: ProcessingResult) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.events_by_type.items())) or "none"
    return (
        f"{result.files_processed} file(s), {result.events_ingested} event(s) ({kinds}), "
        f"{result.bad_lines} bad line(s) in {result.duration_ms / 1000:.1f} s"
    )


async def _ingest_once(worker: ClickHouseIngestionWorker) -> ProcessingResult:
    waiting = len(await worker.files.pending()) + len(await worker.files.claimed())
    total = ProcessingResult()
    with click.progressbar(
        length=max(waiting, 1),
        label="ingesting",
        show_pos=True,
        file=sys.stderr,
    ) as bar:
        while True:
            result = await worker.process_once()
            total.files_processed += result.files_processed
            total.events_ingested += result.events_ingested
            total.bad_lines += result.bad_lines
            total.duration_ms += result.duration_ms
            total.errors += result.errors
            for kind, count in result.events_by_type.items():
                total.events_by_type[kind] = total.events_by_type.get(kind, 0) + count
            bar.update(min(result.files_processed, max(waiting, 1) - bar.pos))
            if result.errors or result.files_processed == 0:
                break
            if result.events_ingested == 0 and not await worker.files.pending():
                break
    await worker.stop(drain=True)
    return total


async def _ingest_forever(
    backend: ClickHouseObservability, worker: ClickHouseIngestionWorker
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await worker.start()
    click.echo(
        f"ingesting into {backend.description} (worker {worker.worker_id}); "
        "Ctrl-C stops after the files in hand",
        err=True,
    )
    await stop.wait()
    await worker.stop(drain=True)
    status = worker.status()
    click.echo(
        f"stopped: {status.total_files_processed} file(s), "
        f"{status.total_events_ingested} event(s), {status.total_bad_lines} bad line(s)",
        err=True,
    )


async def _run_ingest(
    setup: _Setup, once: bool, build_dirs: list[str] | None
) -> ProcessingResult | None:
    """Compose what ingestion needs (the installation's file storage, and its runner,
    which names the folders its builds write to, unless ``build_dirs`` are given) with
    this command's ClickHouse settings, and run the worker."""
    from mastra_admin.core.compose import INGESTION_KINDS, build_ingestion_worker, build_providers

    backend = ClickHouseObservability(setup.clickhouse, data_dir=setup.data_dir)
    kinds: frozenset[ProviderKind] = (
        INGESTION_KINDS if build_dirs is None else frozenset({"file_storage"})
    )
    try:
        providers = await build_providers(
            setup.settings, kinds=kinds, overrides={"observability": backend}
        )
    except BaseException:
        await backend.close()
        raise
    try:
        worker = build_ingestion_worker(providers, build_dirs=build_dirs)
        if worker is None:
            raise click.ClickException("no file storage is configured: nothing to ingest")
        assert isinstance(worker, ClickHouseIngestionWorker)  # made by ``backend``
        await backend.init()
        if once:
            return await _ingest_once(worker)
        await _ingest_forever(backend, worker)
        return None
    finally:
        await providers.close()


@click.command("ingest")
@click.option("--once", is_flag=True, help="Ingest what is waiting, show progress, and exit.")
@click.option("--poll-interval", type=float, help="Seconds between passes (default 0.5).")
@click.option("--batch-size", type=int, help="Files taken per pass (default 200).")
@click.option(
    "--delete-after-process",
    is_flag=True,
    default=None,
    help="Delete ingested files instead of moving them to processed/.",
)
@click.option("--project-id", help="Only ingest this project's files.")
@click.option(
    "--build-dir",
    "build_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of build folders to tail (repeatable; default: the runner's).",
)
@click.option("--worker-id", help="A stable name for this worker (default: host, pid).")
def ingest_command(
    once: bool,
    poll_interval: float | None,
    batch_size: int | None,
    delete_after_process: bool | None,
    project_id: str | None,
    build_dirs: tuple[Path, ...],
    worker_id: str | None,
) -> None:
    """Move observability files into ClickHouse (exactly once)."""
    try:
        setup = _load(
            poll_interval_s=poll_interval,
            batch_size=batch_size,
            delete_after_process=delete_after_process,
            project_id=project_id,
            worker_id=worker_id,
        )
        folders = [str(p) for p in build_dirs] or None
        result = asyncio.run(_run_ingest(setup, once, folders))
    except MastraAdminError as exc:
        raise click.ClickException(f"{exc.message} [{exc.code}]") from exc
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if result is not None:
        click.echo(_summary(result))
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
        if result.errors:
            sys.exit(1)


async def _run_migrate(setup: _Setup, check: bool) -> tuple[ClickHouseObservability, Any]:
    backend = ClickHouseObservability(setup.clickhouse, data_dir=setup.data_dir)
    try:
        if check:
            return backend, await backend.check()
        return backend, await backend.schema.migrate()
    finally:
        await backend.close()


@click.group("clickhouse")
def clickhouse_group() -> None:
    """The ClickHouse observability store."""


@clickhouse_group.command("migrate")
@click.option("--check", is_flag=True, help="Only report: exit 1 when anything is pending.")
def migrate_command(check: bool) -> None:
    """Create or upgrade the observability schema (tables, views, TTLs)."""
    try:
        setup = _load()
        backend, outcome = asyncio.run(_run_migrate(setup, check))
    except MastraAdminError as exc:
        raise click.ClickException(f"{exc.message} [{exc.code}]") from exc
    where = backend.description
    if not check:
        for migration in outcome:
            click.echo(f"applied  {migration.version:04d} {migration.name}")
        click.echo(f"{where}: up to date ({len(outcome)} migration(s) applied now)")
        return
    for migration in outcome.pending:
        click.echo(f"pending  {migration.version:04d} {migration.name}")
    for name in outcome.missing_objects:
        click.echo(f"missing  {name}")
    for name in outcome.ttl_drift:
        click.echo(f"ttl      {name} differs from the settings")
    if not outcome.up_to_date:
        click.echo(f"{where}: not up to date")
        sys.exit(1)
    click.echo(f"{where}: up to date (migrations {', '.join(map(str, outcome.applied))})")


clickhouse_group.add_command(ingest_command)


@click.group()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MASTRA_ADMIN_CONFIG",
    help="TOML settings file.",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def main(ctx: click.Context, config: Path | None, data_dir: Path | None) -> None:
    """ClickHouse observability commands (also under ``mastra-admin``)."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["overrides"] = {"data_dir": data_dir}


main.add_command(ingest_command)
main.add_command(migrate_command)


if __name__ == "__main__":  # pragma: no cover
    main()
