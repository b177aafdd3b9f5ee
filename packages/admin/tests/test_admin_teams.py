"""Teams, members, invites and installations: the rules people rely on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    LicenceLimit,
    NotFound,
    PermissionDenied,
)
from mastra_admin.core.inputs import (
    AcceptInvite,
    AssignRole,
    CreateInstallation,
    CreateProject,
    CreateRole,
    CreateTeam,
    CreateUser,
    InviteMember,
    UpdateMember,
    UpdateTeam,
)
from mastra_admin.core.licence import LicenceValidator, issue_licence
from mastra_admin.core.models import ResourceType, TeamRole, TeamSettings, utcnow
from mastra_admin.core.tokens import hash_token

from .conftest import AdminFactory, World


class TestTeams:
    async def test_the_creator_becomes_owner(self, world: World) -> None:
        team = await world.admin.create_team(world.member.id, CreateTeam(name="Data Science ✨"))
        assert team.slug == "data-science"
        (member,) = await world.admin.list_members(world.member.id, team.id)
        assert (member.user_id, member.role) == (world.member.id, TeamRole.OWNER)

    async def test_slugs_are_unique(self, world: World) -> None:
        with pytest.raises(Conflict) as caught:
            await world.admin.create_team(world.member.id, CreateTeam(name="Other", slug="search"))
        assert caught.value.details["field"] == "slug"

    async def test_listing_shows_only_your_teams(self, world: World) -> None:
        admin = world.admin
        other = await admin.create_team(world.outsider.id, CreateTeam(name="Alpha"))
        assert [t.id for t in await admin.list_teams(world.member.id)] == [world.team.id]
        assert [t.id for t in await admin.list_teams(world.outsider.id)] == [other.id]
        assert [t.name for t in await admin.list_teams(world.root.id)] == ["Alpha", "Search"]

    async def test_read_update_delete(self, world: World) -> None:
        admin, team = world.admin, world.team
        assert (await admin.get_team(world.viewer.id, team.id)).name == "Search"
        assert (await admin.get_team_by_slug(world.viewer.id, "search")).id == team.id
        with pytest.raises(NotFound):
            await admin.get_team(world.outsider.id, team.id)
        with pytest.raises(NotFound):
            await admin.get_team_by_slug(world.outsider.id, "nope")
        with pytest.raises(PermissionDenied):
            await admin.update_team(world.member.id, team.id, UpdateTeam(name="X"))
        updated = await admin.update_team(
            world.team_admin.id,
            team.id,
            UpdateTeam(settings=TeamSettings(preview_ttl_hours=24)),
        )
        assert updated.settings.preview_ttl_hours == 24
        assert updated.name == "Search"
        unchanged = await admin.update_team(
            world.owner.id, team.id, UpdateTeam.model_validate({"name": None, "settings": None})
        )
        assert unchanged.name == "Search"
        assert unchanged.settings.preview_ttl_hours == 24
        with pytest.raises(PermissionDenied):
            await admin.delete_team(world.team_admin.id, team.id)

    async def test_deleting_a_team_stops_what_runs(self, world: World) -> None:
        admin = world.admin
        build = await admin.deploy(world.owner.id, world.deployment.id)
        assert admin.orchestrator is not None
        await admin.orchestrator.run_once()
        assert (await admin.get_build(world.owner.id, build.id)).status.value == "succeeded"
        assert world.runner.running
        await admin.delete_team(world.owner.id, world.team.id)
        assert not world.runner.running
        assert world.router.routes == {}
        with pytest.raises(NotFound):
            await admin.get_team(world.root.id, world.team.id)
        assert await world.storage.projects.get(world.project.id) is None

    async def test_licence_limits_the_number_of_teams(self, make_admin: AdminFactory) -> None:
        admin = await make_admin()  # no licence key: community, three teams
        root, _ = await admin.bootstrap_admin("root@example.com")
        for n in range(3):
            await admin.create_team(root.id, CreateTeam(name=f"Team {n}"))
        with pytest.raises(LicenceLimit, match="at most 3 teams") as caught:
            await admin.create_team(root.id, CreateTeam(name="Team 3"))
        assert caught.value.details["limit"] == "max_teams"


class TestMembers:
    async def test_roles_change_with_permission(self, world: World) -> None:
        admin, team = world.admin, world.team
        with pytest.raises(PermissionDenied):
            await admin.update_member_role(
                world.member.id, team.id, world.viewer.id, UpdateMember(role=TeamRole.MEMBER)
            )
        changed = await admin.update_member_role(
            world.team_admin.id, team.id, world.viewer.id, UpdateMember(role=TeamRole.MEMBER)
        )
        assert changed.role is TeamRole.MEMBER
        with pytest.raises(NotFound):
            await admin.update_member_role(
                world.owner.id, team.id, world.outsider.id, UpdateMember(role=TeamRole.MEMBER)
            )

    async def test_only_owners_make_or_unmake_owners(self, world: World) -> None:
        admin, team = world.admin, world.team
        with pytest.raises(PermissionDenied, match="only a team owner"):
            await admin.update_member_role(
                world.team_admin.id, team.id, world.member.id, UpdateMember(role=TeamRole.OWNER)
            )
        with pytest.raises(PermissionDenied, match="only a team owner"):
            await admin.update_member_role(
                world.team_admin.id, team.id, world.owner.id, UpdateMember(role=TeamRole.ADMIN)
            )
        with pytest.raises(PermissionDenied, match="only a team owner"):
            await admin.remove_member(world.team_admin.id, team.id, world.owner.id)
        with pytest.raises(PermissionDenied, match="only a team owner"):
            await admin.invite_member(
                world.team_admin.id,
                team.id,
                InviteMember(email="x@example.com", role=TeamRole.OWNER),
            )
        promoted = await admin.update_member_role(
            world.owner.id, team.id, world.team_admin.id, UpdateMember(role=TeamRole.OWNER)
        )
        assert promoted.role is TeamRole.OWNER

    async def test_the_last_owner_is_never_removed_or_demoted(self, world: World) -> None:
        admin, team, owner = world.admin, world.team, world.owner
        with pytest.raises(Conflict, match="last owner"):
            await admin.update_member_role(
                owner.id, team.id, owner.id, UpdateMember(role=TeamRole.ADMIN)
            )
        with pytest.raises(Conflict, match="last owner"):
            await admin.remove_member(owner.id, team.id, owner.id)
        with pytest.raises(Conflict, match="last owner"):
            await admin.remove_member(world.root.id, team.id, owner.id)
        # With a second owner, the first may step down.
        await admin.update_member_role(
            owner.id, team.id, world.team_admin.id, UpdateMember(role=TeamRole.OWNER)
        )
        demoted = await admin.update_member_role(
            owner.id, team.id, owner.id, UpdateMember(role=TeamRole.ADMIN)
        )
        assert demoted.role is TeamRole.ADMIN

    async def test_members_may_leave_and_lose_access(self, world: World) -> None:
        admin, team = world.admin, world.team
        await admin.remove_member(world.viewer.id, team.id, world.viewer.id)
        with pytest.raises(NotFound):
            await admin.get_team(world.viewer.id, team.id)
        with pytest.raises(NotFound):
            await admin.remove_member(world.outsider.id, team.id, world.outsider.id)

    async def test_removal_takes_the_members_roles_in_the_team_with_it(self, world: World) -> None:
        admin, team, owner = world.admin, world.team, world.owner
        role = await admin.create_role(
            owner.id, team.id, CreateRole(name="reader", permissions=["project:read"])
        )
        await admin.assign_role(
            owner.id,
            team.id,
            AssignRole(
                role_id=role.id,
                user_id=world.viewer.id,
                resource_type=ResourceType.PROJECT,
                resource_id=world.project.id,
            ),
        )
        await admin.remove_member(owner.id, team.id, world.viewer.id)
        with pytest.raises(NotFound):
            await admin.get_project(world.viewer.id, world.project.id)
        assert await world.storage.rbac.list_assignments_for_user(world.viewer.id) == []


class TestInvites:
    async def test_the_invite_is_emailed_with_its_token(self, world: World) -> None:
        admin = world.admin
        invite, raw = await admin.invite_member(
            world.team_admin.id,
            world.team.id,
            InviteMember(email="New@Example.com", role=TeamRole.VIEWER),
        )
        message = world.email.sent[-1]
        assert message.to.lower() == "new@example.com"
        assert raw in message.text
        assert message.template == "team_invite"
        assert message.data["token"] == raw
        assert invite.token_hash == hash_token(raw)
        assert raw not in invite.model_dump_json()
        assert invite.expires_at - invite.created_at == timedelta(days=7)
        pending = await admin.list_invites(world.viewer.id, world.team.id)
        assert [i.id for i in pending] == [invite.id]

    async def test_accepting_joins_the_team_with_the_invited_role(self, world: World) -> None:
        admin = world.admin
        _, raw = await admin.invite_member(
            world.owner.id,
            world.team.id,
            InviteMember(email="New@Example.com", role=TeamRole.ADMIN),
        )
        newcomer = await admin.create_user(world.root.id, CreateUser(email="new@EXAMPLE.com"))
        member = await admin.accept_invite(newcomer.id, AcceptInvite(token=raw))
        assert member.role is TeamRole.ADMIN
        assert await admin.list_invites(world.owner.id, world.team.id) == []
        with pytest.raises(Conflict, match="already been accepted"):
            await admin.accept_invite(newcomer.id, raw)

    async def test_the_email_must_match(self, world: World) -> None:
        admin = world.admin
        _, raw = await admin.invite_member(
            world.owner.id, world.team.id, InviteMember(email="someone@example.com")
        )
        with pytest.raises(PermissionDenied, match="another email"):
            await admin.accept_invite(world.outsider.id, raw)

    async def test_unknown_and_expired_tokens(self, world: World) -> None:
        admin = world.admin
        with pytest.raises(NotFound):
            await admin.accept_invite(world.outsider.id, "mai_" + "x" * 43)
        invite, raw = await admin.invite_member(
            world.owner.id, world.team.id, InviteMember(email="outsider@example.com")
        )
        # Age the invite past its expiry by rewriting it through the store.
        await world.storage.teams.delete_invite(invite.id)
        await world.storage.teams.create_invite(
            invite.model_copy(update={"expires_at": utcnow() - timedelta(minutes=1)})
        )
        with pytest.raises(InvalidInput, match="expired on"):
            await admin.accept_invite(world.outsider.id, raw)
        assert await admin.list_invites(world.owner.id, world.team.id) == []

    async def test_existing_members_are_not_invited(self, world: World) -> None:
        with pytest.raises(Conflict, match="already a member"):
            await world.admin.invite_member(
                world.owner.id, world.team.id, InviteMember(email="MEMBER@example.com")
            )

    async def test_inviting_again_replaces_the_pending_invite(self, world: World) -> None:
        admin = world.admin
        _, first = await admin.invite_member(
            world.owner.id, world.team.id, InviteMember(email="outsider@example.com")
        )
        second_invite, second = await admin.invite_member(
            world.owner.id, world.team.id, InviteMember(email="Outsider@example.com")
        )
        assert [i.id for i in await admin.list_invites(world.owner.id, world.team.id)] == [
            second_invite.id
        ]
        with pytest.raises(NotFound):
            await admin.accept_invite(world.outsider.id, first)
        await admin.accept_invite(world.outsider.id, second)

    async def test_revoke(self, world: World) -> None:
        admin = world.admin
        invite, raw = await admin.invite_member(
            world.owner.id, world.team.id, InviteMember(email="outsider@example.com")
        )
        with pytest.raises(PermissionDenied):
            await admin.revoke_invite(world.member.id, world.team.id, invite.id)
        await admin.revoke_invite(world.team_admin.id, world.team.id, invite.id)
        with pytest.raises(NotFound):
            await admin.accept_invite(world.outsider.id, raw)
        with pytest.raises(NotFound):
            await admin.revoke_invite(world.owner.id, world.team.id, invite.id)

    async def test_members_and_pending_invites_count_towards_the_licence(
        self, make_admin: AdminFactory, licence_keypair: tuple[str, str]
    ) -> None:
        private, public = licence_keypair
        key = issue_licence(
            private, {"tier": "team", "organisation": "Acme", "limits": {"max_members_per_team": 3}}
        )
        admin = await make_admin(licence=LicenceValidator(key, public))
        root, _ = await admin.bootstrap_admin("root@example.com")
        team = await admin.create_team(root.id, CreateTeam(name="Small"))
        _, raw = await admin.invite_member(root.id, team.id, InviteMember(email="a@example.com"))
        await admin.invite_member(root.id, team.id, InviteMember(email="b@example.com"))
        with pytest.raises(LicenceLimit, match="at most 3 members per team"):
            await admin.invite_member(root.id, team.id, InviteMember(email="c@example.com"))
        # Re-inviting an address already pending does not count twice.
        await admin.invite_member(root.id, team.id, InviteMember(email="b@example.com"))
        a = await admin.create_user(root.id, CreateUser(email="a@example.com"))
        await admin.accept_invite(a.id, raw)
        assert len(await admin.list_members(root.id, team.id)) == 2

    async def test_without_an_email_provider_the_token_is_still_returned(
        self, make_admin: AdminFactory
    ) -> None:
        admin = await make_admin(email=None)
        root, _ = await admin.bootstrap_admin("root@example.com")
        team = await admin.create_team(root.id, CreateTeam(name="Quiet"))
        invite, raw = await admin.invite_member(
            root.id, team.id, InviteMember(email="a@example.com")
        )
        assert invite.token_hash == hash_token(raw)


class TestInstallations:
    async def test_add_list_remove(self, world: World) -> None:
        admin, team = world.admin, world.team
        data = CreateInstallation(provider="github", installation_id="42", account_name="acme")
        with pytest.raises(PermissionDenied):
            await admin.add_installation(world.member.id, team.id, data)
        installation = await admin.add_installation(world.team_admin.id, team.id, data)
        with pytest.raises(Conflict):
            await admin.add_installation(world.owner.id, team.id, data)
        assert [i.id for i in await admin.list_installations(world.viewer.id, team.id)] == [
            installation.id
        ]
        with pytest.raises(NotFound):
            await admin.list_installations(world.outsider.id, team.id)
        await admin.remove_installation(world.owner.id, team.id, installation.id)
        assert await admin.list_installations(world.owner.id, team.id) == []
        with pytest.raises(NotFound):
            await admin.remove_installation(world.owner.id, team.id, installation.id)


async def test_a_project_scoped_guest_sees_the_team_in_their_list(world: World) -> None:
    admin = world.admin
    role = await admin.create_role(
        world.owner.id, world.team.id, CreateRole(name="reader", permissions=["project:read"])
    )
    await admin.assign_role(
        world.owner.id,
        world.team.id,
        AssignRole(
            role_id=role.id,
            user_id=world.outsider.id,
            resource_type=ResourceType.PROJECT,
            resource_id=world.project.id,
        ),
    )
    assert [t.id for t in await admin.list_teams(world.outsider.id)] == [world.team.id]
    other = await admin.create_project(
        world.owner.id, world.team.id, CreateProject(name="Support", source_id="support-bot")
    )
    page = await admin.list_projects(world.outsider.id, world.team.id)
    assert [p.id for p in page.items] == [world.project.id]
    assert page.total == 1
    assert other.id not in [p.id for p in page.items]
