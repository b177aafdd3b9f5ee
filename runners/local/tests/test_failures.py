"""Every way a build or start can fail gives ``BuildFailed`` naming the step, with a
message that says what failed, and leaves no process behind."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mastra_admin.core.errors import BuildFailed, Conflict
from mastra_admin.core.models import ProjectSettings
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import LogCollector, make_build_context
from mastra_admin.runners.local import LocalProcessRunner

pytestmark = pytest.mark.slow

HANG = ["node", "-e", "console.log('working'); setInterval(() => {}, 1000)"]


@pytest.fixture
def only_node_and_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with node and npm and nothing else (no pnpm, yarn or bun, whatever the
    machine has)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("node", "npm", "npx", "sh"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed by these tests"
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


async def test_install_failure_quotes_the_output(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    ctx = make_build_context(write_mastra_project(tmp_path / "p", variant="install_fails"))
    log = LogCollector()
    with pytest.raises(BuildFailed) as failed:
        await local_runner.build(ctx, log)
    assert failed.value.step == "install"
    assert failed.value.message.startswith("npm ci --no-audit --no-fund --include=dev failed")
    assert "exit code 1" in failed.value.message
    assert "native module sharp could not be compiled" in failed.value.message
    assert "$ npm ci --no-audit --no-fund --include=dev" in log.text


async def test_build_failure_quotes_the_syntax_error(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    ctx = make_build_context(write_mastra_project(tmp_path / "p", variant="build_fails"))
    with pytest.raises(BuildFailed) as failed:
        await local_runner.build(ctx, LogCollector())
    assert failed.value.step == "build"
    assert "mastra build failed with exit code 1" in failed.value.message
    assert "SyntaxError" in failed.value.message


@pytest.mark.parametrize("manager", ["pnpm", "yarn", "bun"])
async def test_missing_package_manager_is_named(
    local_runner: LocalProcessRunner, tmp_path: Path, only_node_and_npm: Path, manager: str
) -> None:
    project = write_mastra_project(tmp_path / "p", package_manager=manager)  # type: ignore[arg-type]
    ctx = make_build_context(project)
    ctx.source.metadata.pop("package_manager")  # found from the lock file
    with pytest.raises(BuildFailed) as failed:
        await local_runner.build(ctx, LogCollector())
    assert failed.value.step == "install"
    assert failed.value.message.startswith(f"{manager} is not installed")
    assert failed.value.details["tool"] == manager


async def test_install_timeout_kills_the_step(
    make_runner: Callable[..., LocalProcessRunner], tmp_path: Path
) -> None:
    runner = make_runner(install_timeout_s=60)
    settings = ProjectSettings(install_command=HANG, install_timeout_s=1)
    ctx = make_build_context(write_mastra_project(tmp_path / "p"), settings=settings)
    began = time.monotonic()
    with pytest.raises(BuildFailed) as failed:
        await runner.build(ctx, LogCollector())
    assert time.monotonic() - began < 10
    assert failed.value.step == "install"
    assert "timed out after 1 s" in failed.value.message
    assert "working" in failed.value.message


async def test_build_timeout_kills_helpers_that_left_the_group(
    make_runner: Callable[..., LocalProcessRunner], tmp_path: Path
) -> None:
    runner = make_runner(build_timeout_s=3)
    ctx = make_build_context(write_mastra_project(tmp_path / "p", variant="hangs_at_build"))
    with pytest.raises(BuildFailed) as failed:
        await runner.build(ctx, LogCollector())
    assert failed.value.step == "build"
    assert "mastra build timed out after 3 s" in failed.value.message
    # the autouse check finds no process under tmp_path, the escaped helper included


async def test_failure_message_masks_secrets(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    secret = "sk-very-secret-value"
    settings = ProjectSettings(
        install_command=["node", "-e", "console.log('key=' + process.env.KEY); process.exit(3)"]
    )
    ctx = make_build_context(
        write_mastra_project(tmp_path / "p"),
        env={"KEY": secret},
        secrets=[secret],
        settings=settings,
    )
    log = LogCollector()
    with pytest.raises(BuildFailed) as failed:
        await local_runner.build(ctx, log)
    assert "exit code 3" in failed.value.message
    assert "key=***" in failed.value.message
    assert secret not in failed.value.message
    assert secret not in log.text


async def test_copy_failure(local_runner: LocalProcessRunner, tmp_path: Path) -> None:
    ctx = make_build_context(tmp_path / "does-not-exist")
    with pytest.raises(BuildFailed) as failed:
        await local_runner.build(ctx, LogCollector())
    assert failed.value.step == "copy"
    assert "does-not-exist" in failed.value.message


async def test_build_without_output_fails(local_runner: LocalProcessRunner, tmp_path: Path) -> None:
    settings = ProjectSettings(build_command=["node", "-e", "console.log('built nothing')"])
    ctx = make_build_context(write_mastra_project(tmp_path / "p"), settings=settings)
    with pytest.raises(BuildFailed) as failed:
        await local_runner.build(ctx, LogCollector())
    assert failed.value.step == "build"
    assert ".mastra/output/index.mjs" in failed.value.message


async def test_production_node_env_still_installs_the_cli(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    """``mastra`` is a devDependency; NODE_ENV=production must not drop it."""
    ctx = make_build_context(write_mastra_project(tmp_path / "p"), env={"NODE_ENV": "production"})
    artifact = await local_runner.build(ctx, LogCollector())
    assert (Path(artifact.path) / "src" / ".mastra" / "output" / "index.mjs").is_file()


async def test_same_build_twice_at_once_conflicts(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    settings = ProjectSettings(install_command=HANG, install_timeout_s=30)
    ctx = make_build_context(write_mastra_project(tmp_path / "p"), settings=settings)
    log = LogCollector()
    first = asyncio.ensure_future(local_runner.build(ctx, log))
    await log.wait_for("working")
    with pytest.raises(Conflict):
        await local_runner.build(ctx, LogCollector())
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_unsafe_build_id_is_refused(local_runner: LocalProcessRunner, tmp_path: Path) -> None:
    from mastra_admin.core.errors import InvalidInput

    ctx = make_build_context(write_mastra_project(tmp_path / "p"))
    ctx = ctx.model_copy(update={"build": ctx.build.model_copy(update={"id": "../escape"})})
    with pytest.raises(InvalidInput):
        await local_runner.build(ctx, LogCollector())
    assert not await asyncio.to_thread((tmp_path / "escape").exists)


async def test_a_node_the_project_does_not_accept_is_named_at_the_top_of_the_log(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    project = write_mastra_project(tmp_path / "p", variant="install_fails")
    manifest = json.loads((project / "package.json").read_text())
    manifest["engines"] = {"node": ">=99.1"}
    (project / "package.json").write_text(json.dumps(manifest))
    log = LogCollector()
    with pytest.raises(BuildFailed):
        await local_runner.build(make_build_context(project), log)
    lines = log.text.splitlines()
    assert lines[0].startswith("Copying")
    assert lines[1].startswith("WARNING: the project asks for Node.js >=99.1")
    assert "this runner builds with Node.js " in lines[1]
    assert lines[2].startswith("$ npm ci")
