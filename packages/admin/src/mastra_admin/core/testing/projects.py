"""Small Node projects that behave like Mastra projects and install offline.

``write_mastra_project`` writes one into a folder: ``package.json`` depends on
``@mastra/core`` and the ``mastra`` CLI through ``file:`` packages bundled in
``vendor/``, with a ``package-lock.json``, so ``npm ci`` needs no network.
``npm exec mastra build`` writes ``.mastra/output/index.mjs``, a node HTTP server
that listens on ``PORT`` and serves ``GET /health``, ``GET /``, ``GET /api/agents``,
``GET /api/stream`` (server-sent events), ``POST /api/agents/<name>/generate`` and
``.../stream``. It logs pino JSON lines to stdout, writes spans and logs as JSONL
files into ``MASTRA_CLOUD_TRACES_TARGET_DIR`` and ``MASTRA_RUNNER_LOGS_TARGET_DIR``,
and posts span, log and metric batches to ``MASTRA_CLOUD_TRACES_ENDPOINT`` with
``Authorization: Bearer $MASTRA_CLOUD_ACCESS_TOKEN``, as Mastra's CloudExporter does.

Variants misbehave in one way each, for testing runners: ``install_fails``,
``build_fails``, ``hangs_at_build`` (and leaves a helper outside its process group),
``crashes_at_start``, ``never_healthy``, ``ignores_sigterm``, ``forks_grandchild``
(one child in the group, one that escapes it and ignores SIGTERM) and
``prints_secret`` (the build prints the value of ``secret_env``).
``misbehaves_on_cue`` builds and serves, and then misbehaves as its environment says:
``CRASH_AT_START=1`` throws at start, ``CRASH_AFTER_REQUESTS=n`` exits with code 7
once its n-th agent request has been answered, ``HANG_HEALTH_AFTER_REQUESTS=n`` stops
answering ``/health`` after n agent requests (for crash-recovery tests).
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

__all__ = ["VARIANTS", "PackageManager", "Variant", "copy_project", "write_mastra_project"]

Variant = Literal[
    "ok",
    "install_fails",
    "build_fails",
    "hangs_at_build",
    "crashes_at_start",
    "never_healthy",
    "ignores_sigterm",
    "forks_grandchild",
    "prints_secret",
    "misbehaves_on_cue",
]
VARIANTS: tuple[Variant, ...] = get_args(Variant)

PackageManager = Literal["npm", "pnpm", "yarn", "bun"]

CORE_VERSION = "1.71.0"
CLI_VERSION = "1.31.0"

_LOCK_FILES: dict[str, str] = {
    "pnpm": "pnpm-lock.yaml",
    "yarn": "yarn.lock",
    "bun": "bun.lock",
}
_TOOL_VERSIONS: dict[str, str] = {
    "pnpm": "pnpm@9.12.0",
    "yarn": "yarn@1.22.22",
    "bun": "bun@1.1.30",
}


def _asset(name: str) -> str:
    return (
        resources.files(__package__ or "mastra_admin.core.testing")
        .joinpath("_mastra_project", name)
        .read_text(encoding="utf-8")
    )


_MISBEHAVE = """
const cue = (name) => Number(process.env[name] || 0);
if (cue('CRASH_AT_START')) {
  throw new Error('CRASH_AT_START is set: the weather agent cannot start');
}
let served = 0;
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, request, response) {
  if (event === 'request') {
    const hang = cue('HANG_HEALTH_AFTER_REQUESTS');
    if (request.url === '/health' && hang && served >= hang) {
      return true; // never answered
    }
    if (request.url.startsWith('/api/agents')) {
      served += 1;
      const crash = cue('CRASH_AFTER_REQUESTS');
      if (crash && served >= crash) {
        response.on('finish', () => {
          console.error(`crashing after ${served} requests, as CRASH_AFTER_REQUESTS says`);
          process.exit(7);
        });
      }
    }
  }
  return emit.apply(this, arguments);
};
"""


def _user_code(variant: Variant, agents: dict[str, str], service_name: str) -> str:
    """The project's ``src/mastra/index.js``: what a Mastra user writes."""
    agent_lines = ",\n".join(
        f"    {json.dumps(key)}: new Agent({{ name: {json.dumps(key)}, "
        f"instructions: {json.dumps(instructions)} }})"
        for key, instructions in agents.items()
    )
    server: dict[str, Any] = {}
    prelude = ""
    epilogue = ""
    if variant == "never_healthy":
        server["healthy"] = False
    if variant == "ignores_sigterm":
        server["gracefulShutdown"] = False
        epilogue = (
            "\nprocess.on('SIGTERM', () => {\n"
            "  process.stdout.write(JSON.stringify({ level: 40, time: Date.now(), "
            "msg: 'ignoring SIGTERM' }) + '\\n');\n"
            "});\n"
        )
    if variant == "forks_grandchild":
        prelude = "import { spawn } from 'node:child_process';\n"
        epilogue = (
            "\nconst idle = 'setInterval(() => {}, 1000)';\n"
            "const stubborn = `process.on('SIGTERM', () => {}); ${idle}`;\n"
            "// A worker in the server's process group, and one that leaves it.\n"
            "spawn(process.execPath, ['-e', idle], { stdio: 'ignore' });\n"
            "spawn(process.execPath, ['-e', stubborn], { detached: true, stdio: 'ignore' })"
            ".unref();\n"
        )
    if variant == "misbehaves_on_cue":
        prelude = "import http from 'node:http';\n"
        epilogue = _MISBEHAVE
    if variant == "crashes_at_start":
        epilogue = (
            "\nthrow new Error('OPENAI_API_KEY is not set: the weather agent cannot start');\n"
        )
    server_option = f",\n  server: {json.dumps(server)}" if server else ""
    code = (
        f"{prelude}import {{ Agent, Mastra }} from '@mastra/core';\n\n"
        f"export const mastra = new Mastra({{\n"
        f"  serviceName: {json.dumps(service_name)},\n"
        f"  agents: {{\n{agent_lines},\n  }}{server_option},\n}});\n"
        f"{epilogue}"
    )
    if variant == "build_fails":
        code += "\nexport const broken = {;\n"
    return code


def _lock(name: str, version: str, variant: Variant) -> dict[str, Any]:
    root: dict[str, Any] = {
        "name": name,
        "version": version,
        "hasInstallScript": True if variant == "install_fails" else None,
        "dependencies": {"@mastra/core": "file:vendor/mastra-core"},
        "devDependencies": {"mastra": "file:vendor/mastra-cli"},
        "engines": {"node": ">=18"},
    }
    return {
        "name": name,
        "version": version,
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {k: v for k, v in root.items() if v is not None},
            "node_modules/@mastra/core": {"resolved": "vendor/mastra-core", "link": True},
            "node_modules/mastra": {"resolved": "vendor/mastra-cli", "link": True},
            "vendor/mastra-cli": {
                "name": "mastra",
                "version": CLI_VERSION,
                "dev": True,
                "bin": {"mastra": "bin/mastra.mjs"},
            },
            "vendor/mastra-core": {"name": "@mastra/core", "version": CORE_VERSION},
        },
    }


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_mastra_project(
    dest: str | Path,
    *,
    name: str = "fixture-agent",
    variant: Variant = "ok",
    package_manager: PackageManager = "npm",
    agents: dict[str, str] | None = None,
    secret_env: str = "OPENAI_API_KEY",
    version: str = "0.1.0",
    flush_interval_ms: int = 1000,
) -> Path:
    """Write a Mastra-like project into ``dest`` (created; must be empty or absent).

    :param name: the npm package name, also the service name in spans and logs.
    :param variant: how the project misbehaves; ``"ok"`` builds and serves.
    :param package_manager: ``npm`` projects install offline; for the others the
        lock file and the ``packageManager`` field are written (so a runner picks
        that tool), but installing needs the tool and is not offline.
    :param agents: agent name to instructions; default one agent ``weather``.
    :param secret_env: the variable whose value the ``prints_secret`` build prints.
    :param flush_interval_ms: how often the exporter posts batches to the collector.
    :return: the project root (``dest``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    root = Path(dest)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    agents = agents or {"weather": "You answer questions about the weather."}

    core_dir = root / "vendor" / "mastra-core"
    cli_dir = root / "vendor" / "mastra-cli"
    (cli_dir / "bin").mkdir(parents=True)
    core_dir.mkdir(parents=True)
    (root / "src" / "mastra").mkdir(parents=True)

    core_source = _asset("core.mjs").replace(
        "flushIntervalMs: mastra.server.flushIntervalMs ?? 1000",
        f"flushIntervalMs: mastra.server.flushIntervalMs ?? {int(flush_interval_ms)}",
    )
    (core_dir / "index.mjs").write_text(core_source, encoding="utf-8")
    _write_json(
        core_dir / "package.json",
        {
            "name": "@mastra/core",
            "version": CORE_VERSION,
            "description": "Test stand-in for @mastra/core (MastraAdmin fixture).",
            "type": "module",
            "main": "./index.mjs",
            "exports": {".": "./index.mjs"},
        },
    )
    cli = cli_dir / "bin" / "mastra.mjs"
    cli.write_text(_asset("cli.mjs"), encoding="utf-8")
    cli.chmod(0o755)
    _write_json(
        cli_dir / "package.json",
        {
            "name": "mastra",
            "version": CLI_VERSION,
            "description": "Test stand-in for the mastra CLI (MastraAdmin fixture).",
            "type": "module",
            "bin": {"mastra": "bin/mastra.mjs"},
        },
    )

    package: dict[str, Any] = {
        "name": name,
        "version": version,
        "private": True,
        "type": "module",
        "scripts": {"build": "mastra build", "start": "node .mastra/output/index.mjs"},
        "dependencies": {"@mastra/core": "file:vendor/mastra-core"},
        "devDependencies": {"mastra": "file:vendor/mastra-cli"},
        "engines": {"node": ">=18"},
    }
    if variant == "install_fails":
        package["scripts"]["postinstall"] = (
            "node -e \"console.error('gyp ERR! build error: native module sharp could not be "
            "compiled'); process.exit(1)\""
        )
    if package_manager != "npm":
        package["packageManager"] = _TOOL_VERSIONS[package_manager]
    _write_json(root / "package.json", package)
    if package_manager == "npm":
        _write_json(root / "package-lock.json", _lock(name, version, variant))
    else:
        (root / _LOCK_FILES[package_manager]).write_text("", encoding="utf-8")

    fixture: dict[str, Any] = {}
    if variant == "prints_secret":
        fixture["build"] = {"printEnv": [secret_env]}
    if variant == "hangs_at_build":
        fixture["build"] = {"hang": True, "spawnGrandchild": True}
    if fixture:
        _write_json(root / "fixture.json", fixture)

    (root / "src" / "mastra" / "index.js").write_text(
        _user_code(variant, agents, name), encoding="utf-8"
    )
    (root / ".gitignore").write_text("node_modules/\n.mastra/\n", encoding="utf-8")
    return root


def copy_project(source: str | Path, dest: str | Path) -> Path:
    """Copy a project the way a source does for a build (without installed or built
    output); a small helper for tests that need a project copy."""
    ignore = shutil.ignore_patterns("node_modules", ".mastra", ".git", "dist", ".next")
    shutil.copytree(source, dest, ignore=ignore, symlinks=True)
    return Path(dest)
