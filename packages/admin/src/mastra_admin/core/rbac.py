"""Role-based access control: the permission catalogue, the system roles, and the
``Authorizer`` that decides what a user may do on a team or project.

A permission reads ``resource:action`` (``project:read``, ``team:members:write``).
A granted permission may be a wildcard: ``*`` grants everything, ``project:*``
grants ``project:read`` and ``project:anything:below``.

Where a user's permissions come from, for a team and optionally one of its projects:

- an unscoped assignment of ``platform_admin`` (or of any role): everywhere;
- membership of the team: the system role of the member's rank (``team_owner`` ...);
- role assignments scoped to the team: on the team and all of its projects;
- role assignments scoped to a project: on that project only.

Anyone with any access to a team may read the team itself (``team:read``): a person
given one project must be able to see which team it belongs to.

Who acts is a ``Principal``: a user with all of their permissions (a plain user id
means that too), a user's API token limited to its scopes, or a project token, which
acts for its creator within its scopes and on its one project only. What a principal
may do is always the intersection of what its user's roles grant and its scopes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from mastra_admin.core.errors import InvalidInput, NotFound, PermissionDenied
from mastra_admin.core.models import ResourceType, Role, RoleAssignment, TeamRole

if TYPE_CHECKING:
    from mastra_admin.core.changes import Snapshot
    from mastra_admin.core.storage import AdminStorage

__all__ = [
    "PERMISSIONS",
    "PLATFORM_ADMIN",
    "SYSTEM_ROLE_NAMES",
    "Access",
    "Actor",
    "Authorizer",
    "Principal",
    "as_principal",
    "check_custom_permissions",
    "has_permission",
    "permission_matches",
    "permission_table",
    "scopes_cover",
    "system_role_id",
    "system_role_permissions",
    "system_roles",
    "user_id_of",
]

PLATFORM_ADMIN = "platform_admin"

PERMISSIONS: dict[str, str] = {
    "team:read": "See the team, its settings and installations",
    "team:update": "Rename the team and change its settings and installations",
    "team:delete": "Delete the team with everything in it",
    "team:members:read": "See members and pending invites",
    "team:members:write": "Invite, remove and change the role of members",
    "role:read": "See the team's custom roles and who holds them",
    "role:write": "Create, change, delete, assign and unassign custom roles",
    "project:read": "See projects",
    "project:create": "Create projects",
    "project:update": (
        "Change a project's name, branch and build settings (its commands need"
        " project:commands:write too)"
    ),
    "project:commands:write": (
        "Change what a project's builds and servers execute: install, build and start"
        " commands, Node options, and env vars that change how Node, npm or the loader"
        " load code"
    ),
    "project:delete": "Delete projects with their deployments",
    "env_var:read": "See env var keys (values stay hidden)",
    "env_var:write": "Set and delete env vars (some names need project:commands:write too)",
    "env_var:reveal": "Read env var values in clear text",
    "token:read": "See a project's API tokens (never the token itself)",
    "token:write": "Create and delete a project's API tokens",
    "deployment:read": "See deployments",
    "deployment:create": "Create deployments",
    "deployment:update": "Change a deployment's overrides and expiry",
    "deployment:delete": "Delete deployments",
    "deployment:deploy": "Deploy, stop, restart and roll back deployments (with build:create)",
    "build:read": "See builds and their logs",
    "build:create": "Queue builds: deploy, restart and roll back need it too",
    "build:cancel": "Cancel queued and running builds",
    "observability:read": "Read traces, spans, logs, metrics, scores and feedback",
    "route:read": "See routes",
    "server:read": "See running servers",
    "domain:read": "See custom domains and the DNS records they need",
    "domain:verify": "Check a custom domain's DNS now (a verified domain is served)",
    "domain:manage": "Add and remove custom domains",
}
"""Every permission the core checks, with what it allows."""

_READ_ONLY = (
    "team:read",
    "team:members:read",
    "role:read",
    "project:read",
    "env_var:read",
    "deployment:read",
    "build:read",
    "observability:read",
    "route:read",
    "server:read",
    "domain:read",
)

_SYSTEM_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    PLATFORM_ADMIN: ("Full platform administration access", ("*",)),
    "team_owner": (
        "Full team access including deletion and member management",
        (
            "team:*",
            "role:*",
            "project:*",
            "env_var:*",
            "token:*",
            "deployment:*",
            "build:*",
            "observability:*",
            "route:*",
            "server:*",
            "domain:*",
        ),
    ),
    "team_admin": (
        "Team administration without deleting the team",
        (
            "team:read",
            "team:update",
            "team:members:read",
            "team:members:write",
            "role:*",
            "project:*",
            "env_var:*",
            "token:*",
            "deployment:*",
            "build:*",
            "observability:*",
            "route:*",
            "server:*",
            "domain:*",
        ),
    ),
    "team_member": (
        "Builds and deploys projects; cannot reveal secrets, delete, or manage people",
        (
            *_READ_ONLY,
            "project:create",
            "project:update",
            "env_var:write",
            "token:read",
            "deployment:create",
            "deployment:update",
            "deployment:deploy",
            "build:create",
            "build:cancel",
            "domain:verify",
        ),
    ),
    "team_viewer": ("Read-only team access; env var values stay hidden", _READ_ONLY),
}

SYSTEM_ROLE_NAMES: tuple[str, ...] = tuple(_SYSTEM_ROLES)

_ROLE_ID_NAMESPACE = uuid.UUID("6f1d3c52-8d1e-4a7b-9a51-3d0c7b2e5a10")


def system_role_id(name: str) -> str:
    """The stable id of a system role (the same in every installation)."""
    return str(uuid.uuid5(_ROLE_ID_NAMESPACE, name))


def system_role_permissions(name: str) -> tuple[str, ...]:
    """The permissions of a system role by name; ``KeyError`` for another name."""
    return _SYSTEM_ROLES[name][1]


def system_roles() -> list[Role]:
    """The five system roles, as ``AdminStorage.init`` seeds them."""
    return [
        Role(
            id=system_role_id(name),
            team_id=None,
            name=name,
            description=description,
            permissions=list(permissions),
            is_system=True,
        )
        for name, (description, permissions) in _SYSTEM_ROLES.items()
    ]


def permission_matches(granted: str, wanted: str) -> bool:
    """Whether the granted permission (possibly a wildcard) covers ``wanted``."""
    if granted in ("*", wanted):
        return True
    if granted.endswith(":*"):
        return wanted.startswith(granted[:-1])
    return False


def has_permission(granted: Iterable[str], wanted: str) -> bool:
    return any(permission_matches(item, wanted) for item in granted)


def check_custom_permissions(permissions: Sequence[str]) -> list[str]:
    """Validate the permissions of a custom role: each must cover at least one
    permission of the catalogue. Returns them de-duplicated, in order."""
    unknown = [p for p in permissions if not any(permission_matches(p, k) for k in PERMISSIONS)]
    if unknown:
        raise InvalidInput(
            "unknown permissions: " + ", ".join(unknown),
            details={"field": "permissions", "unknown": unknown},
        )
    return list(dict.fromkeys(permissions))


def permission_table() -> str:
    """The catalogue and the team system roles as a markdown table (for the docs)."""
    ranks = ("team_owner", "team_admin", "team_member", "team_viewer")
    lines = [
        "| permission | allows | owner | admin | member | viewer |",
        "|---|---|:-:|:-:|:-:|:-:|",
    ]
    for permission, allows in PERMISSIONS.items():
        marks = " | ".join(
            "✓" if has_permission(system_role_permissions(rank), permission) else ""
            for rank in ranks
        )
        lines.append(f"| `{permission}` | {allows} | {marks} |")
    return "\n".join(lines) + "\n"


def scopes_cover(held: Iterable[str] | None, wanted: Iterable[str]) -> list[str]:
    """The catalogue permissions that ``wanted`` (possibly wildcards) grants and
    ``held`` does not (``None`` holds everything): empty when ``held`` covers all."""
    if held is None:
        return []
    held = list(held)
    return sorted(
        {
            known
            for granted in wanted
            for known in PERMISSIONS
            if permission_matches(str(granted), known) and not has_permission(held, known)
        }
    )


@dataclass(eq=False)
class Principal:
    """Who is acting on a request: resolved once from its credential and carried
    with it through every check.

    ``scopes`` is ``None`` for a user acting with all of their permissions, and the
    token's scopes otherwise. ``project_id`` is set for a project token, which acts
    for its creator (``user_id``) on that project only. The authorizer keeps what it
    resolved for the principal (``Access`` per team and project) for as long as the
    storage vouches that none of it changed, so a request checks against one
    consistent view and pays for it once.
    """

    user_id: str
    scopes: frozenset[str] | None = None
    project_id: str | None = None
    token_id: str | None = None
    _resolved: dict[tuple[str, str | None], tuple[Snapshot, Access]] = field(
        default_factory=dict, repr=False
    )

    @property
    def kind(self) -> Literal["user", "project_token"]:
        return "user" if self.project_id is None else "project_token"

    def scope_allows(self, permission: str) -> bool:
        return self.scopes is None or has_permission(self.scopes, permission)

    @property
    def cache_key(self) -> tuple[str, str | None, tuple[str, ...] | None]:
        """What distinguishes this principal's answers from another's (the response
        cache keys on it: a scoped token never sees what its unscoped user was served)."""
        scopes = None if self.scopes is None else tuple(sorted(self.scopes))
        return (self.user_id, self.project_id, scopes)


Actor: TypeAlias = "Principal | str"
"""Who an operation acts for: a ``Principal``, or a user id for that user with all of
their permissions (embedding code and the CLI act so)."""


def as_principal(actor: Actor) -> Principal:
    return actor if isinstance(actor, Principal) else Principal(user_id=actor)


def user_id_of(actor: Actor) -> str:
    """The user an actor is or acts for (a project token's creator)."""
    return actor.user_id if isinstance(actor, Principal) else actor


@dataclass(frozen=True)
class Access:
    """What one principal may do on one team (and one project, when given).

    ``visible`` is whether the principal may know the resource exists at all; one
    without it gets ``NotFound``, never ``PermissionDenied``. ``permissions`` are what
    the user's roles grant; ``scopes`` (``None``: unlimited) narrow them.
    """

    user_id: str
    team_id: str
    project_id: str | None
    visible: bool
    permissions: frozenset[str] = field(default_factory=frozenset)
    platform_admin: bool = False
    team_role: TeamRole | None = None
    scopes: frozenset[str] | None = None

    def allows(self, permission: str) -> bool:
        return (
            self.visible
            and has_permission(self.permissions, permission)
            and (self.scopes is None or has_permission(self.scopes, permission))
        )


class Authorizer:
    """Computes effective permissions from storage and enforces them.

    Stateless apart from the storage it reads: every check sees the current
    memberships and assignments, so a removed member loses access at once. What it
    resolves for a ``Principal`` is kept on the principal (one request) while the
    storage's change tracking vouches for it.
    """

    def __init__(self, storage: AdminStorage) -> None:
        self._storage = storage

    async def _global_permissions(
        self, assignments: Sequence[RoleAssignment]
    ) -> tuple[set[str], bool]:
        granted: set[str] = set()
        platform_admin = False
        for assignment in assignments:
            if assignment.resource_type is not None:
                continue
            role = await self._storage.rbac.get_role(assignment.role_id)
            if role is None:
                continue
            granted.update(str(p) for p in role.permissions)
            platform_admin = platform_admin or (role.is_system and role.name == PLATFORM_ADMIN)
        return granted, platform_admin

    async def is_platform_admin(self, actor: Actor) -> bool:
        """Whether the actor's user holds the platform administrator role (never for a
        project token). Whether it may act as one: ``ensure_platform_admin``."""
        principal = as_principal(actor)
        if principal.project_id is not None:
            return False
        assignments = await self._storage.rbac.list_assignments_for_user(principal.user_id)
        _, platform_admin = await self._global_permissions(assignments)
        return platform_admin

    async def access(self, actor: Actor, team_id: str, project_id: str | None = None) -> Access:
        """The actor's effective access to the team (and project)."""
        principal = as_principal(actor)
        key = (team_id, project_id)
        tracker = self._storage.changes
        live = tracker is not None and tracker.live
        if live and tracker is not None:
            kept = principal._resolved.get(key)
            if kept is not None and tracker.valid(kept[0]):
                tracker.note_reuse(kept[0])
                return kept[1]
            with tracker.recording() as record:
                access = await self._access(principal, team_id, project_id)
            if record.complete:
                principal._resolved[key] = (tracker.snapshot_of(record), access)
            return access
        return await self._access(principal, team_id, project_id)

    async def _access(self, principal: Principal, team_id: str, project_id: str | None) -> Access:
        user_id = principal.user_id
        if principal.project_id is not None and principal.project_id != project_id:
            # A project token knows its own project and nothing around it.
            return Access(
                user_id=user_id,
                team_id=team_id,
                project_id=project_id,
                visible=False,
                scopes=principal.scopes,
            )
        assignments = await self._storage.rbac.list_assignments_for_user(user_id)
        granted, platform_admin = await self._global_permissions(assignments)
        member = await self._storage.teams.get_member(team_id, user_id)
        visible = platform_admin or member is not None or bool(granted)
        if member is not None:
            granted.update(system_role_permissions(member.role.system_role))
        for assignment in assignments:
            scoped_here = (
                assignment.resource_type is ResourceType.TEAM and assignment.resource_id == team_id
            ) or (
                project_id is not None
                and assignment.resource_type is ResourceType.PROJECT
                and assignment.resource_id == project_id
            )
            if scoped_here:
                role = await self._roles_for_team(assignment.role_id, team_id)
                if role is not None:
                    granted.update(str(p) for p in role.permissions)
                    visible = True
            elif (
                project_id is None
                and not visible
                and assignment.resource_type is ResourceType.PROJECT
                and assignment.resource_id is not None
            ):
                project = await self._storage.projects.get(assignment.resource_id)
                visible = project is not None and project.team_id == team_id
        if visible:
            granted.add("team:read")
        return Access(
            user_id=user_id,
            team_id=team_id,
            project_id=project_id,
            visible=visible,
            permissions=frozenset(granted),
            platform_admin=platform_admin and principal.project_id is None,
            team_role=member.role if member is not None else None,
            scopes=principal.scopes,
        )

    async def _roles_for_team(self, role_id: str, team_id: str) -> Role | None:
        """The role of a scoped assignment, if it may apply within ``team_id`` (a
        system role, or a custom role of this very team)."""
        role = await self._storage.rbac.get_role(role_id)
        if role is None or (not role.is_system and role.team_id != team_id):
            return None
        return role

    async def ensure(
        self,
        actor: Actor,
        permission: str,
        team_id: str,
        project_id: str | None = None,
        *,
        hidden: NotFound | None = None,
    ) -> Access:
        """Return the actor's access if it includes ``permission``.

        ``NotFound`` when the actor may not know the team (or project) exists (``hidden``
        when given, so that the error names what the caller asked for, a deployment
        say), ``PermissionDenied`` when they may see it but not do this (by their
        roles, or by their token's scopes).
        """
        access = await self.access(actor, team_id, project_id)
        if not access.visible:
            if hidden is not None:
                raise hidden
            if project_id is not None:
                raise NotFound("project not found", details={"project_id": project_id})
            raise NotFound("team not found", details={"team_id": team_id})
        details = {"permission": permission, "team_id": team_id, "project_id": project_id}
        if not has_permission(access.permissions, permission):
            raise PermissionDenied(
                f"you do not have the permission {permission!r} here", details=details
            )
        if access.scopes is not None and not has_permission(access.scopes, permission):
            raise PermissionDenied(
                f"the API token's scopes do not include {permission!r}",
                details={**details, "scopes": sorted(access.scopes)},
            )
        return access

    async def ensure_platform_admin(self, actor: Actor) -> None:
        """A platform administrator acting with all of their permissions: a token
        scoped to less than ``*`` (or a project token) never acts as one."""
        principal = as_principal(actor)
        if not await self.is_platform_admin(principal):
            raise PermissionDenied(
                "only a platform administrator may do this",
                details={"permission": "*"},
            )
        if not principal.scope_allows("*"):
            raise PermissionDenied(
                "the API token's scopes do not include '*', which this needs",
                details={"permission": "*", "scopes": sorted(principal.scopes or ())},
            )

    async def can(
        self, actor: Actor, permission: str, team_id: str, project_id: str | None = None
    ) -> bool:
        access = await self.access(actor, team_id, project_id)
        return access.allows(permission)
