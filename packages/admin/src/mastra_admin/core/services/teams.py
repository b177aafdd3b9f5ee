"""Teams, their members, invites, installations and custom roles."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from mastra_admin.core.email import EmailMessage
from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from mastra_admin.core.inputs import (
    AcceptInvite,
    AssignRole,
    CreateInstallation,
    CreateRole,
    CreateTeam,
    InviteMember,
    UpdateMember,
    UpdateRole,
    UpdateTeam,
)
from mastra_admin.core.models import (
    ResourceType,
    Role,
    RoleAssignment,
    Team,
    TeamInstallation,
    TeamInvite,
    TeamMember,
    TeamRole,
    User,
    utcnow,
)
from mastra_admin.core.rbac import (
    PLATFORM_ADMIN,
    SYSTEM_ROLE_NAMES,
    Access,
    Actor,
    as_principal,
    check_custom_permissions,
    user_id_of,
)
from mastra_admin.core.services._service import (
    Service,
    ensure_can_grant,
    set_fields,
)
from mastra_admin.core.storage import (
    RoleUpdate,
    TeamUpdate,
    last_owner_conflict,
)
from mastra_admin.core.tokens import (
    INVITE_TOKEN_PREFIX,
    generate_token,
    hash_token,
)

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext
    from mastra_admin.core.services.deployments import DeploymentService

__all__ = ["TeamService"]

_log = structlog.get_logger("mastra_admin.core.services.teams")

INVITE_TTL = timedelta(days=7)
"""How long an invite can be accepted."""


class TeamService(Service):
    """Teams, members, invites, installations and custom roles.

    Deleting one tears its deployments down through the deployments service."""

    def __init__(self, context: ServiceContext, deployments: DeploymentService) -> None:
        super().__init__(context)
        self.deployments = deployments

    # --- teams ------------------------------------------------------------------------

    async def create_team(self, actor: Actor, data: CreateTeam) -> Team:
        """Create a team; the creator becomes its owner. Any user may create teams,
        up to the licence's ``max_teams`` (with a token, one scoped to ``*`` or none)."""
        user = await self._user(self._ensure_unscoped(actor, "create a team"))
        self.licence.check_limit("max_teams", await self.storage.teams.count())
        team = await self.storage.teams.create(
            Team(name=data.name, slug=data.resolved_slug, settings=data.settings)
        )
        try:
            await self.storage.teams.add_member(
                TeamMember(team_id=team.id, user_id=user.id, role=TeamRole.OWNER)
            )
        except BaseException:
            await self.storage.teams.delete(team.id)
            raise
        _log.info("team.created", team_id=team.id, actor_id=user_id_of(actor))
        return team

    async def get_team(self, actor: Actor, team_id: str) -> Team:
        return await self._team_for(actor, team_id, "team:read")

    async def get_team_by_slug(self, actor: Actor, slug: str) -> Team:
        team = await self.storage.teams.get_by_slug(slug)
        if team is None:
            raise NotFound("team not found", details={"slug": slug})
        return await self._team_for(actor, team.id, "team:read")

    async def list_teams(self, actor: Actor) -> list[Team]:
        """Teams the user can see (every team for a platform administrator), by name."""
        principal = as_principal(actor)
        if principal.project_id is not None or not principal.scope_allows("team:read"):
            return []
        if await self.authorizer.is_platform_admin(principal):
            return await self._all_teams()
        user_id = principal.user_id
        teams = {team.id: team for team in await self.storage.teams.list_for_user(user_id)}
        for assignment in await self.storage.rbac.list_assignments_for_user(user_id):
            team_id: str | None = None
            if assignment.resource_type is ResourceType.TEAM:
                team_id = assignment.resource_id
            elif assignment.resource_type is ResourceType.PROJECT and assignment.resource_id:
                project = await self.storage.projects.get(assignment.resource_id)
                team_id = project.team_id if project else None
            if team_id and team_id not in teams:
                team = await self.storage.teams.get(team_id)
                if team is not None and await self.authorizer.can(actor, "team:read", team_id):
                    teams[team.id] = team
        return sorted(teams.values(), key=lambda t: (t.name, t.id))

    async def _all_teams(self) -> list[Team]:
        found: list[Team] = []
        while True:
            page = await self.storage.teams.list_all(limit=500, offset=len(found))
            found.extend(page)
            if len(page) < 500:
                return found

    async def update_team(self, actor: Actor, team_id: str, data: UpdateTeam) -> Team:
        await self._team_for(actor, team_id, "team:update")
        changes = set_fields(data)
        team = await self.storage.teams.update(team_id, TeamUpdate(**changes))
        _log.info(
            "team.updated", team_id=team_id, actor_id=user_id_of(actor), fields=sorted(changes)
        )
        return team

    async def delete_team(self, actor: Actor, team_id: str) -> None:
        """Delete the team with everything in it, stopping its servers first."""
        await self._team_for(actor, team_id, "team:delete")
        for project in await self._team_projects(team_id):
            for deployment in await self.storage.deployments.list_for_project(project.id):
                await self.deployments.teardown(deployment)
        await self.storage.teams.delete(team_id)
        _log.info("team.deleted", team_id=team_id, actor_id=user_id_of(actor))

    # --- members ----------------------------------------------------------------------

    async def list_members(self, actor: Actor, team_id: str) -> list[TeamMember]:
        await self._team_for(actor, team_id, "team:members:read")
        return await self.storage.teams.list_members(team_id)

    async def _member(self, team_id: str, user_id: str) -> TeamMember:
        member = await self.storage.teams.get_member(team_id, user_id)
        if member is None:
            raise NotFound("member not found", details={"team_id": team_id, "user_id": user_id})
        return member

    async def _owner_count(self, team_id: str) -> int:
        members = await self.storage.teams.list_members(team_id)
        return sum(1 for m in members if m.role is TeamRole.OWNER)

    @staticmethod
    def _ensure_owner_power(access: Access, action: str) -> None:
        """Owners' seats are for owners: only an owner (or a platform administrator)
        makes, demotes or removes an owner."""
        if not (access.platform_admin or access.team_role is TeamRole.OWNER):
            raise PermissionDenied(
                f"only a team owner may {action}", details={"permission": "team:owner"}
            )

    async def update_member_role(
        self, actor: Actor, team_id: str, user_id: str, data: UpdateMember
    ) -> TeamMember:
        """Change a member's role; the last owner keeps theirs."""
        await self._team_for(actor, team_id, "team:members:write")
        access = await self.authorizer.access(actor, team_id)
        member = await self._member(team_id, user_id)
        if member.role is data.role:
            return member
        if TeamRole.OWNER in (member.role, data.role):
            self._ensure_owner_power(access, "make or demote an owner")
        if member.role is TeamRole.OWNER and await self._owner_count(team_id) <= 1:
            raise last_owner_conflict("role", user_id)
        # Checked again by the storage, atomically: another owner may be leaving now.
        updated = await self.storage.teams.update_member_role(
            team_id, user_id, data.role, keep_owner=True
        )
        _log.info(
            "member.role_changed",
            team_id=team_id,
            user_id=user_id,
            role=data.role.value,
            actor_id=user_id_of(actor),
        )
        return updated

    async def remove_member(self, actor: Actor, team_id: str, user_id: str) -> None:
        """Remove a member (or leave the team yourself). The last owner stays.
        Their custom role assignments within the team go with them."""
        if user_id_of(actor) == user_id:
            team = await self._team_for(actor, team_id, "team:read")
            member = await self._member(team.id, user_id)
        else:
            await self._team_for(actor, team_id, "team:members:write")
            member = await self._member(team_id, user_id)
            if member.role is TeamRole.OWNER:
                access = await self.authorizer.access(actor, team_id)
                self._ensure_owner_power(access, "remove an owner")
        if member.role is TeamRole.OWNER and await self._owner_count(team_id) <= 1:
            raise last_owner_conflict("user_id", user_id)
        await self.storage.teams.remove_member(team_id, user_id, keep_owner=True)
        project_ids = {p.id for p in await self._team_projects(team_id)}
        for assignment in await self.storage.rbac.list_assignments_for_user(user_id):
            in_team = (
                assignment.resource_type is ResourceType.TEAM and assignment.resource_id == team_id
            ) or (
                assignment.resource_type is ResourceType.PROJECT
                and assignment.resource_id in project_ids
            )
            if in_team:
                await self.storage.rbac.unassign(
                    assignment.role_id, user_id, assignment.resource_type, assignment.resource_id
                )
        _log.info("member.removed", team_id=team_id, user_id=user_id, actor_id=user_id_of(actor))

    # --- invites ----------------------------------------------------------------------

    async def invite_member(
        self, actor: Actor, team_id: str, data: InviteMember
    ) -> tuple[TeamInvite, str]:
        """Invite someone by email. The email carries the raw token (also returned,
        this once, so that it can be handed over another way). Inviting an address
        again replaces its pending invite. Pending invites count towards the
        licence's ``max_members_per_team``."""
        team = await self._team_for(actor, team_id, "team:members:write")
        if data.role is TeamRole.OWNER:
            self._ensure_owner_power(
                await self.authorizer.access(actor, team_id), "invite an owner"
            )
        email = str(data.email)
        existing = await self.storage.users.get_by_email(email)
        if existing is not None and await self.storage.teams.get_member(team_id, existing.id):
            raise Conflict("this person is already a member", details={"field": "email"})
        now = utcnow()
        pending = await self.storage.teams.list_pending_invites(team_id, now)
        replaced = [i for i in pending if i.email.lower() == email.lower()]
        members = await self.storage.teams.count_members(team_id)
        self.licence.check_limit("max_members_per_team", members + len(pending) - len(replaced))
        for invite in replaced:
            await self.storage.teams.delete_invite(invite.id)
        generated = generate_token(INVITE_TOKEN_PREFIX)
        invite = await self.storage.teams.create_invite(
            TeamInvite(
                team_id=team_id,
                email=email,
                role=data.role,
                invited_by=user_id_of(actor),
                token_hash=generated.token_hash,
                expires_at=now + INVITE_TTL,
                created_at=now,
            )
        )
        await self._send_invite(
            team, invite, generated.raw, inviter=await self._user(user_id_of(actor))
        )
        _log.info(
            "invite.created", team_id=team_id, invite_id=invite.id, actor_id=user_id_of(actor)
        )
        return invite, generated.raw

    async def _send_invite(
        self, team: Team, invite: TeamInvite, raw: str, *, inviter: User
    ) -> None:
        if self.context.email is None:
            _log.warning("invite.not_emailed", invite_id=invite.id, reason="no email provider")
            return
        accept_url = f"{self.settings.admin_url}/invites/accept?token={raw}"
        who = inviter.name or inviter.email
        await self.context.email.send(
            EmailMessage(
                to=invite.email,
                subject=f"{who} invited you to {team.name} on MastraAdmin",
                text=(
                    f"{who} invited you to join the team {team.name} as {invite.role.value}.\n\n"
                    f"Accept the invitation: {accept_url}\n\n"
                    f"It expires on {invite.expires_at:%Y-%m-%d %H:%M} UTC."
                ),
                template="team_invite",
                data={
                    "team_id": team.id,
                    "team_name": team.name,
                    "invite_id": invite.id,
                    "role": invite.role.value,
                    "token": raw,
                    "accept_url": accept_url,
                    "expires_at": invite.expires_at.isoformat(),
                    "invited_by": who,
                },
            )
        )

    async def list_invites(self, actor: Actor, team_id: str) -> list[TeamInvite]:
        """Pending invites (not accepted, not expired), newest first."""
        await self._team_for(actor, team_id, "team:members:read")
        return await self.storage.teams.list_pending_invites(team_id, utcnow())

    async def revoke_invite(self, actor: Actor, team_id: str, invite_id: str) -> None:
        await self._team_for(actor, team_id, "team:members:write")
        invite = await self.storage.teams.get_invite(invite_id)
        if invite is None or invite.team_id != team_id:
            raise NotFound("invite not found", details={"invite_id": invite_id})
        await self.storage.teams.delete_invite(invite_id)
        _log.info(
            "invite.revoked", team_id=team_id, invite_id=invite_id, actor_id=user_id_of(actor)
        )

    async def accept_invite(self, actor: Actor, token: str | AcceptInvite) -> TeamMember:
        """Join a team with an invite token. The invite must be pending and made out
        to the acting user's email (compared case-insensitively)."""
        user_id = self._ensure_unscoped(actor, "accept an invite")
        raw = token.token if isinstance(token, AcceptInvite) else token
        invite = await self.storage.teams.get_invite_by_token_hash(hash_token(raw))
        if invite is None:
            raise NotFound("invite not found")
        if invite.accepted_at is not None:
            raise Conflict("this invite has already been accepted", details={"field": "token"})
        if invite.expires_at <= utcnow():
            raise InvalidInput(
                f"this invite expired on {invite.expires_at:%Y-%m-%d %H:%M} UTC: ask for a new one",
                details={"field": "token"},
            )
        user = await self._user(user_id)
        if user.email.lower() != invite.email.lower():
            raise PermissionDenied(
                "this invite was sent to another email address",
                details={"field": "email"},
            )
        if await self.storage.teams.get_member(invite.team_id, user.id) is not None:
            raise Conflict("you are already a member of this team", details={"field": "team_id"})
        self.licence.check_limit(
            "max_members_per_team", await self.storage.teams.count_members(invite.team_id)
        )
        if not await self.storage.teams.mark_invite_accepted(invite.id, utcnow()):
            raise Conflict("this invite has already been accepted", details={"field": "token"})
        member = await self.storage.teams.add_member(
            TeamMember(team_id=invite.team_id, user_id=user.id, role=invite.role)
        )
        _log.info("invite.accepted", team_id=invite.team_id, invite_id=invite.id, user_id=user.id)
        return member

    # --- installations ----------------------------------------------------------------

    async def add_installation(
        self, actor: Actor, team_id: str, data: CreateInstallation
    ) -> TeamInstallation:
        await self._team_for(actor, team_id, "team:update")
        installation = await self.storage.teams.create_installation(
            TeamInstallation(team_id=team_id, **data.model_dump())
        )
        _log.info(
            "installation.added",
            team_id=team_id,
            provider=data.provider,
            installation_id=installation.id,
            actor_id=user_id_of(actor),
        )
        return installation

    async def list_installations(self, actor: Actor, team_id: str) -> list[TeamInstallation]:
        await self._team_for(actor, team_id, "team:read")
        return await self.storage.teams.list_installations(team_id)

    async def remove_installation(self, actor: Actor, team_id: str, installation_id: str) -> None:
        await self._team_for(actor, team_id, "team:update")
        installations = await self.storage.teams.list_installations(team_id)
        if not any(i.id == installation_id for i in installations):
            raise NotFound("installation not found", details={"installation_id": installation_id})
        await self.storage.teams.delete_installation(installation_id)
        _log.info(
            "installation.removed",
            team_id=team_id,
            installation_id=installation_id,
            actor_id=user_id_of(actor),
        )

    # --- custom roles -----------------------------------------------------------------

    async def list_roles(self, actor: Actor, team_id: str) -> list[Role]:
        """The system roles and the team's custom roles."""
        await self._team_for(actor, team_id, "role:read")
        return await self.storage.rbac.list_roles(team_id)

    async def _custom_role(self, team_id: str, role_id: str) -> Role:
        role = await self.storage.rbac.get_role(role_id)
        if role is None or (not role.is_system and role.team_id != team_id):
            raise NotFound("role not found", details={"role_id": role_id})
        if role.is_system:
            raise PermissionDenied(
                "system roles cannot be changed", details={"role_id": role_id, "role": role.name}
            )
        return role

    async def create_role(self, actor: Actor, team_id: str, data: CreateRole) -> Role:
        """A custom role of the team (licence feature ``advanced-rbac``)."""
        await self._team_for(actor, team_id, "role:write")
        self.licence.require_feature("advanced-rbac")
        if data.name in SYSTEM_ROLE_NAMES:
            raise Conflict("that name belongs to a system role", details={"field": "name"})
        permissions = check_custom_permissions(data.permissions)
        ensure_can_grant(await self.authorizer.access(actor, team_id), permissions)
        role = await self.storage.rbac.create_role(
            Role(
                team_id=team_id,
                name=data.name,
                description=data.description,
                permissions=permissions,
            )
        )
        _log.info("role.created", team_id=team_id, role_id=role.id, actor_id=user_id_of(actor))
        return role

    async def update_role(self, actor: Actor, team_id: str, role_id: str, data: UpdateRole) -> Role:
        await self._team_for(actor, team_id, "role:write")
        self.licence.require_feature("advanced-rbac")
        await self._custom_role(team_id, role_id)
        patch = RoleUpdate()
        if "description" in data.model_fields_set:
            patch.description = data.description
        if data.permissions is not None:
            permissions = check_custom_permissions(data.permissions)
            ensure_can_grant(await self.authorizer.access(actor, team_id), permissions)
            patch.permissions = permissions
        role = await self.storage.rbac.update_role(role_id, patch)
        _log.info("role.updated", team_id=team_id, role_id=role_id, actor_id=user_id_of(actor))
        return role

    async def delete_role(self, actor: Actor, team_id: str, role_id: str) -> None:
        """Delete a custom role with its assignments (allowed without the licence
        feature, so that a downgraded installation can clean up)."""
        await self._team_for(actor, team_id, "role:write")
        await self._custom_role(team_id, role_id)
        await self.storage.rbac.delete_role(role_id)
        _log.info("role.deleted", team_id=team_id, role_id=role_id, actor_id=user_id_of(actor))

    async def _assignment_scope(self, team_id: str, data: AssignRole) -> str | None:
        """Check that the assignment's resource lies in the team; the project id
        for a project-scoped assignment."""
        if data.resource_type is ResourceType.TEAM:
            if data.resource_id != team_id:
                raise InvalidInput(
                    "a team-scoped assignment must name this team",
                    details={"field": "resource_id"},
                )
            return None
        project = await self.storage.projects.get(data.resource_id)
        if project is None or project.team_id != team_id:
            raise NotFound("project not found", details={"project_id": data.resource_id})
        return project.id

    async def assign_role(self, actor: Actor, team_id: str, data: AssignRole) -> RoleAssignment:
        """Give a user a role on the team or on one of its projects (licence feature
        ``advanced-rbac``). The role is a custom role of the team or a team system
        role; the user need not be a member (a project-scoped role gives a guest
        access to that project only)."""
        await self._team_for(actor, team_id, "role:write")
        self.licence.require_feature("advanced-rbac")
        project_id = await self._assignment_scope(team_id, data)
        role = await self.storage.rbac.get_role(data.role_id)
        if role is None or (not role.is_system and role.team_id != team_id):
            raise NotFound("role not found", details={"role_id": data.role_id})
        if role.is_system and role.name == PLATFORM_ADMIN:
            raise PermissionDenied(
                "the platform administrator role is not given within a team",
                details={"role_id": role.id},
            )
        await self._user(data.user_id)
        access = await self.authorizer.access(actor, team_id, project_id)
        ensure_can_grant(access, [str(p) for p in role.permissions])
        assignment = await self.storage.rbac.assign(
            RoleAssignment(
                role_id=role.id,
                user_id=data.user_id,
                resource_type=data.resource_type,
                resource_id=data.resource_id,
            )
        )
        _log.info(
            "role.assigned",
            team_id=team_id,
            role_id=role.id,
            user_id=data.user_id,
            resource_type=data.resource_type.value,
            resource_id=data.resource_id,
            actor_id=user_id_of(actor),
        )
        return assignment

    async def unassign_role(self, actor: Actor, team_id: str, data: AssignRole) -> None:
        await self._team_for(actor, team_id, "role:write")
        await self._assignment_scope(team_id, data)
        removed = await self.storage.rbac.unassign(
            data.role_id, data.user_id, data.resource_type, data.resource_id
        )
        if not removed:
            raise NotFound("role assignment not found", details={"role_id": data.role_id})
        _log.info(
            "role.unassigned",
            team_id=team_id,
            role_id=data.role_id,
            user_id=data.user_id,
            actor_id=user_id_of(actor),
        )

    async def list_role_assignments(self, actor: Actor, team_id: str) -> list[RoleAssignment]:
        """Assignments on the team and on each of its projects."""
        await self._team_for(actor, team_id, "role:read")
        found = list(
            await self.storage.rbac.list_assignments_for_resource(ResourceType.TEAM, team_id)
        )
        for project in await self._team_projects(team_id):
            found.extend(
                await self.storage.rbac.list_assignments_for_resource(
                    ResourceType.PROJECT, project.id
                )
            )
        return found
