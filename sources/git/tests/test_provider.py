"""The git project source: connecting repositories (and refusing hostile settings),
pinning refs, copies for builds, and credentials that never leave the encrypted store."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.errors import InvalidInput, MastraAdminError, NotFound, Unavailable
from mastra_admin.core.models import SOURCE_SECRETS_KEY, Project, Team
from mastra_admin.core.plugins import PluginManager, ProviderContext
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.sources.git import (
    CommitNotFound,
    GitProjectSource,
    GitSourceSettings,
    RefNotFound,
    RepositoryUnreadable,
    cache_key_for,
    check_repository_url,
    repository_key_for,
    repository_key_from_text,
)
from mastra_admin.sources.git import plugin as git_plugin
from mastra_admin.sources.git.testing import (
    AUTHOR_EMAIL,
    AUTHOR_NAME,
    Executable,
    FileContent,
    GitHttpServer,
    commit,
    force_push,
    make_repository,
    tag,
)

from .conftest import Spawned, fake_resolve, register

TOKEN = "ghs_ProviderSecretToken0987654321"
WEBHOOK_SECRET = "whsec-0123456789-abcdef"
PASSWORD = "hunter2-Passw0rd"

PACKAGE = {
    "name": "weather-agent",
    "version": "0.3.0",
    "dependencies": {"@mastra/core": "^0.10.2"},
    "devDependencies": {"mastra": "^0.10.0"},
}
APP: dict[str, FileContent] = {
    "package.json": json.dumps(PACKAGE),
    "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
    "src/mastra/index.ts": "export const mastra = {};\n",
    "scripts/start.sh": Executable("#!/bin/sh\nexec node .\n"),
}

_names = itertools.count(1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path_factory.mktemp("served")) as running:
        yield running


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path_factory.mktemp("private"), token=TOKEN) as running:
        yield running


def repository(server: GitHttpServer, files: dict[str, FileContent] | None = None) -> str:
    """A new repository on ``server`` holding ``files`` (``APP``); its name."""
    name = f"repo-{next(_names)}"
    make_repository(server.root, name, APP if files is None else files)
    return name


def texts_of(error: MastraAdminError) -> str:
    return f"{error} {error.message} {error.details!r} {error!r}"


async def connected(
    source: GitProjectSource,
    storage: InMemoryAdminStorage,
    team: Team,
    config: dict[str, Any],
    *,
    default_branch: str = "main",
) -> Project:
    connection = await source.connect(team.id, config, default_branch=default_branch)
    return await register(storage, team.id, connection, default_branch=default_branch)


# -- connecting ---------------------------------------------------------------------


async def test_connect_reads_the_project_at_the_default_branch(
    git_source: GitProjectSource, served: GitHttpServer, team: Team
) -> None:
    name = repository(served)
    url = served.url(name)

    connection = await git_source.connect(
        team.id,
        {"url": url, "webhook_secret": WEBHOOK_SECRET},
        default_branch="main",
    )

    source = connection.source
    assert source.type == "git"
    assert source.name == "weather-agent"
    assert source.path == url
    assert source.default_branch == "main"
    assert len(source.id) == 32
    assert source.metadata["valid"] is True
    assert source.metadata["problems"] == []
    assert source.metadata["package_manager"] == "pnpm"
    assert source.metadata["mastra_version"] == "^0.10.2"
    assert source.metadata["url"] == url
    assert len(source.metadata["commit_sha"]) == 40
    config = connection.config
    assert config["url"] == url
    assert config["subdirectory"] is None
    assert config["credential_type"] is None
    assert config["repository_key"] == f"127.0.0.1/{name}"
    assert len(config["cache_key"]) == 32
    assert set(config[SOURCE_SECRETS_KEY]) == {"webhook_secret"}
    assert WEBHOOK_SECRET not in json.dumps(config)


async def test_a_monorepo_app_folder_and_its_workspace_lock_file(
    git_source: GitProjectSource, served: GitHttpServer, team: Team
) -> None:
    name = repository(
        served,
        {
            "package.json": '{"private": true, "workspaces": ["apps/*"]}',
            "yarn.lock": "# yarn\n",
            "apps/agent/package.json": json.dumps({**PACKAGE, "name": "mono-agent"}),
            "apps/agent/src/mastra/index.js": "export const mastra = {};\n",
        },
    )

    connection = await git_source.connect(
        team.id, {"url": served.url(name), "subdirectory": "apps/agent/"}, default_branch="main"
    )

    assert connection.source.name == "mono-agent"
    assert connection.source.path == f"{served.url(name)}#apps/agent"
    assert connection.source.metadata["package_manager"] == "yarn"
    assert connection.source.metadata["valid"] is True
    assert connection.config["subdirectory"] == "apps/agent"


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"README.md": "# hi\n"}, "there is no package.json"),
        ({"package.json": '{"name": "web", "dependencies": {"express": "4"}}'}, "@mastra/core"),
        ({"package.json": "{not json"}, "not valid JSON"),
        ({"package.json": json.dumps(PACKAGE)}, "no Mastra entry file"),
    ],
)
async def test_a_repository_that_is_no_mastra_project_is_reported_invalid(
    git_source: GitProjectSource,
    served: GitHttpServer,
    team: Team,
    files: dict[str, FileContent],
    problem: str,
) -> None:
    name = repository(served, files)

    connection = await git_source.connect(team.id, {"url": served.url(name)}, default_branch="main")

    assert connection.source.metadata["valid"] is False
    assert any(problem in text for text in connection.source.metadata["problems"])
    assert connection.source.package_manager == "npm"


async def test_an_unknown_branch_or_folder_names_the_field(
    git_source: GitProjectSource, served: GitHttpServer, team: Team
) -> None:
    url = served.url(repository(served))

    with pytest.raises(RefNotFound) as branch:
        await git_source.connect(team.id, {"url": url}, default_branch="trunk")
    with pytest.raises(InvalidInput) as folder:
        await git_source.connect(
            team.id, {"url": url, "subdirectory": "apps/x"}, default_branch="main"
        )

    with pytest.raises(InvalidInput) as commit_id:
        await git_source.connect(team.id, {"url": url}, default_branch="a" * 40)

    assert branch.value.details["field"] == "default_branch"
    assert "trunk" in branch.value.message
    assert folder.value.details["field"] == "source.subdirectory"
    assert commit_id.value.details["field"] == "default_branch"


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"url": "ext::sh -c touch% /tmp/pwned"}, "source.url", "remote helper"),
        ({"url": "file:///srv/repos/agent.git"}, "source.url", "file_base_paths"),
        ({"url": "/srv/repos/agent.git"}, "source.url", "file_base_paths"),
        ({"url": "https://10.0.0.5/acme/agent.git"}, "source.url", "private"),
        ({"url": "https://internal.test/acme/agent.git"}, "source.url", "private"),
        ({"url": f"https://bob:{PASSWORD}@github.com/acme/agent.git"}, "source.url", "credential"),
        ({"url": f"https://{PASSWORD}@github.com/acme/agent.git"}, "source.url", "credential"),
        ({"url": "http://github.com/acme/agent.git"}, "source.url", "https"),
        ({"url": "git://github.com/acme/agent.git"}, "source.url", "git://"),
        ({"url": "--upload-pack=touch /tmp/x"}, "source.url", "option"),
        ({"url": ""}, "source.url", "at least 1"),
        ({"url": 7}, "source.url", "string"),
        ({}, "source.url", "required"),
        (
            {"url": "https://github.com/acme/agent.git", "subdirectory": "../../etc"},
            "source.subdirectory",
            "'..'",
        ),
        (
            {"url": "https://github.com/acme/agent.git", "subdirectory": "/etc"},
            "source.subdirectory",
            "absolute",
        ),
        (
            {"url": "https://github.com/acme/agent.git", "token": PASSWORD},
            "source.token",
            "unknown setting",
        ),
        (
            {"url": "https://github.com/acme/agent.git", "webhook_secret": "short-" + PASSWORD[:4]},
            "source.webhook_secret",
            "16 to 256",
        ),
        (
            {"url": "https://github.com/acme/agent.git", "webhook_secret": PASSWORD * 3 + "\n"},
            "source.webhook_secret",
            "printable",
        ),
        (
            {
                "url": "https://github.com/acme/agent.git",
                "credential": {"type": "https_token", "token": f"two {PASSWORD}"},
            },
            "source.credential",
            "whitespace",
        ),
        (
            {
                "url": "https://github.com/acme/agent.git",
                "credential": {"type": PASSWORD, "token": PASSWORD},
            },
            "source.credential",
            "'https_token' or 'ssh_key'",
        ),
        (
            {
                "url": "https://github.com/acme/agent.git",
                "credential": {"type": "https_token", "token": PASSWORD, "extra": PASSWORD},
            },
            "source.credential.extra",
            "unknown setting",
        ),
        (
            {
                "url": "https://github.com/acme/agent.git",
                "credential": {"type": "ssh_key", "private_key": PASSWORD},
            },
            "source.credential",
            "not a private key",
        ),
        (
            {
                "url": "https://github.com/acme/agent.git",
                "credential": {
                    "type": "ssh_key",
                    "private_key": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PASSWORD}\n"
                    "-----END OPENSSH PRIVATE KEY-----",
                },
            },
            "source.credential",
            "takes an https_token",
        ),
    ],
)
async def test_connect_refuses_hostile_settings_without_echoing_secrets(
    tmp_path: Path,
    storage: InMemoryAdminStorage,
    encryption: AesGcmEncryption,
    team: Team,
    config: dict[str, Any],
    field: str,
    words: str,
) -> None:
    strict = GitProjectSource(
        GitSourceSettings(),
        storage=storage,
        encryption=encryption,
        cache_dir=tmp_path / "cache",
        resolve=fake_resolve,
    )

    with pytest.raises(InvalidInput) as refused:
        await strict.connect(team.id, config, default_branch="main")

    assert refused.value.details["field"] == field
    assert words in refused.value.message
    assert PASSWORD not in texts_of(refused.value)
    assert not (tmp_path / "cache").exists()


async def test_a_local_repository_outside_the_base_paths_is_refused(
    tmp_path: Path, storage: InMemoryAdminStorage, encryption: AesGcmEncryption, team: Team
) -> None:
    allowed = tmp_path / "repos"
    outside = make_repository(tmp_path / "elsewhere", "agent", APP)
    source = GitProjectSource(
        GitSourceSettings(file_base_paths=[allowed]),
        storage=storage,
        encryption=encryption,
        cache_dir=tmp_path / "cache",
    )

    with pytest.raises(InvalidInput) as refused:
        await source.connect(team.id, {"url": f"file://{outside}"}, default_branch="main")

    assert "not under any of file_base_paths" in refused.value.message


async def test_another_teams_cached_repository_is_never_a_local_repository(
    tmp_path: Path, storage: InMemoryAdminStorage, encryption: AesGcmEncryption, team: Team
) -> None:
    """Even when an operator's base path covers the platform's data dir, the cache of
    bare repositories (every team's) and the data dir itself cannot be connected."""
    data_dir = tmp_path / "data"
    repo = make_repository(tmp_path / "data" / "repos", "agent", APP)
    source = GitProjectSource(
        GitSourceSettings(file_base_paths=[tmp_path]),
        storage=storage,
        encryption=encryption,
        cache_dir=data_dir / "git-cache",
        data_dir=data_dir,
    )
    victim = await storage.teams.create(Team(name="Victim", slug="victim"))
    outside = make_repository(tmp_path / "shared", "agent", APP)
    connected = await source.connect(victim.id, {"url": f"file://{outside}"}, default_branch="main")
    cached = source.cache.root / connected.config["cache_key"]
    assert (cached / "HEAD").is_file()

    for url in (f"file://{cached}", str(cached), f"file://{repo}"):
        with pytest.raises(InvalidInput) as refused:
            await source.connect(team.id, {"url": url}, default_branch="main")
        assert "inside the platform's data or git cache folder" in refused.value.message
        assert refused.value.details["field"] == "source.url"


async def test_a_local_repository_under_a_base_path_is_keyed_by_its_real_path(
    tmp_path: Path, storage: InMemoryAdminStorage, encryption: AesGcmEncryption, team: Team
) -> None:
    repo = make_repository(tmp_path / "repos", "agent", APP)
    source = GitProjectSource(
        GitSourceSettings(file_base_paths=[tmp_path / "repos"]),
        storage=storage,
        encryption=encryption,
        cache_dir=tmp_path / "cache",
    )

    connection = await source.connect(team.id, {"url": f"file://{repo}"}, default_branch="main")

    assert connection.config["repository_key"] == os.path.realpath(repo)
    assert connection.source.metadata["valid"] is True


# -- names --------------------------------------------------------------------------


def test_one_repository_has_one_key_across_url_forms() -> None:
    settings = GitSourceSettings()
    forms = [
        "https://github.com/Acme/Agent.git",
        "https://github.com/acme/agent",
        "https://github.com/acme/agent/",
        "git@github.com:acme/agent.git",
        "ssh://git@github.com/acme/agent",
        "ssh://git@github.com:22/Acme/Agent.git",
    ]

    keys = {
        repository_key_for(check_repository_url(f, settings, resolve=fake_resolve)) for f in forms
    }
    from_webhooks = {repository_key_from_text(f) for f in forms}

    assert keys == from_webhooks == {"github.com/acme/agent"}
    assert (
        repository_key_from_text("https://github.com/acme/agent/issues/1")
        != "github.com/acme/agent"
    )


def test_cache_keys_are_per_team() -> None:
    url = check_repository_url(
        "https://github.com/acme/agent.git", GitSourceSettings(), resolve=fake_resolve
    )

    one, two = cache_key_for("team-1", url), cache_key_for("team-2", url)

    assert one != two
    assert len(one) == len(two) == 32


async def test_two_teams_never_share_a_cached_repository(
    git_source: GitProjectSource, served: GitHttpServer, storage: InMemoryAdminStorage, team: Team
) -> None:
    other = await storage.teams.create(Team(name="Other", slug="other"))
    url = served.url(repository(served))

    mine = await git_source.connect(team.id, {"url": url}, default_branch="main")
    theirs = await git_source.connect(other.id, {"url": url}, default_branch="main")

    assert mine.config["cache_key"] != theirs.config["cache_key"]
    assert mine.source.id != theirs.source.id
    assert mine.config["repository_key"] == theirs.config["repository_key"]
    for connection in (mine, theirs):
        assert (git_source.cache.root / connection.config["cache_key"] / "HEAD").is_file()


# -- projects from storage -------------------------------------------------------------


async def test_projects_are_listed_per_team_and_found_by_source_id(
    git_source: GitProjectSource, served: GitHttpServer, storage: InMemoryAdminStorage, team: Team
) -> None:
    other = await storage.teams.create(Team(name="Other", slug="other"))
    mine = await connected(git_source, storage, team, {"url": served.url(repository(served))})
    theirs = await connected(git_source, storage, other, {"url": served.url(repository(served))})

    everything = {s.id for s in await git_source.list_projects()}
    only_mine = {s.id for s in await git_source.list_projects(team.id)}
    found = await git_source.get_project(str(mine.source_id))
    described = await git_source.source_for(mine)

    assert everything == {mine.source_id, theirs.source_id}
    assert only_mine == {mine.source_id}
    assert found == described
    assert found.name == "weather-agent"
    assert found.package_manager == "pnpm"
    assert "commit_sha" not in found.metadata
    with pytest.raises(NotFound):
        await git_source.get_project("f" * 32)


# -- pinning ----------------------------------------------------------------------------


async def test_pin_resolves_branches_tags_commits_and_pull_request_refs(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
) -> None:
    name = repository(served)
    repo = served.root / f"{name}.git"
    first = tag(repo, "v1.0.0", message="release")
    second = commit(repo, {"src/mastra/index.ts": "export const v = 2;\n"}, "second\n\nbody")
    feature = commit(repo, {"NEW.md": "from a pull request\n"}, "pr work", ref="refs/pull/7/head")
    project = await connected(git_source, storage, team, {"url": served.url(name)})
    source = await git_source.source_for(project)

    results = {
        ref: await git_source.pin(source, ref) for ref in ("main", "v1.0.0", first, "pull/7/head")
    }

    assert {ref: revision.sha for ref, (_, revision) in results.items()} == {
        "main": second,
        "v1.0.0": first,
        first: first,
        "pull/7/head": feature,
    }
    pinned, revision = results["main"]
    assert revision.ref == "main"
    assert revision.message == "second\n\nbody"
    assert revision.author == f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>"
    assert pinned.metadata["commit_sha"] == second
    assert pinned.metadata["ref"] == "main"
    assert pinned.id == source.id
    copy = await git_source.get_project_path(results["pull/7/head"][0], tmp_path / "pr-7")
    assert (copy / "NEW.md").read_text() == "from a pull request\n"


async def test_a_pinned_copy_is_that_commit_even_after_new_commits(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
) -> None:
    name = repository(served)
    project = await connected(git_source, storage, team, {"url": served.url(name)})
    pinned, revision = await git_source.pin(await git_source.source_for(project), "main")
    commit(served.root / f"{name}.git", {"src/mastra/index.ts": "export const later = 1;\n"})

    copy = await git_source.get_project_path(pinned, tmp_path / "build")

    assert (copy / "src/mastra/index.ts").read_text() == "export const mastra = {};\n"
    assert revision.sha == pinned.metadata["commit_sha"]


async def test_a_commit_lost_to_a_force_push_cannot_be_pinned_or_copied(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    encryption: AesGcmEncryption,
    settings: GitSourceSettings,
    team: Team,
    tmp_path: Path,
) -> None:
    name = repository(served)
    repo = served.root / f"{name}.git"
    project = await connected(git_source, storage, team, {"url": served.url(name)})
    source = await git_source.source_for(project)
    pushed = commit(repo, {"src/mastra/index.ts": "export const pushed = 1;\n"})
    pinned, _ = await git_source.pin(source, "main")
    lost = commit(repo, {"src/mastra/index.ts": "export const lost = 1;\n"})
    force_push(repo, APP)
    # Another worker: its own, empty cache.
    worker = GitProjectSource(
        settings, storage=storage, encryption=encryption, cache_dir=tmp_path / "worker-cache"
    )

    with pytest.raises(CommitNotFound) as never_fetched:
        await git_source.pin(source, lost)
    with pytest.raises(CommitNotFound) as elsewhere:
        await worker.get_project_path(pinned, tmp_path / "build")

    assert lost in never_fetched.value.message
    assert "force-pushed" in never_fetched.value.message
    assert pushed in elsewhere.value.message
    assert not (tmp_path / "build").exists()


async def test_a_deleted_repository_is_unreadable(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
) -> None:
    name = repository(served)
    project = await connected(git_source, storage, team, {"url": served.url(name)})
    source = await git_source.source_for(project)
    shutil.rmtree(served.root / f"{name}.git")

    with pytest.raises(RepositoryUnreadable):
        await git_source.pin(source, "main")
    with pytest.raises(RepositoryUnreadable):
        await git_source.get_project_path(source, tmp_path / "build")
    assert await git_source.validate_access(source) is False


async def test_a_source_that_is_not_stored_is_not_read(
    git_source: GitProjectSource, served: GitHttpServer, team: Team, tmp_path: Path
) -> None:
    connection = await git_source.connect(
        team.id, {"url": served.url(repository(served))}, default_branch="main"
    )

    with pytest.raises(NotFound):
        await git_source.pin(connection.source, "main")
    assert await git_source.validate_access(connection.source) is False


async def test_the_stored_url_wins_over_a_forged_source(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
) -> None:
    project = await connected(git_source, storage, team, {"url": served.url(repository(served))})
    source = await git_source.source_for(project)
    other = repository(served, {**APP, "OTHER": "another repository\n"})
    forged = source.model_copy(
        update={
            "path": served.url(other),
            "metadata": {**source.metadata, "url": served.url(other)},
        }
    )

    copy = await git_source.get_project_path(forged, tmp_path / "build")

    assert not (copy / "OTHER").exists()


# -- copies for builds -----------------------------------------------------------------


async def test_copies_leave_out_dependencies_and_build_output_at_any_depth(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
) -> None:
    files: dict[str, FileContent] = {
        "package.json": '{"private": true, "workspaces": ["apps/*"]}',
        "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
        "node_modules/left-pad/index.js": "x\n",
        "apps/agent/package.json": json.dumps(PACKAGE),
        "apps/agent/src/mastra/index.ts": "export const mastra = {};\n",
        "apps/agent/node_modules/.bin/mastra": Executable("#!/bin/sh\n"),
        "apps/agent/dist/index.js": "built\n",
        "apps/agent/.next/cache": "x\n",
        "apps/agent/.mastra/output/index.mjs": "x\n",
        "apps/agent/src/dist-tools.ts": "kept\n",
        "apps/agent/distribution.md": "kept\n",
    }
    project = await connected(
        git_source,
        storage,
        team,
        {"url": served.url(repository(served, files)), "subdirectory": "apps/agent"},
    )

    root = await git_source.get_project_path(
        await git_source.source_for(project), tmp_path / "build"
    )

    written = sorted(
        str(Path(folder, name).relative_to(tmp_path / "build"))
        for folder, _, names in os.walk(tmp_path / "build")
        for name in names
    )
    assert root == tmp_path / "build" / "apps" / "agent"
    assert written == [
        "apps/agent/distribution.md",
        "apps/agent/package.json",
        "apps/agent/src/dist-tools.ts",
        "apps/agent/src/mastra/index.ts",
        "package.json",
        "pnpm-lock.yaml",
    ]


# -- credentials ------------------------------------------------------------------------


async def test_a_private_repository_needs_its_token(
    git_source: GitProjectSource, private: GitHttpServer, team: Team
) -> None:
    url = private.url(repository(private))

    with pytest.raises(RepositoryUnreadable) as anonymous:
        await git_source.connect(team.id, {"url": url}, default_branch="main")
    with pytest.raises(RepositoryUnreadable) as wrong:
        await git_source.connect(
            team.id,
            {"url": url, "credential": {"type": "https_token", "token": "ghs_" + PASSWORD}},
            default_branch="main",
        )

    for refused in (anonymous.value, wrong.value):
        assert refused.details["field"] == "source.url"
        assert "does not exist or the credential cannot read it" in refused.message
    assert PASSWORD not in texts_of(wrong.value)


async def test_the_token_stays_encrypted_in_storage_and_out_of_everything_else(
    git_source: GitProjectSource,
    private: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
    spawned: list[Spawned],
) -> None:
    url = private.url(repository(private))
    with capture_logs() as logs:
        connection = await git_source.connect(
            team.id,
            {"url": url, "credential": {"type": "https_token", "token": TOKEN}},
            default_branch="main",
        )
        project = await register(storage, team.id, connection)
        source = await git_source.source_for(project)
        pinned, revision = await git_source.pin(source, "main")
        root = await git_source.get_project_path(pinned, tmp_path / "build")
        listed = await git_source.list_projects()
        accessible = await git_source.validate_access(source)

    ciphertext = connection.config[SOURCE_SECRETS_KEY]["credential"]
    assert connection.config["credential_type"] == "https_token"
    assert ciphertext.startswith("v1:k1:")
    assert accessible is True
    assert (root / "src/mastra/index.ts").is_file()
    shown = [connection.source, source, pinned, revision, *listed]
    for text in [*(m.model_dump_json() for m in shown), json.dumps(logs, default=str)]:
        assert TOKEN not in text
        assert ciphertext not in text
    assert TOKEN not in json.dumps(connection.config)
    assert not any(TOKEN in " ".join(s.argv) or TOKEN.encode() in s.cmdline for s in spawned)
    for folder, _, names in os.walk(tmp_path / "build"):
        for name in names:
            assert TOKEN.encode() not in Path(folder, name).read_bytes()
    for folder, _, names in os.walk(git_source.cache.root):
        for name in names:
            assert TOKEN.encode() not in Path(folder, name).read_bytes()


async def test_a_credential_that_cannot_be_decrypted_is_a_clear_error(
    git_source: GitProjectSource,
    private: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    settings: GitSourceSettings,
    tmp_path: Path,
) -> None:
    connection = await git_source.connect(
        team.id,
        {
            "url": private.url(repository(private)),
            "credential": {"type": "https_token", "token": TOKEN},
        },
        default_branch="main",
    )
    project = await register(storage, team.id, connection)
    rekeyed = GitProjectSource(
        settings,
        storage=storage,
        encryption=AesGcmEncryption({"k1": AesGcmEncryption.generate_key()}, "k1"),
        cache_dir=tmp_path / "other-cache",
    )

    with pytest.raises(InvalidInput) as unreadable:
        await rekeyed.pin(await rekeyed.source_for(project), "main")

    assert "cannot be decrypted" in unreadable.value.message
    assert await rekeyed.validate_access(await rekeyed.source_for(project)) is False


# -- the plugin ---------------------------------------------------------------------------


def test_the_entry_point_offers_the_git_source_provider() -> None:
    manager = PluginManager(builtins=False)
    manager.load_entrypoints(allow=["source-git"])

    spec = manager.get_provider("source", "git")

    assert spec.settings_model is GitSourceSettings
    assert spec.factory is git_plugin.create_source
    assert GitProjectSource.type == "git"
    assert GitProjectSource.connects is True


async def test_the_factory_needs_storage_and_encryption(
    tmp_path: Path, storage: InMemoryAdminStorage, encryption: AesGcmEncryption
) -> None:
    settings = GitSourceSettings()
    bare = ProviderContext(settings=MastraAdminSettings(), data_dir=tmp_path)

    with pytest.raises(Unavailable, match="storage"):
        git_plugin.create_source(settings, bare)
    bare.storage = storage
    with pytest.raises(Unavailable, match="encryption"):
        git_plugin.create_source(settings, bare)
    bare.encryption = encryption
    made = git_plugin.create_source(settings, bare)

    assert isinstance(made, GitProjectSource)
    assert made.cache.root == tmp_path / "git-cache"
    assert await made.list_projects() == []


async def test_two_copies_and_a_pin_at_once(
    git_source: GitProjectSource,
    served: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    tmp_path: Path,
) -> None:
    project = await connected(git_source, storage, team, {"url": served.url(repository(served))})
    source = await git_source.source_for(project)

    one, two, (_, revision) = await asyncio.gather(
        git_source.get_project_path(source, tmp_path / "a"),
        git_source.get_project_path(source, tmp_path / "b"),
        git_source.pin(source, "main"),
    )

    assert (one / "package.json").read_bytes() == (two / "package.json").read_bytes()
    assert len(revision.sha) == 40
