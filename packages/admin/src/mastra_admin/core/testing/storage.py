"""``StorageConformance``: what every ``AdminStorage`` must do, as a pytest class.

An adapter subclasses it, sets ``__test__ = True`` and overrides the ``storage``
fixture to yield an initialised, EMPTY storage (system roles seeded by ``init`` are
expected; nothing else) and to close it afterwards::

    from mastra_admin.core.testing import StorageConformance

    class TestMyStorage(StorageConformance):
        __test__ = True

        @pytest.fixture
        async def storage(self):
            storage = MyStorage(...)
            await storage.init()
            yield storage
            await storage.close()

Every rule of the docstrings in ``mastra_admin.core.storage`` has a test here:
ordering, ``Conflict`` naming the field, ``NotFound`` for a missing parent, partial
updates, cascades, compare-and-set ``transition``, the build queue (FIFO, one active
build per deployment, ``max_active``, many concurrent dequeuers and no build handed
out twice), concurrency-safe ``ensure_system_roles``, webhook deliveries that are
new exactly once, and custom domains whose host names are unique in the installation
whatever their case and that go with their deployment. Identifiers are the models'
own (UUID text); the suite never depends on how an adapter orders equal keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

import pytest

from mastra_admin.core.errors import Conflict, NotFound
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    BuildTrigger,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    Domain,
    DomainStatus,
    EnvVarOverride,
    HealthStatus,
    Project,
    ProjectApiToken,
    ProjectEnvVar,
    ProjectSettings,
    ResourceType,
    Role,
    RoleAssignment,
    Route,
    RouteStatus,
    RunningServer,
    Team,
    TeamInstallation,
    TeamInvite,
    TeamMember,
    TeamRole,
    TeamSettings,
    User,
    UserApiToken,
    new_id,
    utcnow,
)
from mastra_admin.core.storage import (
    AdminStorage,
    BuildUpdate,
    DeploymentUpdate,
    DomainUpdate,
    ProjectUpdate,
    RoleUpdate,
    RouteUpdate,
    RunningServerUpdate,
    TeamUpdate,
    UserUpdate,
)

__all__ = ["StorageConformance"]

T = TypeVar("T")

# A fixed past instant: explicit timestamps make every ordering assertion exact.
T0 = (utcnow() - timedelta(days=2)).replace(microsecond=0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def gather(count: int, make: Callable[[int], Awaitable[T]]) -> list[T]:
    """Run ``make(i)`` for ``i`` in ``range(count)`` concurrently."""
    return list(await asyncio.gather(*(make(i) for i in range(count))))


class World:
    """Creates related entities with sensible defaults, in a storage under test."""

    def __init__(self, storage: AdminStorage) -> None:
        self.s = storage
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def user(self, **fields: Any) -> User:
        n = self._next()
        fields.setdefault("email", f"user{n}@example.com")
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.users.create(User(**fields))

    async def team(self, **fields: Any) -> Team:
        n = self._next()
        fields.setdefault("name", f"team {n:04d}")
        fields.setdefault("slug", f"team-{n}")
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.teams.create(Team(**fields))

    async def project(self, team: Team | None = None, **fields: Any) -> Project:
        team = team or await self.team()
        n = self._next()
        fields.setdefault("name", f"project {n:04d}")
        fields.setdefault("slug", f"project-{n}")
        fields.setdefault("source_type", "local")
        fields.setdefault("source_config", {"source_id": f"src-{n}", "path": f"/srv/p{n}"})
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.projects.create(Project(team_id=team.id, **fields))

    async def deployment(self, project: Project | None = None, **fields: Any) -> Deployment:
        project = project or await self.project()
        n = self._next()
        fields.setdefault("type", DeploymentType.PRODUCTION)
        fields.setdefault("branch", f"branch-{n}")
        fields.setdefault("slug", f"deploy-{n}")
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.deployments.create(Deployment(project_id=project.id, **fields))

    async def build(self, deployment: Deployment | None = None, **fields: Any) -> Build:
        deployment = deployment or await self.deployment()
        n = self._next()
        fields.setdefault("triggered_by", "tester")
        fields.setdefault("queued_at", at(n))
        fields.setdefault("created_at", at(n))
        return await self.s.builds.create(Build(deployment_id=deployment.id, **fields))

    async def server(self, build: Build | None = None, **fields: Any) -> RunningServer:
        build = build or await self.build()
        n = self._next()
        fields.setdefault("host", "127.0.0.1")
        fields.setdefault("port", 4100 + n % 100)
        fields.setdefault("started_at", at(n))
        return await self.s.servers.create(
            RunningServer(deployment_id=build.deployment_id, build_id=build.id, **fields)
        )

    async def route(self, deployment: Deployment | None = None, **fields: Any) -> Route:
        deployment = deployment or await self.deployment()
        n = self._next()
        fields.setdefault("subdomain", f"app-{n}")
        fields.setdefault("target_host", "127.0.0.1")
        fields.setdefault("target_port", 4100 + n % 100)
        fields.setdefault("public_url", f"http://app-{n}.localhost")
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.routes.create(
            Route(deployment_id=deployment.id, project_id=deployment.project_id, **fields)
        )

    async def domain(self, deployment: Deployment | None = None, **fields: Any) -> Domain:
        deployment = deployment or await self.deployment()
        project = await self.s.projects.get(deployment.project_id)
        assert project is not None
        n = self._next()
        fields.setdefault("hostname", f"app-{n}.example.com")
        fields.setdefault("verification_token", f"mastra-admin-verify=token-{n}")
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.domains.create(
            Domain(
                team_id=project.team_id,
                project_id=project.id,
                deployment_id=deployment.id,
                **fields,
            )
        )

    async def role(self, team: Team | None, **fields: Any) -> Role:
        n = self._next()
        fields.setdefault("name", f"role-{n:04d}")
        fields.setdefault("permissions", ["project:read"])
        fields.setdefault("created_at", at(n))
        fields.setdefault("updated_at", at(n))
        return await self.s.rbac.create_role(Role(team_id=team.id if team else None, **fields))


def _ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


def _conflict_field(info: pytest.ExceptionInfo[Conflict]) -> Any:
    return info.value.details.get("field")


class StorageConformance:
    """The storage conformance suite. Override ``storage``; set ``__test__ = True``."""

    __test__ = False

    dequeue_workers: ClassVar[int] = 8
    """How many concurrent dequeuers the concurrency tests start."""

    @pytest.fixture
    async def storage(self) -> AsyncIterator[AdminStorage]:
        raise NotImplementedError("override the 'storage' fixture in the adapter's test class")
        yield  # pragma: no cover  # noqa: PT022  (the override yields and tears down)

    @pytest.fixture
    def world(self, storage: AdminStorage) -> World:
        return World(storage)

    # --- life cycle ----------------------------------------------------------------

    async def test_init_seeds_the_system_roles_and_is_idempotent(
        self, storage: AdminStorage
    ) -> None:
        from mastra_admin.core.rbac import system_roles

        await storage.init()
        await asyncio.gather(storage.init(), storage.init())
        roles = await storage.rbac.list_roles()
        names = {r.name for r in roles if r.is_system}
        assert {r.name for r in system_roles()} <= names
        assert len(names) == len([r for r in roles if r.is_system])
        await storage.ping()

    async def test_a_new_storage_holds_no_entities(self, storage: AdminStorage) -> None:
        assert await storage.users.count() == 0
        assert await storage.teams.count() == 0
        assert await storage.projects.count() == 0
        assert await storage.builds.queue_length() == 0
        assert await storage.builds.count_by_status() == {}
        assert await storage.routes.list_all() == []
        assert await storage.servers.list_active() == []
        assert await storage.webhooks.forget_before(utcnow() + timedelta(days=1)) == 0
        assert await storage.domains.list_verified() == []
        assert await storage.domains.list_by_status(list(DomainStatus)) == []

    async def test_unknown_or_malformed_ids_read_as_absent(self, storage: AdminStorage) -> None:
        for missing in (new_id(), "no-such-id"):
            assert await storage.users.get(missing) is None
            assert await storage.teams.get(missing) is None
            assert await storage.projects.get(missing) is None
            assert await storage.deployments.get(missing) is None
            assert await storage.builds.get(missing) is None
            assert await storage.servers.get(missing) is None
            assert await storage.routes.get(missing) is None
            assert await storage.rbac.get_role(missing) is None
            assert await storage.teams.get_invite(missing) is None
            assert await storage.domains.get(missing) is None
            assert await storage.domains.delete(missing) is False
            assert await storage.domains.list_for_deployment(missing) == []
            assert await storage.domains.list_for_project(missing) == []
            assert await storage.users.delete(missing) is False
            assert await storage.teams.delete(missing) is False
            assert await storage.projects.delete(missing) is False
            assert await storage.deployments.delete(missing) is False
            assert await storage.routes.delete(missing) is False
            assert await storage.rbac.delete_role(missing) is False
            assert await storage.builds.queue_position(missing) is None
            with pytest.raises(NotFound):
                await storage.users.update(missing, UserUpdate(name="x"))
            with pytest.raises(NotFound):
                await storage.builds.update(missing, BuildUpdate(log_path="x"))
            with pytest.raises(NotFound):
                await storage.domains.update(missing, DomainUpdate(last_error="x"))

    # --- users ---------------------------------------------------------------------

    async def test_user_round_trips_every_field(self, storage: AdminStorage) -> None:
        user = User(
            email="Ada@Example.com",
            external_id="oidc|ada",
            name="Ada",
            avatar_url="https://example.com/ada.png",
            metadata={"theme": "dark", "nested": {"n": [1, 2]}},
            created_at=at(1),
            updated_at=at(2),
        )
        created = await storage.users.create(user)
        assert created == user
        assert await storage.users.get(user.id) == user
        assert await storage.users.get_by_external_id("oidc|ada") == user

    async def test_user_email_lookup_ignores_case(self, world: World) -> None:
        user = await world.user(email="Grace@Example.com")
        found = await world.s.users.get_by_email("grace@EXAMPLE.com")
        assert found is not None
        assert found.id == user.id
        assert found.email == "Grace@Example.com"
        assert await world.s.users.get_by_email("nobody@example.com") is None

    async def test_user_email_conflict_names_the_field_whatever_the_case(
        self, world: World
    ) -> None:
        await world.user(email="dup@example.com")
        with pytest.raises(Conflict) as info:
            await world.user(email="DUP@example.com")
        assert _conflict_field(info) == "email"

    async def test_user_external_id_conflict(self, world: World) -> None:
        await world.user(external_id="ext-1")
        with pytest.raises(Conflict) as info:
            await world.user(external_id="ext-1")
        assert _conflict_field(info) == "external_id"

    async def test_users_without_external_id_do_not_conflict(self, world: World) -> None:
        await world.user()
        await world.user()
        assert await world.s.users.count() == 2

    async def test_duplicate_user_id_conflicts(self, world: World) -> None:
        user = await world.user()
        with pytest.raises(Conflict):
            await world.s.users.create(User(id=user.id, email="other@example.com"))

    async def test_user_update_changes_only_the_given_fields(self, world: World) -> None:
        user = await world.user(name="Before", avatar_url="https://a", metadata={"a": 1})
        updated = await world.s.users.update(user.id, UserUpdate(name="After", avatar_url=None))
        assert updated.name == "After"
        assert updated.avatar_url is None
        assert updated.metadata == {"a": 1}
        assert updated.email == user.email
        assert updated.created_at == user.created_at
        assert updated.updated_at > user.updated_at
        assert await world.s.users.get(user.id) == updated

    async def test_user_update_email_conflict(self, world: World) -> None:
        await world.user(email="taken@example.com")
        other = await world.user()
        with pytest.raises(Conflict) as info:
            await world.s.users.update(other.id, UserUpdate(email="Taken@example.com"))
        assert _conflict_field(info) == "email"
        # keeping one's own address is no conflict
        same = await world.s.users.update(other.id, UserUpdate(email=other.email))
        assert same.email == other.email

    async def test_users_list_oldest_first_with_paging_and_count(self, world: World) -> None:
        users = [await world.user(created_at=at(100 - i)) for i in range(5)]
        expected = _ids(sorted(users, key=lambda u: u.created_at))
        assert _ids(await world.s.users.list_all()) == expected
        assert _ids(await world.s.users.list_all(limit=2, offset=1)) == expected[1:3]
        assert await world.s.users.list_all(limit=10, offset=5) == []
        assert await world.s.users.count() == 5

    async def test_user_delete(self, world: World) -> None:
        user = await world.user()
        assert await world.s.users.delete(user.id) is True
        assert await world.s.users.get(user.id) is None
        assert await world.s.users.delete(user.id) is False

    async def test_user_tokens(self, world: World) -> None:
        user = await world.user()
        first = await world.s.users.create_token(
            UserApiToken(
                user_id=user.id,
                name="cli",
                token_hash="hash-1",
                token_prefix="mat_ab",
                scopes=["read", "write"],
                expires_at=at(10_000),
                created_at=at(1),
            )
        )
        second = await world.s.users.create_token(
            UserApiToken(
                user_id=user.id,
                name="ci",
                token_hash="hash-2",
                token_prefix="mat_cd",
                created_at=at(2),
            )
        )
        assert await world.s.users.get_token_by_hash("hash-1") == first
        assert await world.s.users.get_token_by_hash("nope") is None
        assert _ids(await world.s.users.list_tokens(user.id)) == [second.id, first.id]
        assert await world.s.users.list_tokens(new_id()) == []

        await world.s.users.touch_token(first.id, at(50))
        touched = await world.s.users.get_token_by_hash("hash-1")
        assert touched is not None
        assert touched.last_used_at == at(50)

    async def test_user_token_needs_its_user_and_a_unique_hash(self, world: World) -> None:
        user = await world.user()
        with pytest.raises(NotFound):
            await world.s.users.create_token(
                UserApiToken(user_id=new_id(), name="x", token_hash="h", token_prefix="p")
            )
        await world.s.users.create_token(
            UserApiToken(user_id=user.id, name="x", token_hash="h", token_prefix="p")
        )
        with pytest.raises(Conflict) as info:
            await world.s.users.create_token(
                UserApiToken(user_id=user.id, name="y", token_hash="h", token_prefix="p")
            )
        assert _conflict_field(info) == "token_hash"

    async def test_revoked_tokens_stay_readable_and_keep_the_first_revocation(
        self, world: World
    ) -> None:
        user = await world.user()
        token = await world.s.users.create_token(
            UserApiToken(user_id=user.id, name="x", token_hash="h", token_prefix="p")
        )
        assert await world.s.users.revoke_token(token.id, at(5)) is True
        assert await world.s.users.revoke_token(token.id, at(9)) is True
        revoked = await world.s.users.get_token_by_hash("h")
        assert revoked is not None
        assert revoked.revoked_at == at(5)
        assert await world.s.users.revoke_token(new_id(), at(5)) is False

    async def test_deleting_a_user_removes_tokens_memberships_and_assignments(
        self, world: World
    ) -> None:
        user = await world.user()
        team = await world.team()
        await world.s.users.create_token(
            UserApiToken(user_id=user.id, name="x", token_hash="h", token_prefix="p")
        )
        await world.s.teams.add_member(TeamMember(team_id=team.id, user_id=user.id))
        role = await world.role(team)
        await world.s.rbac.assign(
            RoleAssignment(
                role_id=role.id,
                user_id=user.id,
                resource_type=ResourceType.TEAM,
                resource_id=team.id,
            )
        )
        assert await world.s.users.delete(user.id) is True
        assert await world.s.users.get_token_by_hash("h") is None
        assert await world.s.teams.list_members(team.id) == []
        assert await world.s.rbac.list_assignments_for_user(user.id) == []
        assert await world.s.teams.get(team.id) is not None
        assert await world.s.rbac.get_role(role.id) is not None

    # --- teams ---------------------------------------------------------------------

    async def test_team_round_trips_with_settings(self, storage: AdminStorage) -> None:
        team = Team(
            name="Search",
            slug="search",
            settings=TeamSettings(max_concurrent_builds=2, preview_ttl_hours=24, plugin_x="y"),
            created_at=at(1),
            updated_at=at(1),
        )
        assert await storage.teams.create(team) == team
        got = await storage.teams.get(team.id)
        assert got == team
        assert got is not None
        assert got.settings.model_extra == {"plugin_x": "y"}
        assert await storage.teams.get_by_slug("search") == team
        assert await storage.teams.get_by_slug("other") is None

    async def test_team_slug_conflict(self, world: World) -> None:
        await world.team(slug="core")
        with pytest.raises(Conflict) as info:
            await world.team(slug="core")
        assert _conflict_field(info) == "slug"

    async def test_team_update(self, world: World) -> None:
        team = await world.team(name="Old")
        taken = await world.team(slug="taken")
        updated = await world.s.teams.update(
            team.id, TeamUpdate(name="New", settings=TeamSettings(preview_ttl_hours=5))
        )
        assert updated.name == "New"
        assert updated.slug == team.slug
        assert updated.settings.preview_ttl_hours == 5
        assert updated.updated_at > team.updated_at
        with pytest.raises(Conflict) as info:
            await world.s.teams.update(team.id, TeamUpdate(slug=taken.slug))
        assert _conflict_field(info) == "slug"
        with pytest.raises(NotFound):
            await world.s.teams.update(new_id(), TeamUpdate(name="x"))

    async def test_teams_list_by_name_with_paging(self, world: World) -> None:
        charlie = await world.team(name="charlie")
        alpha = await world.team(name="alpha")
        bravo = await world.team(name="bravo")
        assert _ids(await world.s.teams.list_all()) == [alpha.id, bravo.id, charlie.id]
        assert _ids(await world.s.teams.list_all(limit=1, offset=1)) == [bravo.id]
        assert await world.s.teams.count() == 3

    async def test_teams_of_a_user_by_name(self, world: World) -> None:
        user = await world.user()
        zulu = await world.team(name="zulu")
        alpha = await world.team(name="alpha")
        await world.team(name="mike")
        for team in (zulu, alpha):
            await world.s.teams.add_member(TeamMember(team_id=team.id, user_id=user.id))
        assert _ids(await world.s.teams.list_for_user(user.id)) == [alpha.id, zulu.id]
        assert await world.s.teams.list_for_user(new_id()) == []

    async def test_members(self, world: World) -> None:
        team = await world.team()
        owner, member = await world.user(), await world.user()
        first = await world.s.teams.add_member(
            TeamMember(team_id=team.id, user_id=member.id, role=TeamRole.MEMBER, joined_at=at(9))
        )
        second = await world.s.teams.add_member(
            TeamMember(team_id=team.id, user_id=owner.id, role=TeamRole.OWNER, joined_at=at(3))
        )
        assert await world.s.teams.get_member(team.id, member.id) == first
        assert await world.s.teams.get_member(team.id, new_id()) is None
        assert _ids(await world.s.teams.list_members(team.id)) == [second.id, first.id]
        assert await world.s.teams.count_members(team.id) == 2

        promoted = await world.s.teams.update_member_role(team.id, member.id, TeamRole.ADMIN)
        assert promoted.role is TeamRole.ADMIN
        assert promoted.id == first.id
        assert promoted.joined_at == first.joined_at
        with pytest.raises(NotFound):
            await world.s.teams.update_member_role(team.id, new_id(), TeamRole.ADMIN)

        assert await world.s.teams.remove_member(team.id, member.id) is True
        assert await world.s.teams.remove_member(team.id, member.id) is False
        assert await world.s.teams.count_members(team.id) == 1

    async def test_the_last_owner_is_kept_atomically(self, world: World) -> None:
        team = await world.team()
        a, b, c = await world.user(), await world.user(), await world.user()
        for user, role in ((a, TeamRole.OWNER), (b, TeamRole.OWNER), (c, TeamRole.MEMBER)):
            await world.s.teams.add_member(TeamMember(team_id=team.id, user_id=user.id, role=role))
        # The two owners step down at the same moment: exactly one of them may.
        results = await asyncio.gather(
            world.s.teams.update_member_role(team.id, a.id, TeamRole.ADMIN, keep_owner=True),
            world.s.teams.update_member_role(team.id, b.id, TeamRole.ADMIN, keep_owner=True),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, Conflict)]
        assert len(refused) == 1, results
        assert refused[0].details == {"field": "role", "user_id": refused[0].details["user_id"]}
        owners = [m for m in await world.s.teams.list_members(team.id) if m.role is TeamRole.OWNER]
        assert len(owners) == 1
        last = owners[0].user_id
        with pytest.raises(Conflict):
            await world.s.teams.remove_member(team.id, last, keep_owner=True)
        # Anyone else goes; the owner may still be promoted into, and without the
        # guard (deleting the team, say) removed.
        assert await world.s.teams.remove_member(team.id, c.id, keep_owner=True) is True
        kept = await world.s.teams.update_member_role(
            team.id, last, TeamRole.OWNER, keep_owner=True
        )
        assert kept.role is TeamRole.OWNER
        assert await world.s.teams.remove_member(team.id, last) is True

    async def test_member_needs_team_and_user_and_joins_once(self, world: World) -> None:
        team, user = await world.team(), await world.user()
        with pytest.raises(NotFound):
            await world.s.teams.add_member(TeamMember(team_id=new_id(), user_id=user.id))
        with pytest.raises(NotFound):
            await world.s.teams.add_member(TeamMember(team_id=team.id, user_id=new_id()))
        await world.s.teams.add_member(TeamMember(team_id=team.id, user_id=user.id))
        with pytest.raises(Conflict):
            await world.s.teams.add_member(
                TeamMember(team_id=team.id, user_id=user.id, role=TeamRole.ADMIN)
            )

    async def test_invites(self, world: World) -> None:
        team, inviter = await world.team(), await world.user()

        def invite(n: int, **fields: Any) -> TeamInvite:
            fields.setdefault("expires_at", at(10_000))
            return TeamInvite(
                team_id=team.id,
                email=f"guest{n}@example.com",
                invited_by=inviter.id,
                token_hash=f"invite-{n}",
                created_at=at(n),
                **fields,
            )

        older = await world.s.teams.create_invite(invite(1, role=TeamRole.ADMIN))
        newer = await world.s.teams.create_invite(invite(2))
        await world.s.teams.create_invite(invite(3, expires_at=at(100)))  # expired at at(200)
        accepted = await world.s.teams.create_invite(invite(4))
        assert await world.s.teams.mark_invite_accepted(accepted.id, at(150)) is True

        assert await world.s.teams.get_invite(older.id) == older
        assert await world.s.teams.get_invite_by_token_hash("invite-2") == newer
        assert await world.s.teams.get_invite_by_token_hash("invite-x") is None
        pending = await world.s.teams.list_pending_invites(team.id, at(200))
        assert _ids(pending) == [newer.id, older.id]
        got = await world.s.teams.get_invite(accepted.id)
        assert got is not None
        assert got.accepted_at == at(150)

        assert await world.s.teams.delete_invite(older.id) is True
        assert await world.s.teams.delete_invite(older.id) is False
        assert await world.s.teams.get_invite(older.id) is None

    async def test_invite_needs_a_team_and_a_unique_token(self, world: World) -> None:
        team, inviter = await world.team(), await world.user()

        def make(team_id: str) -> TeamInvite:
            return TeamInvite(
                team_id=team_id,
                email="g@example.com",
                invited_by=inviter.id,
                token_hash="same",
                expires_at=at(10_000),
            )

        with pytest.raises(NotFound):
            await world.s.teams.create_invite(make(new_id()))
        await world.s.teams.create_invite(make(team.id))
        with pytest.raises(Conflict) as info:
            await world.s.teams.create_invite(make(team.id))
        assert _conflict_field(info) == "token_hash"

    async def test_an_invite_is_accepted_exactly_once_under_concurrency(self, world: World) -> None:
        team, inviter = await world.team(), await world.user()
        invite = await world.s.teams.create_invite(
            TeamInvite(
                team_id=team.id,
                email="g@example.com",
                invited_by=inviter.id,
                token_hash="once",
                expires_at=at(10_000),
            )
        )
        results = await gather(8, lambda i: world.s.teams.mark_invite_accepted(invite.id, at(i)))
        assert results.count(True) == 1
        assert await world.s.teams.mark_invite_accepted(new_id(), at(1)) is False

    async def test_installations(self, world: World) -> None:
        team = await world.team()
        inst = TeamInstallation(
            team_id=team.id,
            provider="github",
            installation_id="42",
            account_name="acme",
            account_type="Organization",
            permissions={"contents": "read"},
            metadata={"k": [1]},
            created_at=at(1),
            updated_at=at(1),
        )
        assert await world.s.teams.create_installation(inst) == inst
        other = await world.s.teams.create_installation(
            TeamInstallation(
                team_id=team.id,
                provider="gitlab",
                installation_id="42",
                created_at=at(2),
                updated_at=at(2),
            )
        )
        assert await world.s.teams.get_installation(team.id, "github", "42") == inst
        assert await world.s.teams.get_installation(team.id, "github", "43") is None
        assert _ids(await world.s.teams.list_installations(team.id)) == [inst.id, other.id]
        with pytest.raises(Conflict) as info:
            await world.s.teams.create_installation(
                TeamInstallation(team_id=team.id, provider="github", installation_id="42")
            )
        assert _conflict_field(info) == "installation_id"
        with pytest.raises(NotFound):
            await world.s.teams.create_installation(
                TeamInstallation(team_id=new_id(), provider="github", installation_id="1")
            )
        assert await world.s.teams.delete_installation(inst.id) is True
        assert await world.s.teams.delete_installation(inst.id) is False
        assert _ids(await world.s.teams.list_installations(team.id)) == [other.id]

    async def test_deleting_a_team_deletes_everything_below_it(self, world: World) -> None:
        team, user = await world.team(), await world.user()
        other_team = await world.team()
        await world.s.teams.add_member(TeamMember(team_id=team.id, user_id=user.id))
        invite = await world.s.teams.create_invite(
            TeamInvite(
                team_id=team.id,
                email="g@example.com",
                invited_by=user.id,
                token_hash="t",
                expires_at=at(10_000),
            )
        )
        await world.s.teams.create_installation(
            TeamInstallation(team_id=team.id, provider="github", installation_id="1")
        )
        project = await world.project(team)
        await world.s.projects.set_env_var(
            ProjectEnvVar(project_id=project.id, key="K", encrypted_value="v")
        )
        await world.s.projects.create_api_token(
            ProjectApiToken(
                project_id=project.id,
                name="ci",
                token_hash="pt",
                token_prefix="p",
                created_by=user.id,
            )
        )
        deployment = await world.deployment(project)
        build = await world.build(deployment)
        server = await world.server(build)
        route = await world.route(deployment)
        domain = await world.domain(deployment)
        custom = await world.role(team)
        other_role = await world.role(other_team)
        system = await world.s.rbac.get_role_by_name(None, "team_viewer")
        assert system is not None
        await world.s.rbac.assign(RoleAssignment(role_id=custom.id, user_id=user.id))
        await world.s.rbac.assign(
            RoleAssignment(
                role_id=system.id,
                user_id=user.id,
                resource_type=ResourceType.TEAM,
                resource_id=team.id,
            )
        )
        await world.s.rbac.assign(
            RoleAssignment(
                role_id=system.id,
                user_id=user.id,
                resource_type=ResourceType.PROJECT,
                resource_id=project.id,
            )
        )
        kept = await world.s.rbac.assign(
            RoleAssignment(
                role_id=other_role.id,
                user_id=user.id,
                resource_type=ResourceType.TEAM,
                resource_id=other_team.id,
            )
        )

        assert await world.s.teams.delete(team.id) is True

        assert await world.s.teams.get(team.id) is None
        assert await world.s.teams.list_members(team.id) == []
        assert await world.s.teams.get_invite(invite.id) is None
        assert await world.s.teams.list_installations(team.id) == []
        assert await world.s.projects.get(project.id) is None
        assert await world.s.projects.list_env_vars(project.id) == []
        assert await world.s.projects.get_api_token_by_hash("pt") is None
        assert await world.s.deployments.get(deployment.id) is None
        assert await world.s.builds.get(build.id) is None
        assert await world.s.servers.get(server.id) is None
        assert await world.s.routes.get(route.id) is None
        assert await world.s.domains.get(domain.id) is None
        assert await world.s.rbac.get_role(custom.id) is None
        assert _ids(await world.s.rbac.list_assignments_for_user(user.id)) == [kept.id]
        assert await world.s.users.get(user.id) is not None
        assert await world.s.rbac.get_role(system.id) is not None
        assert await world.s.teams.get(other_team.id) is not None

    # --- projects ------------------------------------------------------------------

    async def test_project_round_trips(self, world: World) -> None:
        team = await world.team()
        project = Project(
            team_id=team.id,
            name="Agent",
            slug="agent",
            source_type="local",
            source_config={"source_id": "abc", "path": "/srv/agent", "package_manager": "pnpm"},
            default_branch="trunk",
            settings=ProjectSettings(build_command=["pnpm", "build"], health_path="/ready"),
            created_at=at(1),
            updated_at=at(1),
        )
        assert await world.s.projects.create(project) == project
        assert await world.s.projects.get(project.id) == project
        assert await world.s.projects.get_by_slug(team.id, "agent") == project
        assert await world.s.projects.get_by_slug(new_id(), "agent") is None

    async def test_project_needs_its_team_and_a_slug_unique_in_it(self, world: World) -> None:
        team, other = await world.team(), await world.team()
        with pytest.raises(NotFound):
            await world.project(Team(id=new_id(), name="ghost", slug="ghost"))
        await world.project(team, slug="api")
        with pytest.raises(Conflict) as info:
            await world.project(team, slug="api")
        assert _conflict_field(info) == "slug"
        await world.project(other, slug="api")  # another team may use it

    async def test_project_update(self, world: World) -> None:
        project = await world.project()
        updated = await world.s.projects.update(
            project.id,
            ProjectUpdate(
                name="Renamed",
                source_config={"source_id": "new"},
                settings=ProjectSettings(install_command=["npm", "ci"]),
            ),
        )
        assert updated.name == "Renamed"
        assert updated.slug == project.slug
        assert updated.source_config == {"source_id": "new"}
        assert updated.settings.install_command == ["npm", "ci"]
        assert updated.default_branch == project.default_branch
        assert updated.updated_at > project.updated_at
        with pytest.raises(NotFound):
            await world.s.projects.update(new_id(), ProjectUpdate(name="x"))

    async def test_projects_of_a_team_by_name_with_paging_and_counts(self, world: World) -> None:
        team, other = await world.team(), await world.team()
        names = ["delta", "alpha", "charlie", "bravo"]
        projects = {name: await world.project(team, name=name) for name in names}
        await world.project(other)
        listed = await world.s.projects.list_for_team(team.id)
        assert [p.name for p in listed] == sorted(names)
        page = await world.s.projects.list_for_team(team.id, limit=2, offset=1)
        assert _ids(page) == [projects["bravo"].id, projects["charlie"].id]
        assert await world.s.projects.count_for_team(team.id) == 4
        assert await world.s.projects.count() == 5

    async def test_find_by_source_across_teams_oldest_first(self, world: World) -> None:
        team, other = await world.team(), await world.team()
        key, repo = "repository_key", "github.com/acme/agent"

        async def git(team: Team, config: dict[str, Any], **fields: Any) -> Project:
            return await world.project(team, source_type="git", source_config=config, **fields)

        newest = await git(team, {key: repo}, created_at=at(30))
        oldest = await git(other, {key: repo, "branch": "main"}, created_at=at(10))
        middle = await git(team, {key: repo, "source_id": "s"}, created_at=at(20))
        await world.project(team, source_type="local", source_config={key: repo})
        await git(team, {"source_id": repo})  # another key
        await git(team, {"nested": {key: repo}})  # not at the top
        await git(team, {key: repo.upper()})  # another case
        await git(team, {key: repo + "/"})  # a longer value
        await git(team, {key: "github.com/acme"})  # a shorter one
        await git(team, {})

        found = await world.s.projects.find_by_source("git", key, repo)
        assert _ids(found) == [oldest.id, middle.id, newest.id]
        assert found[1] == middle
        assert _ids(await world.s.projects.find_by_source("git", "source_id", "s")) == [middle.id]
        assert await world.s.projects.find_by_source("gitlab", key, repo) == []
        assert await world.s.projects.find_by_source("git", "branch", repo) == []
        assert await world.s.projects.find_by_source("git", key, "") == []

        # what it finds follows updates and deletes
        await world.s.projects.update(newest.id, ProjectUpdate(source_config={key: "elsewhere"}))
        assert _ids(await world.s.projects.find_by_source("git", key, repo)) == [
            oldest.id,
            middle.id,
        ]
        assert await world.s.projects.delete(oldest.id) is True
        assert _ids(await world.s.projects.find_by_source("git", key, repo)) == [middle.id]
        assert _ids(await world.s.projects.find_by_source("git", key, "elsewhere")) == [newest.id]

    async def test_find_by_source_matches_only_string_values(self, world: World) -> None:
        team = await world.team()
        values: list[Any] = [42, 4.5, True, None, ["42"], {"v": "42"}]
        for value in values:
            await world.project(team, source_type="git", source_config={"k": value})
        text = await world.project(team, source_type="git", source_config={"k": "42"})
        assert _ids(await world.s.projects.find_by_source("git", "k", "42")) == [text.id]
        for looks_alike in ("4.5", "true", "True", "null", "None", '["42"]', '{"v": "42"}'):
            assert await world.s.projects.find_by_source("git", "k", looks_alike) == []

    async def test_find_by_source_takes_key_and_value_literally(self, world: World) -> None:
        team = await world.team()
        values = ["100%", "a_b", "it's", 'say "hi"', "back\\slash", "日本", "a%", "%"]
        made = {
            value: await world.project(team, source_type="git", source_config={"k": value})
            for value in values
        }
        for value, project in made.items():
            assert _ids(await world.s.projects.find_by_source("git", "k", value)) == [project.id]
        assert await world.s.projects.find_by_source("git", "k", "100") == []
        assert await world.s.projects.find_by_source("git", "k", "a b") == []
        assert await world.s.projects.find_by_source("git", "k", "%%") == []
        assert await world.s.projects.find_by_source("git", "k", "it''s") == []

        sneaky = "x' OR '1'='1"
        odd = await world.project(team, source_type="git", source_config={sneaky: "v", "x": "w"})
        dotted = await world.project(team, source_type="git", source_config={"a.b": "v"})
        await world.project(team, source_type="git", source_config={"a": {"b": "v"}})
        assert _ids(await world.s.projects.find_by_source("git", sneaky, "v")) == [odd.id]
        assert _ids(await world.s.projects.find_by_source("git", "x", "w")) == [odd.id]
        assert await world.s.projects.find_by_source("git", "x", "v") == []
        assert await world.s.projects.find_by_source("git", "k' OR '1'='1", "v") == []
        assert await world.s.projects.find_by_source("git' OR '1'='1", "k", "%") == []
        assert await world.s.projects.find_by_source("git", "k", "x' OR '1'='1") == []
        assert _ids(await world.s.projects.find_by_source("git", "a.b", "v")) == [dotted.id]
        assert await world.s.projects.find_by_source("git", "{a,b}", "v") == []

    async def test_env_vars_upsert_per_key_and_type(self, world: World) -> None:
        project = await world.project()
        shared = await world.s.projects.set_env_var(
            ProjectEnvVar(
                project_id=project.id,
                key="API_URL",
                encrypted_value="v1",
                is_secret=False,
                created_at=at(1),
                updated_at=at(1),
            )
        )
        prod = await world.s.projects.set_env_var(
            ProjectEnvVar(
                project_id=project.id,
                key="API_URL",
                encrypted_value="p1",
                deployment_type=DeploymentType.PRODUCTION,
            )
        )
        assert shared.id != prod.id

        replaced = await world.s.projects.set_env_var(
            ProjectEnvVar(
                project_id=project.id, key="API_URL", encrypted_value="v2", is_secret=True
            )
        )
        assert replaced.id == shared.id
        assert replaced.created_at == shared.created_at
        assert replaced.encrypted_value == "v2"
        assert replaced.is_secret is True
        assert replaced.updated_at > shared.updated_at

        got = await world.s.projects.get_env_var(project.id, "API_URL", None)
        assert got is not None
        assert got.encrypted_value == "v2"
        got_prod = await world.s.projects.get_env_var(project.id, "API_URL", "production")
        assert got_prod is not None
        assert got_prod.encrypted_value == "p1"
        assert await world.s.projects.get_env_var(project.id, "API_URL", "staging") is None

    async def test_env_vars_list_by_key_then_type_none_first(self, world: World) -> None:
        project = await world.project()

        async def put(key: str, dtype: DeploymentType | None) -> ProjectEnvVar:
            return await world.s.projects.set_env_var(
                ProjectEnvVar(
                    project_id=project.id, key=key, encrypted_value="x", deployment_type=dtype
                )
            )

        b_staging = await put("B", DeploymentType.STAGING)
        a_prod = await put("A", DeploymentType.PRODUCTION)
        b_all = await put("B", None)
        a_all = await put("A", None)
        b_preview = await put("B", DeploymentType.PREVIEW)
        listed = await world.s.projects.list_env_vars(project.id)
        assert _ids(listed) == [a_all.id, a_prod.id, b_all.id, b_preview.id, b_staging.id]

    async def test_env_var_delete_and_missing_project(self, world: World) -> None:
        project = await world.project()
        await world.s.projects.set_env_var(
            ProjectEnvVar(project_id=project.id, key="K", encrypted_value="x")
        )
        await world.s.projects.set_env_var(
            ProjectEnvVar(
                project_id=project.id,
                key="K",
                encrypted_value="y",
                deployment_type=DeploymentType.STAGING,
            )
        )
        assert await world.s.projects.delete_env_var(project.id, "K", None) is True
        assert await world.s.projects.delete_env_var(project.id, "K", None) is False
        remaining = await world.s.projects.list_env_vars(project.id)
        assert [(v.key, v.deployment_type) for v in remaining] == [("K", DeploymentType.STAGING)]
        with pytest.raises(NotFound):
            await world.s.projects.set_env_var(
                ProjectEnvVar(project_id=new_id(), key="K", encrypted_value="x")
            )

    async def test_concurrent_env_var_writes_leave_one_value(self, world: World) -> None:
        project = await world.project()
        await gather(
            8,
            lambda i: world.s.projects.set_env_var(
                ProjectEnvVar(project_id=project.id, key="RACE", encrypted_value=f"v{i}")
            ),
        )
        listed = await world.s.projects.list_env_vars(project.id)
        assert len(listed) == 1
        assert listed[0].encrypted_value in {f"v{i}" for i in range(8)}

    async def test_project_api_tokens(self, world: World) -> None:
        project, user = await world.project(), await world.user()
        first = await world.s.projects.create_api_token(
            ProjectApiToken(
                project_id=project.id,
                name="ci",
                token_hash="p1",
                token_prefix="mapt_1",
                scopes=["deploy"],
                created_by=user.id,
                expires_at=at(9_000),
                created_at=at(1),
            )
        )
        second = await world.s.projects.create_api_token(
            ProjectApiToken(
                project_id=project.id,
                name="cd",
                token_hash="p2",
                token_prefix="mapt_2",
                created_by=user.id,
                created_at=at(2),
            )
        )
        assert await world.s.projects.get_api_token_by_hash("p1") == first
        assert await world.s.projects.get_api_token_by_hash("zz") is None
        assert _ids(await world.s.projects.list_api_tokens(project.id)) == [second.id, first.id]
        await world.s.projects.touch_api_token(first.id, at(77))
        touched = await world.s.projects.get_api_token_by_hash("p1")
        assert touched is not None
        assert touched.last_used_at == at(77)
        with pytest.raises(Conflict) as info:
            await world.s.projects.create_api_token(
                ProjectApiToken(
                    project_id=project.id,
                    name="x",
                    token_hash="p1",
                    token_prefix="x",
                    created_by=user.id,
                )
            )
        assert _conflict_field(info) == "token_hash"
        with pytest.raises(NotFound):
            await world.s.projects.create_api_token(
                ProjectApiToken(
                    project_id=new_id(),
                    name="x",
                    token_hash="p9",
                    token_prefix="x",
                    created_by=user.id,
                )
            )
        assert await world.s.projects.delete_api_token(first.id) is True
        assert await world.s.projects.delete_api_token(first.id) is False

    async def test_deleting_a_project_deletes_everything_below_it(self, world: World) -> None:
        user = await world.user()
        project = await world.project()
        sibling = await world.project()
        await world.s.projects.set_env_var(
            ProjectEnvVar(project_id=project.id, key="K", encrypted_value="v")
        )
        await world.s.projects.create_api_token(
            ProjectApiToken(
                project_id=project.id,
                name="ci",
                token_hash="pt",
                token_prefix="p",
                created_by=user.id,
            )
        )
        deployment = await world.deployment(project)
        build = await world.build(deployment)
        server = await world.server(build)
        route = await world.route(deployment)
        domain = await world.domain(deployment)
        sibling_route = await world.route(await world.deployment(sibling))
        viewer = await world.s.rbac.get_role_by_name(None, "team_viewer")
        assert viewer is not None
        await world.s.rbac.assign(
            RoleAssignment(
                role_id=viewer.id,
                user_id=user.id,
                resource_type=ResourceType.PROJECT,
                resource_id=project.id,
            )
        )
        assert await world.s.projects.delete(project.id) is True
        assert await world.s.projects.get(project.id) is None
        assert await world.s.projects.list_env_vars(project.id) == []
        assert await world.s.projects.get_api_token_by_hash("pt") is None
        assert await world.s.deployments.get(deployment.id) is None
        assert await world.s.builds.get(build.id) is None
        assert await world.s.servers.get(server.id) is None
        assert await world.s.routes.get(route.id) is None
        assert await world.s.domains.get(domain.id) is None
        assert await world.s.domains.list_for_project(project.id) == []
        assert (
            await world.s.rbac.list_assignments_for_resource(ResourceType.PROJECT, project.id) == []
        )
        assert await world.s.routes.get(sibling_route.id) == sibling_route
        assert await world.s.projects.count() == 1

    # --- deployments ---------------------------------------------------------------

    async def test_deployment_round_trips(self, world: World) -> None:
        project = await world.project()
        deployment = Deployment(
            project_id=project.id,
            type=DeploymentType.PREVIEW,
            branch="feature/x",
            slug="preview-feature-x",
            status=DeploymentStatus.RUNNING,
            current_build_id=new_id(),
            public_url="http://p.localhost",
            internal_host="127.0.0.1",
            internal_port=4101,
            env_var_overrides=[EnvVarOverride(key="A", encrypted_value="e", is_secret=False)],
            auto_shutdown=True,
            expires_at=at(500),
            secrets_withheld=True,
            created_at=at(1),
            updated_at=at(1),
        )
        assert await world.s.deployments.create(deployment) == deployment
        assert await world.s.deployments.get(deployment.id) == deployment
        by_branch = await world.s.deployments.get_by_branch(project.id, "preview", "feature/x")
        assert by_branch == deployment
        assert await world.s.deployments.get_by_branch(project.id, "staging", "feature/x") is None

    async def test_deployment_needs_its_project_and_a_unique_branch_per_type(
        self, world: World
    ) -> None:
        project = await world.project()
        with pytest.raises(NotFound):
            await world.deployment(
                Project(id=new_id(), team_id=new_id(), name="g", slug="g", source_type="local")
            )
        await world.deployment(project, branch="main")
        with pytest.raises(Conflict) as info:
            await world.deployment(project, branch="main")
        assert _conflict_field(info) == "branch"
        await world.deployment(project, branch="main", type=DeploymentType.STAGING)

    async def test_deployment_update(self, world: World) -> None:
        deployment = await world.deployment(public_url="http://old")
        build_id = new_id()
        updated = await world.s.deployments.update(
            deployment.id,
            DeploymentUpdate(
                status=DeploymentStatus.RUNNING,
                current_build_id=build_id,
                public_url=None,
                internal_port=4150,
                env_var_overrides=[EnvVarOverride(key="X", encrypted_value="y")],
            ),
        )
        assert updated.status is DeploymentStatus.RUNNING
        assert updated.current_build_id == build_id
        assert updated.public_url is None
        assert updated.internal_port == 4150
        assert [o.key for o in updated.env_var_overrides] == ["X"]
        assert updated.branch == deployment.branch
        assert updated.updated_at > deployment.updated_at
        with pytest.raises(NotFound):
            await world.s.deployments.update(new_id(), DeploymentUpdate(status="stopped"))

    async def test_deployment_secrets_withheld_defaults_off_and_updates(self, world: World) -> None:
        deployment = await world.deployment()
        assert deployment.secrets_withheld is False
        stored = await world.s.deployments.get(deployment.id)
        assert stored is not None
        assert stored.secrets_withheld is False
        withheld = await world.s.deployments.update(
            deployment.id, DeploymentUpdate(secrets_withheld=True)
        )
        assert withheld.secrets_withheld is True
        assert await world.s.deployments.get(deployment.id) == withheld
        # another field's update leaves it as it is
        renamed = await world.s.deployments.update(
            deployment.id, DeploymentUpdate(public_url="http://p.localhost")
        )
        assert renamed.secrets_withheld is True
        given = await world.s.deployments.update(
            deployment.id, DeploymentUpdate(secrets_withheld=False)
        )
        assert given.secrets_withheld is False
        assert await world.s.deployments.get(deployment.id) == given

    async def test_deployments_lists(self, world: World) -> None:
        project = await world.project()
        old = await world.deployment(project, created_at=at(1), status=DeploymentStatus.RUNNING)
        new = await world.deployment(project, created_at=at(2), status=DeploymentStatus.FAILED)
        elsewhere = await world.deployment(created_at=at(3), status=DeploymentStatus.RUNNING)
        assert _ids(await world.s.deployments.list_for_project(project.id)) == [new.id, old.id]
        running = await world.s.deployments.list_by_status([DeploymentStatus.RUNNING])
        assert set(_ids(running)) == {old.id, elsewhere.id}
        both = await world.s.deployments.list_by_status(
            {DeploymentStatus.RUNNING, DeploymentStatus.FAILED}
        )
        assert set(_ids(both)) == {old.id, new.id, elsewhere.id}
        assert await world.s.deployments.list_by_status([DeploymentStatus.PENDING]) == []

    async def test_expired_previews(self, world: World) -> None:
        project = await world.project()
        expired = await world.deployment(project, type=DeploymentType.PREVIEW, expires_at=at(10))
        due = await world.deployment(project, type=DeploymentType.PREVIEW, expires_at=at(20))
        await world.deployment(project, type=DeploymentType.PREVIEW, expires_at=at(30))
        await world.deployment(project, type=DeploymentType.PREVIEW)  # never expires
        await world.deployment(project, type=DeploymentType.STAGING, expires_at=at(1))
        found = await world.s.deployments.list_expired_previews(at(20))
        assert set(_ids(found)) == {expired.id, due.id}

    async def test_deleting_a_deployment_deletes_its_builds_servers_and_route(
        self, world: World
    ) -> None:
        deployment = await world.deployment()
        build = await world.build(deployment)
        server = await world.server(build)
        route = await world.route(deployment)
        other_build = await world.build()
        assert await world.s.deployments.delete(deployment.id) is True
        assert await world.s.deployments.delete(deployment.id) is False
        assert await world.s.builds.get(build.id) is None
        assert await world.s.servers.get(server.id) is None
        assert await world.s.routes.get(route.id) is None
        assert await world.s.builds.get(other_build.id) == other_build

    # --- builds --------------------------------------------------------------------

    async def test_build_round_trips(self, world: World) -> None:
        deployment = await world.deployment()
        build = Build(
            deployment_id=deployment.id,
            trigger=BuildTrigger.ROLLBACK,
            triggered_by="user-1",
            ref="release/1.2",
            commit_sha="abc123",
            commit_message="fix: things",
            commit_author="Ada Lovelace <ada@example.com>",
            artifact_build_id=new_id(),
            log_path="/logs/b.log",
            queued_at=at(1),
            created_at=at(1),
        )
        assert await world.s.builds.create(build) == build
        assert await world.s.builds.get(build.id) == build
        with pytest.raises(NotFound):
            await world.s.builds.create(Build(deployment_id=new_id(), triggered_by="x"))

    async def test_build_update(self, world: World) -> None:
        build = await world.build()
        updated = await world.s.builds.update(
            build.id,
            BuildUpdate(status=BuildStatus.FAILED, error_message="boom", completed_at=at(9)),
        )
        assert updated.status is BuildStatus.FAILED
        assert updated.error_message == "boom"
        assert updated.completed_at == at(9)
        assert updated.queued_at == build.queued_at
        assert await world.s.builds.get(build.id) == updated

    async def test_build_ref_and_commit_fields(self, world: World) -> None:
        asked = await world.build(ref="v1.0", commit_sha="abc")
        assert asked.ref == "v1.0"
        assert asked.commit_author is None
        plain = await world.build()
        assert (plain.ref, plain.commit_sha, plain.commit_message, plain.commit_author) == (
            None,
            None,
            None,
            None,
        )
        assert await world.s.builds.get(plain.id) == plain
        resolved = await world.s.builds.update(
            asked.id,
            BuildUpdate(
                commit_sha="0123456789abcdef0123456789abcdef01234567",
                commit_message="feat: more\n\nwith a body",
                commit_author="Grace Hopper <grace@example.com>",
            ),
        )
        assert resolved.ref == "v1.0"
        assert resolved.commit_sha == "0123456789abcdef0123456789abcdef01234567"
        assert resolved.commit_message == "feat: more\n\nwith a body"
        assert resolved.commit_author == "Grace Hopper <grace@example.com>"
        assert await world.s.builds.get(asked.id) == resolved
        # a transition sets them too (the source resolves the commit as the build starts)
        moved = await world.s.builds.transition(
            plain.id,
            [BuildStatus.QUEUED],
            BuildUpdate(status=BuildStatus.BUILDING, commit_sha="def", commit_author="Ada"),
        )
        assert moved is not None
        assert (moved.ref, moved.commit_sha, moved.commit_author) == (None, "def", "Ada")
        assert await world.s.builds.get(plain.id) == moved

    async def test_transition_is_compare_and_set(self, world: World) -> None:
        build = await world.build()
        refused = await world.s.builds.transition(
            build.id, [BuildStatus.BUILDING], BuildUpdate(status=BuildStatus.SUCCEEDED)
        )
        assert refused is None
        assert await world.s.builds.get(build.id) == build
        moved = await world.s.builds.transition(
            build.id,
            {BuildStatus.QUEUED, BuildStatus.BUILDING},
            BuildUpdate(status=BuildStatus.CANCELLED, completed_at=at(5)),
        )
        assert moved is not None
        assert moved.status is BuildStatus.CANCELLED
        assert moved.completed_at == at(5)
        with pytest.raises(NotFound):
            await world.s.builds.transition(
                new_id(), [BuildStatus.QUEUED], BuildUpdate(status=BuildStatus.CANCELLED)
            )

    async def test_concurrent_transitions_let_exactly_one_win(self, world: World) -> None:
        build = await world.build()
        results = await gather(
            8,
            lambda i: world.s.builds.transition(
                build.id,
                [BuildStatus.QUEUED],
                BuildUpdate(status=BuildStatus.CANCELLED, error_message=f"by {i}"),
            ),
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        final = await world.s.builds.get(build.id)
        assert final is not None
        assert final.error_message == winners[0].error_message

    async def test_builds_of_a_deployment_newest_first_with_paging(self, world: World) -> None:
        deployment = await world.deployment()
        builds = [await world.build(deployment, queued_at=at(10 + i)) for i in range(5)]
        await world.build()
        newest_first = list(reversed(_ids(builds)))
        assert _ids(await world.s.builds.list_for_deployment(deployment.id)) == newest_first
        page = await world.s.builds.list_for_deployment(deployment.id, limit=2, offset=2)
        assert _ids(page) == newest_first[2:4]
        assert await world.s.builds.count_for_deployment(deployment.id) == 5

    async def test_builds_by_status_oldest_first_and_counts(self, world: World) -> None:
        late = await world.build(queued_at=at(30))
        early = await world.build(queued_at=at(10))
        failed = await world.build(queued_at=at(20), status=BuildStatus.FAILED)
        queued = await world.s.builds.list_by_status([BuildStatus.QUEUED])
        assert _ids(queued) == [early.id, late.id]
        mixed = await world.s.builds.list_by_status({BuildStatus.QUEUED, BuildStatus.FAILED})
        assert _ids(mixed) == [early.id, failed.id, late.id]
        assert await world.s.builds.count_by_status() == {
            BuildStatus.QUEUED: 2,
            BuildStatus.FAILED: 1,
        }

    async def test_dequeue_takes_the_oldest_and_marks_it_building(self, world: World) -> None:
        second = await world.build(queued_at=at(20))
        first = await world.build(queued_at=at(10))
        lease = utcnow() + timedelta(seconds=30)
        before = utcnow() - timedelta(seconds=5)
        taken = await world.s.builds.dequeue("worker-a", lease)
        assert taken is not None
        assert taken.id == first.id
        assert taken.status is BuildStatus.BUILDING
        assert taken.worker_id == "worker-a"
        assert taken.lease_expires_at == lease
        assert taken.started_at is not None
        assert taken.started_at >= before
        assert await world.s.builds.get(first.id) == taken
        again = await world.s.builds.dequeue("worker-b", lease)
        assert again is not None
        assert again.id == second.id
        assert await world.s.builds.dequeue("worker-c", lease) is None

    async def test_fifo_ties_on_queued_at_are_broken_by_id(self, world: World) -> None:
        same = at(10)
        builds = [await world.build(queued_at=same) for _ in range(4)]
        order = sorted(_ids(builds))
        lease = utcnow() + timedelta(seconds=30)
        taken = [await world.s.builds.dequeue("w", lease) for _ in range(4)]
        assert [b.id for b in taken if b is not None] == order

    async def test_dequeue_skips_deployments_with_an_active_build(self, world: World) -> None:
        busy = await world.deployment()
        active = await world.build(busy, queued_at=at(1), status=BuildStatus.DEPLOYING)
        blocked = await world.build(busy, queued_at=at(2))
        free = await world.build(queued_at=at(3))
        lease = utcnow() + timedelta(seconds=30)
        taken = await world.s.builds.dequeue("w", lease)
        assert taken is not None
        assert taken.id == free.id
        assert await world.s.builds.dequeue("w", lease) is None
        await world.s.builds.update(active.id, BuildUpdate(status=BuildStatus.SUCCEEDED))
        unblocked = await world.s.builds.dequeue("w", lease)
        assert unblocked is not None
        assert unblocked.id == blocked.id

    async def test_dequeue_respects_max_active(self, world: World) -> None:
        await world.build(status=BuildStatus.BUILDING)
        waiting = await world.build()
        lease = utcnow() + timedelta(seconds=30)
        assert await world.s.builds.dequeue("w", lease, max_active=1) is None
        taken = await world.s.builds.dequeue("w", lease, max_active=2)
        assert taken is not None
        assert taken.id == waiting.id

    async def test_concurrent_dequeuers_never_share_a_build(self, world: World) -> None:
        workers = self.dequeue_workers
        builds = [await world.build(queued_at=at(i)) for i in range(workers * 4)]
        lease = utcnow() + timedelta(seconds=60)

        async def drain(worker: int) -> list[str]:
            got: list[str] = []
            while (build := await world.s.builds.dequeue(f"w{worker}", lease)) is not None:
                assert build.worker_id == f"w{worker}"
                got.append(build.id)
            return got

        handed = [bid for batch in await gather(workers, drain) for bid in batch]
        assert len(handed) == len(set(handed))
        assert set(handed) == set(_ids(builds))
        assert await world.s.builds.queue_length() == 0

    async def test_concurrent_dequeuers_take_one_build_per_deployment(self, world: World) -> None:
        deployment = await world.deployment()
        builds = [await world.build(deployment, queued_at=at(i)) for i in range(5)]
        lease = utcnow() + timedelta(seconds=60)
        results = await gather(
            self.dequeue_workers, lambda i: world.s.builds.dequeue(f"w{i}", lease)
        )
        taken = [r for r in results if r is not None]
        assert len(taken) == 1
        assert taken[0].id == builds[0].id  # the deployment's oldest, never a newer one
        assert await world.s.builds.queue_length() == 4

    async def test_concurrent_dequeuers_respect_max_active(self, world: World) -> None:
        for i in range(10):
            await world.build(queued_at=at(i))
        lease = utcnow() + timedelta(seconds=60)
        results = await gather(
            self.dequeue_workers, lambda i: world.s.builds.dequeue(f"w{i}", lease, max_active=3)
        )
        assert len([r for r in results if r is not None]) == 3
        counts = await world.s.builds.count_by_status()
        assert counts.get(BuildStatus.BUILDING) == 3

    async def test_renew_lease_only_for_the_holder_of_an_active_build(self, world: World) -> None:
        await world.build()
        queued = await world.build(queued_at=at(10_000))
        lease = utcnow() + timedelta(seconds=30)
        taken = await world.s.builds.dequeue("holder", lease)
        assert taken is not None
        later = lease + timedelta(seconds=30)
        assert await world.s.builds.renew_lease(taken.id, "holder", later) is True
        renewed = await world.s.builds.get(taken.id)
        assert renewed is not None
        assert renewed.lease_expires_at == later
        assert await world.s.builds.renew_lease(taken.id, "someone-else", later) is False
        assert await world.s.builds.renew_lease(queued.id, "holder", later) is False
        assert await world.s.builds.renew_lease(new_id(), "holder", later) is False
        await world.s.builds.update(taken.id, BuildUpdate(status=BuildStatus.SUCCEEDED))
        assert await world.s.builds.renew_lease(taken.id, "holder", later) is False

    async def test_queue_position_and_length(self, world: World) -> None:
        third = await world.build(queued_at=at(30))
        first = await world.build(queued_at=at(10))
        second = await world.build(queued_at=at(20))
        done = await world.build(queued_at=at(5), status=BuildStatus.SUCCEEDED)
        assert await world.s.builds.queue_length() == 3
        assert await world.s.builds.queue_position(first.id) == 1
        assert await world.s.builds.queue_position(second.id) == 2
        assert await world.s.builds.queue_position(third.id) == 3
        assert await world.s.builds.queue_position(done.id) is None
        await world.s.builds.dequeue("w", utcnow() + timedelta(seconds=30))
        assert await world.s.builds.queue_position(first.id) is None
        assert await world.s.builds.queue_position(third.id) == 2
        assert await world.s.builds.queue_length() == 2

    async def test_cancel_queued(self, world: World) -> None:
        deployment = await world.deployment()
        a = await world.build(deployment, queued_at=at(1))
        b = await world.build(deployment, queued_at=at(2))
        keep = await world.build(deployment, queued_at=at(3))
        running = await world.build(deployment, queued_at=at(0), status=BuildStatus.BUILDING)
        elsewhere = await world.build(queued_at=at(4))
        cancelled = await world.s.builds.cancel_queued(
            deployment.id, except_build_id=keep.id, at=at(99)
        )
        assert cancelled == [a.id, b.id]
        got = await world.s.builds.get(a.id)
        assert got is not None
        assert got.status is BuildStatus.CANCELLED
        assert got.completed_at == at(99)
        for untouched in (keep, running, elsewhere):
            assert await world.s.builds.get(untouched.id) == untouched
        everything = await world.s.builds.cancel_queued(deployment.id, at=at(100))
        assert everything == [keep.id]
        assert await world.s.builds.cancel_queued(deployment.id, at=at(101)) == []

    # --- running servers -----------------------------------------------------------

    async def test_server_round_trips_and_needs_its_parents(self, world: World) -> None:
        build = await world.build()
        server = RunningServer(
            deployment_id=build.deployment_id,
            build_id=build.id,
            process_id=4242,
            process_started_at=1_700_000_000.25,
            host="127.0.0.1",
            port=4123,
            health_status=HealthStatus.HEALTHY,
            last_health_check=at(3),
            memory_usage_mb=120.5,
            cpu_percent=3.25,
            metadata={"node": "v20"},
            started_at=at(1),
        )
        assert await world.s.servers.create(server) == server
        assert await world.s.servers.get(server.id) == server
        with pytest.raises(NotFound):
            await world.s.servers.create(
                RunningServer(deployment_id=new_id(), build_id=build.id, host="h", port=1)
            )
        with pytest.raises(NotFound):
            await world.s.servers.create(
                RunningServer(
                    deployment_id=build.deployment_id, build_id=new_id(), host="h", port=1
                )
            )

    async def test_server_update(self, world: World) -> None:
        server = await world.server()
        updated = await world.s.servers.update(
            server.id,
            RunningServerUpdate(
                health_status=HealthStatus.STOPPED,
                stopped_at=at(50),
                memory_usage_mb=64.0,
                metadata={"exit": 0},
            ),
        )
        assert updated.health_status is HealthStatus.STOPPED
        assert updated.stopped_at == at(50)
        assert updated.memory_usage_mb == 64.0
        assert updated.metadata == {"exit": 0}
        assert updated.port == server.port
        with pytest.raises(NotFound):
            await world.s.servers.update(new_id(), RunningServerUpdate(cpu_percent=1.0))

    async def test_server_lists(self, world: World) -> None:
        build = await world.build()
        old = await world.server(build, started_at=at(1))
        new = await world.server(build, started_at=at(2))
        stopped = await world.server(build, started_at=at(3), stopped_at=at(4))
        other = await world.server(started_at=at(5))
        assert _ids(await world.s.servers.list_active()) == [other.id, new.id, old.id]
        assert _ids(await world.s.servers.list_active(build.deployment_id)) == [new.id, old.id]
        every = await world.s.servers.list_for_deployment(build.deployment_id)
        assert _ids(every) == [stopped.id, new.id, old.id]
        limited = await world.s.servers.list_for_deployment(build.deployment_id, limit=1)
        assert _ids(limited) == [stopped.id]

    async def test_unhealthy_servers(self, world: World) -> None:
        build = await world.build()
        sick = await world.server(
            build, health_status=HealthStatus.UNHEALTHY, last_health_check=at(100)
        )
        stale = await world.server(
            build, health_status=HealthStatus.HEALTHY, last_health_check=at(10)
        )
        await world.server(build, health_status=HealthStatus.HEALTHY, last_health_check=at(100))
        await world.server(
            build, health_status=HealthStatus.UNHEALTHY, last_health_check=at(10), stopped_at=at(20)
        )
        found = await world.s.servers.list_unhealthy(at(50))
        assert set(_ids(found)) == {sick.id, stale.id}

    async def test_delete_stopped_servers(self, world: World) -> None:
        build = await world.build()
        await world.server(build, stopped_at=at(10))
        await world.server(build, stopped_at=at(20))
        recent = await world.server(build, stopped_at=at(40))
        running = await world.server(build)
        assert await world.s.servers.delete_stopped(at(30)) == 2
        assert set(_ids(await world.s.servers.list_for_deployment(build.deployment_id))) == {
            recent.id,
            running.id,
        }
        assert await world.s.servers.delete_stopped(at(30)) == 0

    # --- routes --------------------------------------------------------------------

    async def test_route_round_trips(self, world: World) -> None:
        deployment = await world.deployment()
        route = Route(
            deployment_id=deployment.id,
            project_id=deployment.project_id,
            subdomain="agent-main.search",
            target_host="127.0.0.1",
            target_port=4100,
            public_url="http://agent-main.search.localhost",
            status=RouteStatus.ACTIVE,
            tls_enabled=True,
            provider_route_id="r-1",
            metadata={"weight": 1},
            created_at=at(1),
            updated_at=at(1),
            last_health_check=at(2),
        )
        assert await world.s.routes.create(route) == route
        assert await world.s.routes.get(route.id) == route
        assert await world.s.routes.get_by_deployment(deployment.id) == route
        assert await world.s.routes.get_by_subdomain("agent-main.search") == route
        assert await world.s.routes.get_by_subdomain("nope") is None
        assert await world.s.routes.get_by_deployment(new_id()) is None

    async def test_route_conflicts_and_missing_deployment(self, world: World) -> None:
        deployment = await world.deployment()
        await world.route(deployment, subdomain="taken")
        with pytest.raises(Conflict) as info:
            await world.route(subdomain="taken")
        assert _conflict_field(info) == "subdomain"
        with pytest.raises(NotFound):
            await world.s.routes.create(
                Route(
                    deployment_id=new_id(),
                    project_id=deployment.project_id,
                    subdomain="x",
                    target_host="h",
                    target_port=1,
                    public_url="http://x",
                )
            )

    async def test_route_update_repoints(self, world: World) -> None:
        route = await world.route(status=RouteStatus.PENDING)
        updated = await world.s.routes.update(
            route.id,
            RouteUpdate(target_port=4199, status=RouteStatus.ACTIVE, last_health_check=at(9)),
        )
        assert updated.target_port == 4199
        assert updated.status is RouteStatus.ACTIVE
        assert updated.last_health_check == at(9)
        assert updated.subdomain == route.subdomain
        assert updated.updated_at > route.updated_at
        stopped = await world.s.routes.update(route.id, RouteUpdate(status=RouteStatus.STOPPED))
        assert stopped.status is RouteStatus.STOPPED
        with pytest.raises(NotFound):
            await world.s.routes.update(new_id(), RouteUpdate(target_port=1))
        with pytest.raises(NotFound):
            await world.s.routes.update(route.id, RouteUpdate(deployment_id=new_id()))

    async def test_route_lists_by_subdomain(self, world: World) -> None:
        project = await world.project()
        b = await world.route(
            await world.deployment(project), subdomain="bravo", status=RouteStatus.ACTIVE
        )
        a = await world.route(
            await world.deployment(project), subdomain="alpha", status=RouteStatus.UNHEALTHY
        )
        c = await world.route(subdomain="charlie", status=RouteStatus.ACTIVE)
        assert _ids(await world.s.routes.list_for_project(project.id)) == [a.id, b.id]
        assert _ids(await world.s.routes.list_all()) == [a.id, b.id, c.id]
        active = await world.s.routes.list_all([RouteStatus.ACTIVE])
        assert _ids(active) == [b.id, c.id]
        assert await world.s.routes.list_all([RouteStatus.ERROR]) == []
        assert await world.s.routes.delete(a.id) is True
        assert await world.s.routes.delete(a.id) is False
        assert _ids(await world.s.routes.list_all()) == [b.id, c.id]

    # --- RBAC ----------------------------------------------------------------------

    async def test_custom_role_round_trips_and_conflicts_per_team(self, world: World) -> None:
        team, other = await world.team(), await world.team()
        role = Role(
            team_id=team.id,
            name="deployer",
            description="deploys",
            permissions=["deployment:*", "build:read"],
            created_at=at(1),
            updated_at=at(1),
        )
        assert await world.s.rbac.create_role(role) == role
        assert await world.s.rbac.get_role(role.id) == role
        assert await world.s.rbac.get_role_by_name(team.id, "deployer") == role
        assert await world.s.rbac.get_role_by_name(other.id, "deployer") is None
        assert await world.s.rbac.get_role_by_name(None, "deployer") is None
        with pytest.raises(Conflict) as info:
            await world.role(team, name="deployer")
        assert _conflict_field(info) == "name"
        await world.role(other, name="deployer")
        with pytest.raises(NotFound):
            await world.s.rbac.create_role(Role(team_id=new_id(), name="x"))

    async def test_system_role_names_are_unique_too(self, world: World) -> None:
        with pytest.raises(Conflict) as info:
            await world.role(None, name="team_owner", is_system=True)
        assert _conflict_field(info) == "name"

    async def test_role_update_and_delete(self, world: World) -> None:
        team = await world.team()
        role = await world.role(team, permissions=["a"])
        updated = await world.s.rbac.update_role(
            role.id, RoleUpdate(permissions=["a", "b"], description="more")
        )
        assert updated.permissions == ["a", "b"]
        assert updated.description == "more"
        assert updated.name == role.name
        assert updated.updated_at > role.updated_at
        with pytest.raises(NotFound):
            await world.s.rbac.update_role(new_id(), RoleUpdate(description="x"))
        user = await world.user()
        await world.s.rbac.assign(RoleAssignment(role_id=role.id, user_id=user.id))
        assert await world.s.rbac.delete_role(role.id) is True
        assert await world.s.rbac.get_role(role.id) is None
        assert await world.s.rbac.list_assignments_for_user(user.id) == []

    async def test_list_roles_puts_system_roles_first_then_names(self, world: World) -> None:
        team, other = await world.team(), await world.team()
        zed = await world.role(team, name="zed")
        abe = await world.role(team, name="abe")
        await world.role(other, name="other-team-role")
        system = await world.s.rbac.list_roles()
        assert system
        assert all(r.is_system and r.team_id is None for r in system)
        assert [r.name for r in system] == sorted(r.name for r in system)
        with_team = await world.s.rbac.list_roles(team.id)
        assert _ids(with_team) == [*_ids(system), abe.id, zed.id]

    async def test_ensure_system_roles_creates_and_updates(self, storage: AdminStorage) -> None:
        roles = [
            Role(name="sys_a", permissions=["x:read"], is_system=True, description="A"),
            Role(name="sys_b", permissions=["y:*"], is_system=True),
        ]
        await storage.rbac.ensure_system_roles(roles)
        a = await storage.rbac.get_role_by_name(None, "sys_a")
        assert a is not None
        assert a.is_system
        assert a.permissions == ["x:read"]
        changed = [
            Role(name="sys_a", permissions=["x:read", "x:write"], is_system=True, description="A2"),
        ]
        await storage.rbac.ensure_system_roles(changed)
        a2 = await storage.rbac.get_role_by_name(None, "sys_a")
        assert a2 is not None
        assert a2.id == a.id
        assert a2.permissions == ["x:read", "x:write"]
        assert a2.description == "A2"
        b = await storage.rbac.get_role_by_name(None, "sys_b")
        assert b is not None
        assert b.permissions == ["y:*"]

    async def test_ensure_system_roles_is_safe_concurrently(self, storage: AdminStorage) -> None:
        from mastra_admin.core.rbac import system_roles

        def fresh() -> list[Role]:
            # every caller builds its own models (new ids), like separate processes do
            return [r.model_copy(update={"id": new_id()}) for r in system_roles()]

        await gather(6, lambda i: storage.rbac.ensure_system_roles(fresh()))
        roles = [r for r in await storage.rbac.list_roles() if r.is_system]
        names = [r.name for r in roles]
        assert len(names) == len(set(names))
        assert set(names) >= {r.name for r in system_roles()}

    async def test_assignments(self, world: World) -> None:
        team, user = await world.team(), await world.user()
        project = await world.project(team)
        role = await world.role(team)
        platform = await world.s.rbac.assign(
            RoleAssignment(role_id=role.id, user_id=user.id, created_at=at(1))
        )
        on_team = await world.s.rbac.assign(
            RoleAssignment(
                role_id=role.id,
                user_id=user.id,
                resource_type=ResourceType.TEAM,
                resource_id=team.id,
                created_at=at(2),
            )
        )
        on_project = await world.s.rbac.assign(
            RoleAssignment(
                role_id=role.id,
                user_id=user.id,
                resource_type=ResourceType.PROJECT,
                resource_id=project.id,
                created_at=at(3),
            )
        )
        assert _ids(await world.s.rbac.list_assignments_for_user(user.id)) == [
            platform.id,
            on_team.id,
            on_project.id,
        ]
        assert _ids(
            await world.s.rbac.list_assignments_for_resource(ResourceType.TEAM, team.id)
        ) == [on_team.id]
        assert _ids(
            await world.s.rbac.list_assignments_for_resource(ResourceType.PROJECT, project.id)
        ) == [on_project.id]

        with pytest.raises(Conflict) as info:
            await world.s.rbac.assign(RoleAssignment(role_id=role.id, user_id=user.id))
        assert _conflict_field(info) == "role_id"
        with pytest.raises(Conflict):
            await world.s.rbac.assign(
                RoleAssignment(
                    role_id=role.id,
                    user_id=user.id,
                    resource_type=ResourceType.TEAM,
                    resource_id=team.id,
                )
            )
        with pytest.raises(NotFound):
            await world.s.rbac.assign(RoleAssignment(role_id=new_id(), user_id=user.id))
        with pytest.raises(NotFound):
            await world.s.rbac.assign(RoleAssignment(role_id=role.id, user_id=new_id()))

        assert await world.s.rbac.unassign(role.id, user.id, None, None) is True
        assert await world.s.rbac.unassign(role.id, user.id, None, None) is False
        assert await world.s.rbac.unassign(role.id, user.id, ResourceType.TEAM, team.id) is True
        assert _ids(await world.s.rbac.list_assignments_for_user(user.id)) == [on_project.id]

    # --- webhook deliveries --------------------------------------------------------

    async def test_a_webhook_delivery_is_new_once_per_source(self, storage: AdminStorage) -> None:
        hooks = storage.webhooks
        assert await hooks.remember("github", "d-1", at(1)) is True
        assert await hooks.remember("github", "d-1", at(1)) is False
        assert await hooks.remember("github", "d-1", at(2)) is False  # a replay, later
        assert await hooks.remember("gitlab", "d-1", at(1)) is True  # another source
        assert await hooks.remember("github", "d-2", at(1)) is True
        assert await hooks.remember("gitlab", "d-1", at(3)) is False
        assert await hooks.remember("github", "d-1' OR '1'='1", at(1)) is True
        assert await hooks.remember("github", "d-1' OR '1'='1", at(1)) is False

    async def test_concurrent_deliveries_of_one_id_are_new_exactly_once(
        self, storage: AdminStorage
    ) -> None:
        hooks = storage.webhooks
        results = await gather(20, lambda i: hooks.remember("github", "race", at(i)))
        assert results.count(True) == 1
        assert results.count(False) == 19
        distinct = await gather(20, lambda i: hooks.remember("github", f"id-{i}", at(i)))
        assert distinct == [True] * 20

    async def test_forget_before_drops_only_older_deliveries(self, storage: AdminStorage) -> None:
        hooks = storage.webhooks
        assert await hooks.remember("github", "old", at(1))
        assert await hooks.remember("gitlab", "old", at(5))
        assert await hooks.remember("github", "edge", at(10))
        assert await hooks.remember("github", "new", at(20))
        assert await hooks.forget_before(at(10)) == 2
        assert await hooks.forget_before(at(10)) == 0
        assert await hooks.remember("github", "old", at(30)) is True  # new again
        assert await hooks.remember("gitlab", "old", at(30)) is True
        assert await hooks.remember("github", "edge", at(30)) is False  # not before at(10)
        assert await hooks.remember("github", "new", at(30)) is False
        assert await hooks.forget_before(at(31)) == 4
        assert await hooks.remember("github", "new", at(32)) is True

    # --- custom domains ------------------------------------------------------------

    async def test_domain_round_trips(self, world: World) -> None:
        deployment = await world.deployment()
        project = await world.s.projects.get(deployment.project_id)
        assert project is not None
        domain = Domain(
            team_id=project.team_id,
            project_id=project.id,
            deployment_id=deployment.id,
            hostname="shop.example.com",
            verification_token="mastra-admin-verify=abc",
            status=DomainStatus.VERIFIED,
            verified_at=at(3),
            last_checked_at=at(4),
            last_error="the router could not be told yet",
            created_by="user-1",
            created_at=at(1),
            updated_at=at(2),
        )
        assert await world.s.domains.create(domain) == domain
        assert await world.s.domains.get(domain.id) == domain
        assert await world.s.domains.get_by_hostname("shop.example.com") == domain
        assert await world.s.domains.get_by_hostname("SHOP.Example.com") == domain
        assert await world.s.domains.get_by_hostname("other.example.com") is None

    async def test_domain_hostname_is_unique_in_the_installation_whatever_its_case(
        self, world: World
    ) -> None:
        await world.domain(hostname="shop.example.com")
        elsewhere = await world.deployment(await world.project(await world.team()))
        for taken in ("shop.example.com", "Shop.EXAMPLE.com"):
            with pytest.raises(Conflict) as info:
                await world.domain(elsewhere, hostname=taken)
            assert _conflict_field(info) == "hostname"
        assert await world.s.domains.list_for_deployment(elsewhere.id) == []

    async def test_concurrent_claims_of_one_hostname_let_exactly_one_win(
        self, world: World
    ) -> None:
        deployments = [await world.deployment() for _ in range(6)]

        async def claim(i: int) -> bool:
            try:
                await world.domain(deployments[i], hostname="race.example.com")
            except Conflict:
                return False
            return True

        assert sorted(await gather(6, claim)) == [False] * 5 + [True]

    async def test_domain_needs_its_deployment(self, world: World) -> None:
        deployment = await world.deployment()
        project = await world.s.projects.get(deployment.project_id)
        assert project is not None
        with pytest.raises(NotFound):
            await world.s.domains.create(
                Domain(
                    team_id=project.team_id,
                    project_id=project.id,
                    deployment_id=new_id(),
                    hostname="x.example.com",
                    verification_token="t",
                )
            )

    async def test_domain_update_changes_only_the_given_fields(self, world: World) -> None:
        domain = await world.domain()
        verified = await world.s.domains.update(
            domain.id,
            DomainUpdate(status=DomainStatus.VERIFIED, verified_at=at(9), last_checked_at=at(9)),
        )
        assert verified.status is DomainStatus.VERIFIED
        assert verified.verified_at == at(9)
        assert verified.last_checked_at == at(9)
        assert verified.hostname == domain.hostname
        assert verified.verification_token == domain.verification_token
        assert verified.updated_at > domain.updated_at
        noted = await world.s.domains.update(domain.id, DomainUpdate(last_error="no TXT record"))
        assert noted.last_error == "no TXT record"
        assert noted.status is DomainStatus.VERIFIED
        cleared = await world.s.domains.update(domain.id, DomainUpdate(last_error=None))
        assert cleared.last_error is None
        assert await world.s.domains.get(domain.id) == cleared

    async def test_domain_lists_are_ordered_by_hostname(self, world: World) -> None:
        project = await world.project()
        first, second = await world.deployment(project), await world.deployment(project)
        b = await world.domain(first, hostname="bravo.example.com")
        a = await world.domain(first, hostname="alpha.example.com")
        c = await world.domain(second, hostname="charlie.example.com", status=DomainStatus.VERIFIED)
        d = await world.domain(hostname="delta.example.com", status=DomainStatus.VERIFIED)
        f = await world.domain(hostname="foxtrot.example.com", status=DomainStatus.FAILED)
        assert _ids(await world.s.domains.list_for_deployment(first.id)) == [a.id, b.id]
        assert _ids(await world.s.domains.list_for_project(project.id)) == [a.id, b.id, c.id]
        assert _ids(await world.s.domains.list_verified()) == [c.id, d.id]
        pending = await world.s.domains.list_by_status([DomainStatus.PENDING])
        assert _ids(pending) == [a.id, b.id]
        either = [DomainStatus.PENDING, DomainStatus.FAILED]
        assert _ids(await world.s.domains.list_by_status(either)) == [a.id, b.id, f.id]
        assert await world.s.domains.list_by_status([]) == []

    async def test_domain_delete(self, world: World) -> None:
        domain = await world.domain(hostname="gone.example.com")
        assert await world.s.domains.delete(domain.id) is True
        assert await world.s.domains.delete(domain.id) is False
        assert await world.s.domains.get(domain.id) is None
        again = await world.domain(hostname="gone.example.com")  # free again
        assert await world.s.domains.get_by_hostname("gone.example.com") == again

    async def test_deleting_a_deployment_deletes_its_domains(self, world: World) -> None:
        deployment = await world.deployment()
        mine = await world.domain(deployment, status=DomainStatus.VERIFIED)
        other = await world.domain()
        assert await world.s.deployments.delete(deployment.id) is True
        assert await world.s.domains.get(mine.id) is None
        assert await world.s.domains.list_for_deployment(deployment.id) == []
        assert _ids(await world.s.domains.list_by_status(list(DomainStatus))) == [other.id]
        taken_again = await world.domain(hostname=mine.hostname)
        assert taken_again.hostname == mine.hostname
