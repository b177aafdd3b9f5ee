"""What the detector reads from a folder: Mastra or not, package manager, entry, workspace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mastra_admin.sources.local import LocalProjectSource, MastraProjectDetector

WriteProject = Callable[..., Path]


def detect(folder: Path) -> dict[str, object] | None:
    found = MastraProjectDetector().detect(folder.resolve())
    return None if found is None else {"name": found.name, **found.as_metadata()}


@pytest.mark.parametrize("manager", ["npm", "pnpm", "yarn", "bun"])
def test_package_manager_from_the_package_manager_field(
    write_project: WriteProject, tmp_path: Path, manager: str
) -> None:
    project = write_project(
        tmp_path / "agent",
        package={"packageManager": f"{manager}@1.2.3+sha512.abc"},
        files={"yarn.lock": "# a lock file of another manager\n"},
    )

    found = detect(project)

    assert found is not None
    assert found["package_manager"] == manager
    assert found["package_manager_from"] == "packageManager"


@pytest.mark.parametrize(
    ("lock_file", "manager"),
    [
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("bun.lockb", "bun"),
        ("bun.lock", "bun"),
        ("package-lock.json", "npm"),
        ("npm-shrinkwrap.json", "npm"),
    ],
)
def test_package_manager_from_the_lock_file(
    write_project: WriteProject, tmp_path: Path, lock_file: str, manager: str
) -> None:
    project = write_project(tmp_path / "agent", files={lock_file: ""})

    found = detect(project)

    assert found is not None
    assert found["package_manager"] == manager
    assert found["package_manager_from"] == "lockfile"


def test_lock_files_are_ranked_pnpm_yarn_bun_npm(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "agent",
        files={"package-lock.json": "{}", "bun.lockb": "", "yarn.lock": "", "pnpm-lock.yaml": ""},
    )

    found = detect(project)

    assert found is not None
    assert found["package_manager"] == "pnpm"


def test_unknown_package_manager_field_falls_back_to_the_lock_file(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "agent", package={"packageManager": "deno@2"}, files={"yarn.lock": ""}
    )

    found = detect(project)

    assert found is not None
    assert found["package_manager"] == "yarn"


def test_no_hint_means_npm(write_project: WriteProject, tmp_path: Path) -> None:
    found = detect(write_project(tmp_path / "agent"))

    assert found is not None
    assert found["package_manager"] == "npm"
    assert found["package_manager_from"] == "default"


def test_a_valid_project_reports_name_version_and_mastra_version(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "agent",
        name="@acme/weather-agent",
        dependencies={"@mastra/core": "0.10.5", "zod": "^3"},
        package={"version": "2.0.1", "description": "Weather"},
    )

    found = detect(project)

    assert found == {
        "name": "@acme/weather-agent",
        "package_manager": "npm",
        "package_manager_from": "default",
        "mastra_version": "0.10.5",
        "has_mastra_entry": True,
        "entry": "src/mastra/index.ts",
        "version": "2.0.1",
        "description": "Weather",
        "workspace_root": None,
        "git_branch": None,
        "valid": True,
        "problems": [],
    }


def test_dev_dependencies_only_is_a_mastra_project(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "agent", dev_dependencies={"@mastra/core": "^0.9.0"})

    found = detect(project)

    assert found is not None
    assert found["mastra_version"] == "^0.9.0"
    assert found["valid"] is True


def test_a_javascript_entry_counts(write_project: WriteProject, tmp_path: Path) -> None:
    project = write_project(tmp_path / "agent", entry="src/mastra/index.js")

    found = detect(project)

    assert found is not None
    assert found["entry"] == "src/mastra/index.js"
    assert found["has_mastra_entry"] is True


def test_a_missing_entry_makes_the_project_invalid(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "agent", entry=None)

    found = detect(project)

    assert found is not None
    assert found["has_mastra_entry"] is False
    assert found["valid"] is False
    assert found["problems"] == [
        "no Mastra entry file (src/mastra/index.ts or src/mastra/index.js)"
    ]


def test_without_mastra_core_it_is_not_a_mastra_project(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "web", dependencies={"express": "^4", "@mastra/client": "1"})

    assert detect(project) is None


def test_a_missing_package_json_is_not_a_project(tmp_path: Path) -> None:
    folder = tmp_path / "agent"
    (folder / "src" / "mastra").mkdir(parents=True)
    (folder / "src" / "mastra" / "index.ts").write_text("export {};\n")

    assert detect(folder) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"name": "agent", "dependencies": {"@mastra/core": "1"', "not valid JSON"),
        ('["@mastra/core"]', "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_malformed_package_json_is_a_warning_never_a_crash(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    raw = content if isinstance(content, bytes) else content.encode()
    folder = tmp_path / "agent"
    (folder / "src" / "mastra").mkdir(parents=True)
    (folder / "src" / "mastra" / "index.ts").write_text("export {};\n")
    (folder / "package.json").write_bytes(raw)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "package.json").write_bytes(raw)
    detector = MastraProjectDetector()

    with capture_logs() as logs:
        with_entry = detector.detect(folder)
        without_entry = detector.detect(plain)
        detector.detect(plain)  # the same broken file is reported once

    assert without_entry is None
    assert with_entry is not None
    assert with_entry.valid is False
    assert problem in with_entry.problems[0]
    warnings = [e for e in logs if e["event"] == "source.package_json_invalid"]
    assert len(warnings) == 2
    assert all(problem in w["problem"] and w["log_level"] == "warning" for w in warnings)


def test_dependencies_that_are_not_an_object_are_a_problem(
    write_project: WriteProject, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "agent",
        dependencies={"@mastra/core": "1"},
        package={"devDependencies": ["oops"]},
    )

    found = detect(project)

    assert found is not None
    assert found["problems"] == ["package.json devDependencies is not an object"]


def test_a_utf8_bom_is_accepted(write_project: WriteProject, tmp_path: Path) -> None:
    project = write_project(tmp_path / "agent")
    text = (project / "package.json").read_text()
    (project / "package.json").write_bytes(b"\xef\xbb\xbf" + text.encode())

    assert detect(project) is not None


def test_name_falls_back_to_the_folder_name(write_project: WriteProject, tmp_path: Path) -> None:
    project = write_project(tmp_path / "nameless", package={"name": ""})

    found = detect(project)

    assert found is not None
    assert found["name"] == "nameless"


def test_git_branch_from_head(write_project: WriteProject, tmp_path: Path) -> None:
    project = write_project(tmp_path / "agent", files={".git/HEAD": "ref: refs/heads/feature/x\n"})

    found = detect(project)

    assert found is not None
    assert found["git_branch"] == "feature/x"


# -- workspaces ------------------------------------------------------------------


def _workspace_root(folder: Path, package: dict[str, object], files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "monorepo", **package}))
    for relative, content in files.items():
        (folder / relative).write_text(content)
    return folder


def test_npm_workspace(write_project: WriteProject, tmp_path: Path) -> None:
    root = _workspace_root(
        tmp_path / "mono", {"workspaces": ["packages/*"]}, {"package-lock.json": "{}"}
    )
    project = write_project(root / "packages" / "agent")

    found = detect(project)

    assert found is not None
    assert found["workspace_root"] == str(root.resolve())
    assert found["package_manager"] == "npm"
    assert found["package_manager_from"] == "workspace"


def test_yarn_workspace_with_packages_object(write_project: WriteProject, tmp_path: Path) -> None:
    root = _workspace_root(
        tmp_path / "mono", {"workspaces": {"packages": ["apps/**"]}}, {"yarn.lock": ""}
    )
    project = write_project(root / "apps" / "agents" / "weather")

    found = detect(project)

    assert found is not None
    assert found["workspace_root"] == str(root.resolve())
    assert found["package_manager"] == "yarn"


def test_pnpm_workspace_yaml(write_project: WriteProject, tmp_path: Path) -> None:
    root = _workspace_root(
        tmp_path / "mono",
        {"packageManager": "pnpm@9.12.0"},
        {
            "pnpm-workspace.yaml": (
                "# the workspace\npackages:\n  - 'apps/*'\n  - \"tools/**\"  # tools\n"
                "  - '!apps/legacy'\ncatalog:\n  zod: ^3\n"
            )
        },
    )
    inside = write_project(root / "apps" / "agent")
    excluded = write_project(root / "apps" / "legacy")
    elsewhere = write_project(root / "examples" / "demo")

    found, legacy, other = detect(inside), detect(excluded), detect(elsewhere)

    assert found is not None
    assert legacy is not None
    assert other is not None
    assert found["workspace_root"] == str(root.resolve())
    assert found["package_manager"] == "pnpm"
    assert legacy["workspace_root"] is None
    assert other["workspace_root"] is None


def test_pnpm_workspace_yaml_flow_style(write_project: WriteProject, tmp_path: Path) -> None:
    root = _workspace_root(
        tmp_path / "mono", {}, {"pnpm-workspace.yaml": "packages: ['apps/*', 'libs/*']\n"}
    )
    project = write_project(root / "libs" / "agent")

    found = detect(project)

    assert found is not None
    assert found["workspace_root"] == str(root.resolve())


def test_the_project_lock_file_wins_over_the_workspace(
    write_project: WriteProject, tmp_path: Path
) -> None:
    root = _workspace_root(tmp_path / "mono", {"workspaces": ["*"]}, {"pnpm-lock.yaml": ""})
    project = write_project(root / "agent", files={"bun.lockb": ""})

    found = detect(project)

    assert found is not None
    assert found["package_manager"] == "bun"
    assert found["workspace_root"] == str(root.resolve())


async def test_scanning_a_workspace_lists_its_projects(
    write_project: WriteProject, tmp_path: Path
) -> None:
    root = _workspace_root(tmp_path / "mono", {"workspaces": ["apps/*"]}, {"yarn.lock": ""})
    write_project(root / "apps" / "one")
    write_project(root / "apps" / "two")
    source = LocalProjectSource(base_paths=[root])
    try:
        projects = await source.list_projects()
    finally:
        await source.close()

    assert sorted(p.name for p in projects) == ["one", "two"]
    assert {p.metadata["workspace_root"] for p in projects} == {str(root.resolve())}
    assert {p.package_manager for p in projects} == {"yarn"}
