"""The core's side of git webhooks and pinned builds, on a source that connects,
pins refs and reads a small delivery format of its own (the git source's reading of
GitHub's format is tested with that distribution, the whole flow end to end).

The service acts only on verified deliveries, once per delivery id: a push builds the
deployments that follow the branch, a pull request gets a preview (without secrets
when it comes from a fork), closing it removes the preview; builds record the commit
the source resolved; a rollback may name a commit."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.encryption import EncryptionProvider
from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mastra_admin.core.inputs import (
    CreateDeployment,
    CreateProject,
    CreateTeam,
    CreateUser,
    DeployRequest,
    InviteMember,
    RollbackRequest,
    SetEnvVar,
    UpdateProject,
)
from mastra_admin.core.models import (
    BuildStatus,
    DeploymentType,
    Project,
    ProjectSettings,
    User,
)
from mastra_admin.core.services.webhooks import (
    ReplayedDelivery,
    UnknownRepository,
    UnverifiedDelivery,
)
from mastra_admin.core.source import (
    ProjectSource,
    PullRequest,
    RepositoryEvent,
    Revision,
    SourceConnection,
)
from mastra_admin.core.testing.fakes import FakeSource

from .conftest import AdminFactory

pytestmark = pytest.mark.asyncio

SECRET = "hook-secret-0123456789"
SHA = {name: hashlib.sha1(name.encode()).hexdigest() for name in ("one", "two", "three", "pr")}


class RepositorySource(FakeSource):
    """A source of repositories: projects connect with ``{"repo", "secret"}``; refs
    resolve through ``refs``; deliveries are ``{"event", "repo", ...}`` signed with
    HMAC-SHA256 in ``x-signature``."""

    type: ClassVar[str] = "repo"
    connects: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.encryption: EncryptionProvider | None = None
        self.refs: dict[str, str] = {"main": SHA["one"]}
        self.pinned: list[str] = []

    async def connect(
        self, team_id: str, config: Mapping[str, Any], *, default_branch: str
    ) -> SourceConnection:
        if not str(config.get("repo", "")).startswith("repo:"):
            raise InvalidInput("not a repository", details={"field": "source.repo"})
        assert self.encryption is not None
        source = self.add(f"{team_id}-{config['repo']}")
        secrets = {"webhook_secret": self.encryption.encrypt(str(config["secret"]))}
        return SourceConnection(
            source=source,
            config={"repository_key": config["repo"], "secrets": secrets},
        )

    async def source_for(self, project: Project) -> ProjectSource:
        return self.projects[project.source_id or ""]

    async def pin(self, source: ProjectSource, ref: str) -> tuple[ProjectSource, Revision] | None:
        self.pinned.append(ref)
        sha = self.refs.get(ref, ref)
        if sha not in self.refs.values():
            raise InvalidInput(f"commit {ref} is not in the repository (force-pushed?)")
        revision = Revision(ref=ref, sha=sha, message=f"message of {sha[:7]}", author="A <a@b>")
        return source.model_copy(update={"metadata": {**source.metadata, "sha": sha}}), revision

    def read_webhook(self, headers: Mapping[str, str], body: bytes) -> RepositoryEvent | None:
        try:
            data = json.loads(body)
            pull = data.get("pull")
            return RepositoryEvent(
                kind=data["kind"],
                event=data["kind"],
                delivery_id=headers["x-delivery"],
                repository_key=data["repo"],
                branch=data.get("branch"),
                sha=data.get("sha"),
                message=data.get("message"),
                pull_request=PullRequest(**pull) if pull else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed delivery: {exc}") from exc

    def verify_webhook(self, project: Project, headers: Mapping[str, str], body: bytes) -> bool:
        assert self.encryption is not None
        stored = project.source_config.get("secrets", {}).get("webhook_secret")
        if not stored:
            return False
        key = self.encryption.decrypt(stored).encode()
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("x-signature", ""))


class Repos:
    def __init__(self, admin: MastraAdmin, source: RepositorySource, owner: User) -> None:
        self.admin, self.source, self.owner = admin, source, owner
        self.deliveries = 0

    async def deliver(
        self, payload: dict[str, Any], *, secret: str = SECRET, delivery: str | None = None
    ) -> Any:
        self.deliveries += 1
        body = json.dumps(payload).encode()
        headers = {
            "x-delivery": delivery or f"d-{self.deliveries}",
            "x-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        return await self.admin.receive_webhook(headers, body)

    async def drain(self) -> None:
        orchestrator = self.admin.deployments.orchestrator
        assert orchestrator is not None
        while await orchestrator.run_once() is not None:
            pass


@pytest.fixture
async def repos(make_admin: AdminFactory) -> Repos:
    source = RepositorySource()
    admin = await make_admin(source=source)
    source.encryption = admin.encryption
    owner, _ = await admin.bootstrap_admin("owner@example.com", name="Owner")
    return Repos(admin, source, owner)


async def _project(repos: Repos, repo: str = "repo:acme/agent", name: str = "Agent") -> Project:
    team = await repos.admin.create_team(repos.owner.id, CreateTeam(name=f"Team {name}"))
    return await repos.admin.create_project(
        repos.owner.id,
        team.id,
        CreateProject(name=name, source_type="repo", source={"repo": repo, "secret": SECRET}),
    )


async def test_a_connected_project_keeps_its_secrets_encrypted_and_never_shows_them(
    repos: Repos,
) -> None:
    project = await _project(repos)

    assert "secrets" not in project.source_config
    assert project.source_config["repository_key"] == "repo:acme/agent"
    stored = await repos.admin.storage.projects.get(project.id)
    assert stored is not None
    ciphertext = stored.source_config["secrets"]["webhook_secret"]
    assert SECRET not in json.dumps(stored.source_config)
    assert repos.admin.require_encryption().decrypt(ciphertext) == SECRET
    listed = await repos.admin.list_projects(repos.owner.id, project.team_id)
    assert all("secrets" not in p.source_config for p in listed.items)
    renamed = await repos.admin.update_project(repos.owner.id, project.id, UpdateProject(name="B"))
    assert "secrets" not in renamed.source_config


async def test_a_connecting_source_needs_settings_and_refuses_bad_ones(repos: Repos) -> None:
    team = await repos.admin.create_team(repos.owner.id, CreateTeam(name="T"))
    with pytest.raises(InvalidInput, match="give `source`"):
        await repos.admin.create_project(
            repos.owner.id, team.id, CreateProject(name="A", source_id="whatever")
        )
    with pytest.raises(InvalidInput, match="not a repository") as caught:
        await repos.admin.create_project(
            repos.owner.id, team.id, CreateProject(name="A", source={"repo": "ext::sh -c id"})
        )
    assert caught.value.details == {"field": "source.repo"}
    with pytest.raises(ValueError, match="exactly one"):
        CreateProject(name="A", source_id="x", source={"repo": "repo:a"})
    with pytest.raises(ValueError, match="exactly one"):
        CreateProject(name="A")


async def test_a_build_is_pinned_and_records_the_commit(repos: Repos) -> None:
    project = await _project(repos)
    deployment = await repos.admin.create_deployment(
        repos.owner.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    first = await repos.admin.deploy(repos.owner.id, deployment.id)
    await repos.drain()
    built = await repos.admin.get_build(repos.owner.id, first.id)
    assert built.status is BuildStatus.SUCCEEDED
    assert (built.commit_sha, built.commit_author) == (SHA["one"], "A <a@b>")
    assert built.commit_message == f"message of {SHA['one'][:7]}"
    assert repos.source.pinned == ["main"]

    repos.source.refs["v2"] = SHA["two"]
    tagged = await repos.admin.deploy(repos.owner.id, deployment.id, DeployRequest(ref="v2"))
    await repos.drain()
    built = await repos.admin.get_build(repos.owner.id, tagged.id)
    assert (built.ref, built.commit_sha) == ("v2", SHA["two"])

    # A commit that is gone fails the build with the source's reason.
    gone = await repos.admin.deploy(repos.owner.id, deployment.id, DeployRequest(ref="f" * 40))
    await repos.drain()
    failed = await repos.admin.get_build(repos.owner.id, gone.id)
    assert failed.status is BuildStatus.FAILED
    assert "force-pushed" in (failed.error_message or "")

    # A rollback may name the commit (a prefix will do) and starts its kept output.
    back = await repos.admin.rollback(
        repos.owner.id, deployment.id, RollbackRequest(commit_sha=SHA["one"][:8].upper())
    )
    assert back.artifact_build_id == first.id
    assert back.commit_sha == SHA["one"]
    pins = len(repos.source.pinned)
    await repos.drain()
    assert len(repos.source.pinned) == pins, "a rollback does not fetch"
    with pytest.raises(NotFound):
        await repos.admin.rollback(
            repos.owner.id, deployment.id, RollbackRequest(commit_sha="abcdef0")
        )
    with pytest.raises(ValueError):
        RollbackRequest(commit_sha="xyz1234")
    with pytest.raises(ValueError):
        RollbackRequest(build_id="b", commit_sha="abcdef0")


async def test_push_builds_the_deployments_that_follow_the_branch(repos: Repos) -> None:
    project = await _project(repos)
    admin = repos.admin
    production = await admin.create_deployment(
        repos.owner.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    staging = await admin.create_deployment(
        repos.owner.id, project.id, CreateDeployment(type=DeploymentType.STAGING, branch="next")
    )
    repos.source.refs["main"] = SHA["two"]
    push = {"kind": "push", "repo": "repo:acme/agent", "branch": "main", "sha": SHA["two"]}

    outcome = await repos.deliver({**push, "message": "fix"})

    assert outcome.outcome == "queued"
    assert outcome.deployments == [production.id]
    [build_id] = outcome.builds
    build = await admin.get_build(repos.owner.id, build_id)
    assert (build.trigger.value, build.commit_sha, build.triggered_by) == (
        "webhook",
        SHA["two"],
        "webhook",
    )
    # Pushes that come in before a worker picks the first up collapse to the newest.
    repos.source.refs["later"] = SHA["three"]
    newer = await repos.deliver({**push, "sha": SHA["three"]})
    older = await admin.get_build(repos.owner.id, build_id)
    assert older.status is BuildStatus.CANCELLED
    assert newer.builds[0] in (older.error_message or "")
    await repos.drain()
    done = await admin.get_build(repos.owner.id, newer.builds[0])
    assert done.status is BuildStatus.SUCCEEDED
    assert done.commit_sha == SHA["three"]

    # A branch nothing follows, a tag, a deleted branch, a stopped deployment: ignored.
    ignored = await repos.deliver({**push, "branch": "feature"})
    assert ignored.outcome == "ignored"
    assert "feature" in (ignored.reason or "")
    tag = await repos.deliver({**push, "branch": None})
    assert tag.outcome == "ignored"
    assert not tag.builds
    deleted = await repos.deliver({**push, "sha": None})
    assert deleted.outcome == "ignored"
    await admin.stop(repos.owner.id, staging.id)
    stopped = await repos.deliver({**push, "branch": "next"})
    assert stopped.outcome == "ignored"
    assert not stopped.builds


async def test_hostile_deliveries_are_refused_and_act_on_nothing(repos: Repos) -> None:
    project = await _project(repos)
    await repos.admin.create_deployment(
        repos.owner.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    push = {"kind": "push", "repo": "repo:acme/agent", "branch": "main", "sha": SHA["one"]}

    with pytest.raises(UnverifiedDelivery) as forged:
        await repos.deliver(push, secret="someone-elses-secret")
    assert isinstance(forged.value, Unauthenticated)
    assert forged.value.code == "webhook_bad_signature"
    with pytest.raises(UnknownRepository) as unknown:
        await repos.deliver({**push, "repo": "repo:other/agent"})
    assert isinstance(unknown.value, NotFound)
    with pytest.raises(InvalidInput):
        await repos.admin.receive_webhook({"x-delivery": "d"}, b"[1, 2")

    accepted = await repos.deliver(push, delivery="same-id")
    assert accepted.outcome == "queued"
    with pytest.raises(ReplayedDelivery) as replayed:
        await repos.deliver(push, delivery="same-id")
    assert isinstance(replayed.value, Conflict)
    assert replayed.value.code == "webhook_replayed"
    # A forged delivery does not use up an id: the real one with that id still counts.
    with pytest.raises(UnverifiedDelivery):
        await repos.deliver(push, delivery="fresh-id", secret="someone-elses-secret")
    assert (await repos.deliver(push, delivery="fresh-id")).outcome == "queued"
    builds = await repos.admin.storage.builds.list_by_status([BuildStatus.QUEUED])
    assert len(builds) == 1, "only the newest push stays queued"


async def test_a_repository_shared_by_two_teams_acts_only_for_the_signer(repos: Repos) -> None:
    ours = await _project(repos, name="Ours")
    team = await repos.admin.create_team(repos.owner.id, CreateTeam(name="Theirs"))
    theirs = await repos.admin.create_project(
        repos.owner.id,
        team.id,
        CreateProject(
            name="Theirs",
            source_type="repo",
            source={"repo": "repo:acme/agent", "secret": "their-own-secret-123"},
        ),
    )
    for project in (ours, theirs):
        await repos.admin.create_deployment(
            repos.owner.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
        )

    outcome = await repos.deliver(
        {"kind": "push", "repo": "repo:acme/agent", "branch": "main", "sha": SHA["one"]}
    )

    assert outcome.projects == [ours.id]
    assert len(outcome.builds) == 1


@pytest.mark.parametrize(
    ("from_fork", "allowed", "withheld"),
    [(False, False, False), (True, False, True), (True, True, False)],
)
async def test_a_pull_request_gets_a_preview_until_it_closes(
    repos: Repos, from_fork: bool, allowed: bool, withheld: bool
) -> None:
    project = await _project(repos)
    admin = repos.admin
    if allowed:
        project = await admin.update_project(
            repos.owner.id,
            project.id,
            UpdateProject(settings=ProjectSettings(fork_previews_get_secrets=True)),
        )
    await admin.set_env_var(repos.owner.id, project.id, SetEnvVar(key="API_KEY", value="k-1"))
    await admin.set_env_var(
        repos.owner.id, project.id, SetEnvVar(key="UNITS", value="c", is_secret=False)
    )
    repos.source.refs["pr"] = SHA["pr"]
    pull = {
        "number": 7,
        "action": "opened",
        "head_sha": SHA["pr"],
        "head_branch": "patch-1",
        "from_fork": from_fork,
        "title": "Add snow",
    }
    event = {"kind": "pull_request", "repo": "repo:acme/agent", "pull": pull}

    opened = await repos.deliver(event)

    assert opened.outcome == "queued"
    [preview_id] = opened.deployments
    preview = await admin.get_deployment(repos.owner.id, preview_id)
    assert (preview.type, preview.branch) == (DeploymentType.PREVIEW, "pull/7/head")
    assert preview.secrets_withheld is withheld
    assert preview.expires_at is not None
    env, _ = await admin.build_env(preview, project)
    assert env["UNITS"] == "c"
    assert ("API_KEY" in env) is not withheld
    await repos.drain()
    built = await admin.get_build(repos.owner.id, opened.builds[0])
    assert built.status is BuildStatus.SUCCEEDED
    assert built.commit_sha == SHA["pr"]

    updated = await repos.deliver({**event, "pull": {**pull, "action": "updated"}})
    assert updated.deployments == [preview_id], "an update rebuilds the same preview"

    closed = await repos.deliver({**event, "pull": {**pull, "action": "closed"}})
    assert closed.outcome == "removed"
    assert closed.deployments == [preview_id]
    assert await admin.storage.deployments.get(preview_id) is None
    again = await repos.deliver({**event, "pull": {**pull, "action": "closed"}})
    assert again.outcome == "ignored"


async def test_only_owners_and_admins_give_forks_the_secrets(repos: Repos) -> None:
    project = await _project(repos)
    member = await repos.admin.create_user(
        repos.owner.id, CreateUser(email="member@example.com", name="Member")
    )
    _, token = await repos.admin.invite_member(
        repos.owner.id, project.team_id, InviteMember(email="member@example.com")
    )
    await repos.admin.accept_invite(member.id, token)
    generous = UpdateProject(settings=ProjectSettings(fork_previews_get_secrets=True))

    with pytest.raises(PermissionDenied, match="project:commands:write"):
        await repos.admin.update_project(member.id, project.id, generous)
    updated = await repos.admin.update_project(repos.owner.id, project.id, generous)
    assert updated.settings.fork_previews_get_secrets is True
