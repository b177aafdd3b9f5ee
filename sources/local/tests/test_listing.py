"""Listing projects: depth, include/exclude, symlinks, several base paths, ids, the cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.errors import NotFound
from mastra_admin.sources.local import (
    LocalProjectSource,
    LocalSourceSettings,
    default_base_paths,
    project_id_for,
)
from mastra_admin.sources.local._settings import _checkout_examples

WriteProject = Callable[..., Path]
MakeSource = Callable[..., LocalProjectSource]


def real(path: Path) -> str:
    return os.path.realpath(path)


async def names(source: LocalProjectSource) -> list[str]:
    return sorted(p.name for p in await source.list_projects())


async def test_depth_limit_counts_folders_below_the_base(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "d1")
    write_project(base / "a" / "d2")
    write_project(base / "a" / "b" / "d3")
    write_project(base / "a" / "b" / "c" / "d4")

    assert await names(make_source(base_paths=[base])) == ["d1", "d2", "d3"]
    assert await names(make_source(base_paths=[base], max_depth=1)) == ["d1"]
    assert await names(make_source(base_paths=[base], max_depth=4)) == ["d1", "d2", "d3", "d4"]


async def test_a_base_path_that_is_itself_a_project(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    project = write_project(base / "only", name="solo")

    listed = await make_source(base_paths=[project]).list_projects()

    assert [p.name for p in listed] == ["solo"]
    assert listed[0].metadata["relative_path"] == "."


async def test_build_dependency_and_hidden_folders_are_never_scanned(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "visible")
    for folder in ("node_modules", ".git", "dist", ".next", ".mastra", ".cache"):
        write_project(base / folder / "inside", name=f"in-{folder}")
    write_project(base / "app" / "node_modules" / "@mastra" / "memory", name="@mastra/memory")

    assert await names(make_source(base_paths=[base])) == ["visible"]


async def test_configured_excludes_match_names_and_paths(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "keep")
    write_project(base / "archive" / "old")
    write_project(base / "clients" / "acme" / "legacy" / "x", name="acme-legacy")
    write_project(base / "clients" / "acme" / "current", name="acme-current")

    source = make_source(base_paths=[base], exclude=["archive", "clients/*/legacy"], max_depth=4)

    assert await names(source) == ["acme-current", "keep"]


async def test_include_globs_pick_projects(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "agents" / "weather")
    write_project(base / "agents" / "search")
    write_project(base / "experiments" / "toy")
    write_project(base / "team-bot")

    source = make_source(base_paths=[base], include=["agents/*", "team-*"])

    assert await names(source) == ["search", "team-bot", "weather"]


async def test_a_project_is_not_searched_for_more_projects(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "outer")
    write_project(base / "outer" / "examples" / "inner")

    assert await names(make_source(base_paths=[base])) == ["outer"]


async def test_a_mastra_workspace_root_is_searched(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "mono", package={"workspaces": ["apps/*"]})
    write_project(base / "mono" / "apps" / "agent")

    assert await names(make_source(base_paths=[base])) == ["agent", "mono"]


async def test_symlinked_folders_are_not_followed(
    write_project: WriteProject, make_source: MakeSource, base: Path, tmp_path: Path
) -> None:
    outside = write_project(tmp_path / "elsewhere" / "secret-agent")
    inside = write_project(base / "real")
    (base / "link-out").symlink_to(outside, target_is_directory=True)
    (base / "link-in").symlink_to(inside, target_is_directory=True)

    listed = await make_source(base_paths=[base]).list_projects()

    assert [p.name for p in listed] == ["real"]
    assert listed[0].path == real(inside)


async def test_several_base_paths_and_a_missing_one(
    write_project: WriteProject, make_source: MakeSource, tmp_path: Path
) -> None:
    write_project(tmp_path / "one" / "a")
    write_project(tmp_path / "two" / "b")
    source = make_source(base_paths=[tmp_path / "one", tmp_path / "missing", tmp_path / "two"])

    with capture_logs() as logs:
        found = await names(source)

    assert found == ["a", "b"]
    assert any(e["event"] == "source.scan.base_unreadable" for e in logs)


async def test_overlapping_base_paths_list_a_project_once(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "group" / "agent")

    source = make_source(base_paths=[base, base / "group"])

    assert await names(source) == ["agent"]


async def test_metadata_keys_and_stable_ids(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    project = write_project(base / "group" / "agent", files={"pnpm-lock.yaml": ""})

    first = (await make_source(base_paths=[base]).list_projects())[0]
    again = (await make_source(base_paths=[str(base)]).list_projects())[0]

    assert first.id == again.id == project_id_for(project)
    assert len(first.id) == 16
    assert first.type == "local"
    assert first.path == real(project)
    assert first.package_manager == "pnpm"
    assert {
        "package_manager",
        "mastra_version",
        "has_mastra_entry",
        "version",
        "workspace_root",
        "valid",
        "problems",
        "base_path",
        "relative_path",
    } <= set(first.metadata)
    assert first.metadata["relative_path"] == "group/agent"
    assert first.metadata["base_path"] == real(base)


async def test_ids_come_from_the_resolved_path(
    write_project: WriteProject, make_source: MakeSource, base: Path, tmp_path: Path
) -> None:
    write_project(base / "agent")
    alias = tmp_path / "alias"
    alias.symlink_to(base, target_is_directory=True)

    via_alias = (await make_source(base_paths=[alias]).list_projects())[0]
    direct = (await make_source(base_paths=[base]).list_projects())[0]

    assert via_alias.id == direct.id
    assert via_alias.path == direct.path


async def test_a_fresh_source_finds_a_project_by_id(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    project = write_project(base / "agent")

    found = await make_source(base_paths=[base]).get_project(project_id_for(project))

    assert found.name == "agent"


async def test_the_listing_is_cached_until_invalidated(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "first")
    source = make_source(base_paths=[base])
    assert await names(source) == ["first"]

    write_project(base / "second")
    cached = await names(source)
    source.invalidate_cache()
    refreshed = await names(source)

    assert cached == ["first"]
    assert refreshed == ["first", "second"]


async def test_an_expired_cache_scans_again(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "first")
    source = make_source(base_paths=[base], cache_ttl_s=0)
    assert await names(source) == ["first"]

    write_project(base / "second")

    assert await names(source) == ["first", "second"]


async def test_get_project_scans_again_for_an_unknown_id(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "first")
    source = make_source(base_paths=[base])
    await source.list_projects()
    newer = write_project(base / "newer")
    # The rescan for unknown ids happens at most once a second.
    source._cache_at = (source._cache_at or 0) - 2

    found = await source.get_project(project_id_for(newer))

    assert found.name == "newer"
    with pytest.raises(NotFound):
        await source.get_project("ffffffffffffffff")


async def test_concurrent_listings_share_one_scan(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    import asyncio

    for i in range(5):
        write_project(base / f"agent-{i}")
    source = make_source(base_paths=[base])

    with capture_logs() as logs:
        results = await asyncio.gather(*(source.list_projects() for _ in range(8)))

    assert all(len(r) == 5 for r in results)
    assert sum(1 for e in logs if e["event"] == "source.scan.finished") == 1


async def test_returned_projects_are_copies(
    write_project: WriteProject, make_source: MakeSource, base: Path
) -> None:
    write_project(base / "agent")
    source = make_source(base_paths=[base])

    listed = await source.list_projects()
    listed[0].metadata["valid"] = "tampered"

    assert (await source.list_projects())[0].metadata["valid"] is True


# -- settings ----------------------------------------------------------------------


def test_projects_dir_style_values_are_split(tmp_path: Path) -> None:
    joined = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])

    settings = LocalSourceSettings.model_validate(
        {"base_paths": joined, "include": "agents/*, team-*", "copy_exclude": '["*.log"]'}
    )

    assert settings.base_paths == [tmp_path / "a", tmp_path / "b"]
    assert settings.include == ["agents/*", "team-*"]
    assert settings.copy_exclude == ["*.log"]


def test_projects_dir_is_declared_as_an_extra_env_name() -> None:
    extra = LocalSourceSettings.model_fields["base_paths"].json_schema_extra

    assert extra == {"env": ["PROJECTS_DIR"]}


def test_the_default_base_path_is_the_examples_of_this_checkout() -> None:
    here = Path(__file__).resolve()
    checkout = next(p for p in here.parents if (p / "packages" / "admin").is_dir())

    assert default_base_paths() == [checkout / "examples"]


async def test_no_base_path_configured_uses_the_default(make_source: MakeSource) -> None:
    source = make_source()

    assert source.uses_default_paths is True
    assert list(source.base_paths) == [p.resolve() for p in default_base_paths()]


def test_outside_a_checkout_the_examples_fallback_finds_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "checkout"
    (fake / "examples").mkdir(parents=True)
    (fake / "packages" / "admin").mkdir(parents=True)
    (fake / "packages" / "admin" / "pyproject.toml").write_text("")

    assert _checkout_examples(Path("/")) is None
    assert _checkout_examples(fake / "packages") == fake / "examples"
