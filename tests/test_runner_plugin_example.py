"""The example third-party runner (``examples/runner-plugin``) as a user gets it:
installed with pip (into a folder of its own, so this interpreter's environment is
left as it was), found through its entry point, picked by name by the composition
root, and passing the core's runner conformance suite from that installed copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "runner-plugin"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """``pip install examples/runner-plugin`` into a temporary folder."""
    target = Path(tempfile.mkdtemp(prefix="mastra-admin-plugin-"))
    build = Path(tempfile.mkdtemp(prefix="mastra-admin-plugin-src-"))
    try:
        # Built from a copy: pip may write build files beside the sources.
        source = shutil.copytree(EXAMPLE, build / "runner-plugin")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert (target / "mastra_admin" / "runners" / "limited" / "plugin.py").is_file()
        assert not (target / "mastra_admin" / "__init__.py").exists(), "PEP 420 namespace"
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(build, ignore_errors=True)


def _env(installed: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASTRA_ADMIN_")}
    for alias in ("DATABASE_URL", "CLICKHOUSE_URL", "PROJECTS_DIR", "FILE_STORAGE_PATH"):
        env.pop(alias, None)
    env["PYTHONPATH"] = os.pathsep.join([str(installed), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    return env


COMPOSE = """
import asyncio, sys
from mastra_admin.core.compose import build_admin
from mastra_admin.core.settings import load_settings

async def main():
    settings = load_settings(
        data_dir=sys.argv[1],
        runner={"provider": "limited", "nice": 5},
        storage={"provider": "pg", "url": "postgresql://nobody@127.0.0.1:1/none"},
        observability={"provider": "none"},
        router={"provider": "none"},
    )
    admin = await build_admin(settings)
    runner = admin.runner
    print("RESULT", type(runner).__module__, type(runner).__name__, runner.settings.nice)
    [info] = [p for p in admin.plugins.list_plugins() if p.name == "runner-limited"]
    print("RESULT", info.distribution, info.version, ",".join(info.providers))
    await admin.close()

asyncio.run(main())
"""


def test_the_platform_finds_it_by_name(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", COMPOSE, str(tmp_path / "data")],
        env=_env(installed),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert [line.removeprefix("RESULT ") for line in lines] == [
        "mastra_admin.runners.limited._runner LimitedProcessRunner 5",
        "mastra-admin-runner-limited 0.1.0 runner:limited",
    ]


def test_it_passes_the_runner_conformance_suite(installed: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            str(EXAMPLE / "tests"),
        ],
        env=_env(installed),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed.group(1)) >= 17, summary
    assert "skipped" not in summary
    # The tests imported the installed copy, not the sources in the checkout.
    probe = subprocess.run(
        [sys.executable, "-c", "import mastra_admin.runners.limited as m; print(m.__file__)"],
        env=_env(installed),
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(installed))
