"""What this runner adds: its limits reach the server, and the platform finds it."""

from __future__ import annotations

import random
from pathlib import Path

import psutil
import pytest

from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import FolderCopySource, LogCollector, make_build_context
from mastra_admin.runners.limited import LimitedProcessRunner, LimitedRunnerSettings


def test_the_entry_point_registers_the_runner() -> None:
    manager = PluginManager()
    manager.load_entrypoints()
    spec = manager.get_provider("runner", "limited")
    assert spec.settings_model is LimitedRunnerSettings
    [info] = [p for p in manager.list_plugins() if p.name == "runner-limited"]
    assert info.distribution == "mastra-admin-runner-limited"
    assert info.providers == ["runner:limited"]


@pytest.mark.parametrize("nice", [7])
async def test_the_server_runs_niced_with_its_limits(tmp_path: Path, nice: int) -> None:
    first = random.randrange(31900, 32600, 20)
    settings = LimitedRunnerSettings(
        builds_dir=tmp_path / "builds",
        port_range_start=first,
        port_range_end=first + 19,
        nice=nice,
        max_open_files=1024,
        max_heap_mb=128,
    )
    runner = LimitedProcessRunner(FolderCopySource(), settings, data_dir=tmp_path)
    project = write_mastra_project(tmp_path / "projects" / "weather", name="weather")
    ctx = make_build_context(project)
    log = LogCollector()
    artifact = await runner.build(ctx, log)
    server = await runner.start(ctx, artifact, log)
    try:
        assert server.process_id is not None
        process = psutil.Process(server.process_id)
        assert process.name() == "node"
        assert process.nice() == nice
        soft, hard = process.rlimit(psutil.RLIMIT_NOFILE)
        assert (soft, hard) == (1024, 1024)
        assert process.rlimit(psutil.RLIMIT_CORE) == (0, 0)
        assert "--max-old-space-size=128" in process.environ()["NODE_OPTIONS"]
        assert "nice 7" in log.text
    finally:
        await runner.stop(server, grace_s=5.0)
        await runner.close()
