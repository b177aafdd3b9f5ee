"""``MastraAdmin``: every business operation of the platform, behind RBAC and the licence.

The HTTP server, the CLI and embedding code all call these methods; none of them
holds business logic of its own. Every public operation takes the acting user's id
first, checks what that user may do, and returns models.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from mastra_admin.core.auth import ExternalIdentity
from mastra_admin.core.build_logs import BuildLogs
from mastra_admin.core.changes import Snapshot
from mastra_admin.core.email import EmailMessage
from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    LicenceLimit,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from mastra_admin.core.events import (
    Feedback,
    Log,
    Metric,
    Score,
    Span,
    Trace,
    TraceTree,
)
from mastra_admin.core.execution_rules import (
    COMMANDS_PERMISSION,
    changed_execution_env,
    changed_execution_settings,
    changes_execution,
)
from mastra_admin.core.inputs import (
    AcceptInvite,
    AssignRole,
    CreateApiToken,
    CreateDeployment,
    CreateInstallation,
    CreateProject,
    CreateRole,
    CreateTeam,
    CreateUser,
    DeployRequest,
    InviteMember,
    RollbackRequest,
    SetEnvVar,
    UpdateDeployment,
    UpdateMember,
    UpdateProject,
    UpdateRole,
    UpdateTeam,
    slugify,
)
from mastra_admin.core.licence import LicenceInfo, LicenceValidator
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    BuildTrigger,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    EnvVarOverride,
    HealthStatus,
    Page,
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
    User,
    UserApiToken,
    utcnow,
)
from mastra_admin.core.observability import (
    FeedbackQuery,
    LogQuery,
    MetricQuery,
    ObservabilityQueryProvider,
    ScoreQuery,
    SpanQuery,
    TimeBucket,
    TimeSeriesQuery,
    TraceQuery,
)
from mastra_admin.core.orchestrator import BuildOrchestrator
from mastra_admin.core.rbac import (
    PERMISSIONS,
    PLATFORM_ADMIN,
    SYSTEM_ROLE_NAMES,
    Access,
    Authorizer,
    check_custom_permissions,
    has_permission,
    permission_matches,
)
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import (
    BuildUpdate,
    DeploymentUpdate,
    ProjectUpdate,
    RoleUpdate,
    RouteUpdate,
    RunningServerUpdate,
    TeamUpdate,
    UserUpdate,
    last_owner_conflict,
)
from mastra_admin.core.tokens import (
    INVITE_TOKEN_PREFIX,
    PROJECT_TOKEN_PREFIX,
    USER_TOKEN_PREFIX,
    generate_token,
    hash_token,
)
from mastra_admin.core.views import EnvVarView

if TYPE_CHECKING:
    from mastra_admin.core.auth import AuthProvider
    from mastra_admin.core.billing import BillingProvider
    from mastra_admin.core.email import EmailProvider
    from mastra_admin.core.encryption import EncryptionProvider
    from mastra_admin.core.file_storage import FileStorageProvider
    from mastra_admin.core.observability import ObservabilityBackend
    from mastra_admin.core.plugins import PluginManager
    from mastra_admin.core.router import EdgeRouterProvider
    from mastra_admin.core.runner import ProjectRunner
    from mastra_admin.core.source import ProjectSource, ProjectSourceProvider
    from mastra_admin.core.storage import AdminStorage

__all__ = ["INVITE_TTL", "PROJECT_TOKEN_DEFAULT_SCOPES", "PROVIDER_FEATURES", "MastraAdmin"]

_log = structlog.get_logger("mastra_admin.core.admin")

COLLECTOR_PATH = "/api/collector/{deployment_id}/spans/publish"

TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
TOKEN_OWNERS_CACHED = 4096
"""How stale a token's ``last_used_at`` may get: recording every use would add a
durable write to every request."""

INVITE_TTL = timedelta(days=7)
"""How long an invite can be accepted."""

PROJECT_TOKEN_DEFAULT_SCOPES: tuple[str, ...] = (
    "project:read",
    "deployment:read",
    "deployment:deploy",
    "build:read",
    "build:create",
)
"""What a project token may do when created without scopes: what a CI job needs to
deploy and follow its build."""

PROVIDER_FEATURES: dict[tuple[str, str], str] = {
    ("runner", "k8s"): "k8s-runner",
    ("router", "cloudflare"): "cloudflare-router",
    ("source", "github"): "github-source",
}
"""Providers (kind, type) that the licence gates, and the feature each needs:
without it the platform starts (and warns) but queues no builds with them."""


class MastraAdmin:
    """The platform. Construct it with providers (or let
    ``mastra_admin.core.compose.build_admin`` do it from settings), then
    ``await admin.init()``; ``await admin.close()`` when done."""

    def __init__(
        self,
        *,
        storage: AdminStorage,
        runner: ProjectRunner | None = None,
        router: EdgeRouterProvider | None = None,
        source: ProjectSourceProvider | None = None,
        file_storage: FileStorageProvider | None = None,
        observability: ObservabilityBackend | None = None,
        encryption: EncryptionProvider | None = None,
        email: EmailProvider | None = None,
        billing: BillingProvider | None = None,
        auth: AuthProvider | None = None,
        licence: LicenceValidator | None = None,
        settings: MastraAdminSettings | None = None,
        plugins: PluginManager | None = None,
        collector_secret: bytes | None = None,
    ) -> None:
        self.settings = settings or MastraAdminSettings()
        self.storage = storage
        self.runner = runner
        self.router = router
        self.source = source
        self.file_storage = file_storage
        self.observability = observability
        self.encryption = encryption
        self.email = email
        self.billing = billing
        self.auth = auth
        self.plugins = plugins
        self.licence = licence or LicenceValidator(
            self.settings.licence_key, self.settings.licence_public_key
        )
        self.authorizer = Authorizer(storage)
        self.build_logs: BuildLogs | None = (
            BuildLogs(file_storage) if file_storage is not None else None
        )
        self._collector_secret = collector_secret
        self._token_owners: dict[str, tuple[Snapshot, UserApiToken, User]] = {}
        self._initialised = False
        self._closed = False
        self.orchestrator: BuildOrchestrator | None = (
            BuildOrchestrator(self) if runner is not None else None
        )

    # --- helpers shared by the operations and the build orchestrator ----------------

    def require_runner(self) -> ProjectRunner:
        if self.runner is None:
            raise Unavailable("no runner is configured")
        return self.runner

    def require_source(self) -> ProjectSourceProvider:
        if self.source is None:
            raise Unavailable("no project source is configured")
        return self.source

    def require_encryption(self) -> EncryptionProvider:
        if self.encryption is None:
            raise Unavailable("no encryption provider is configured")
        return self.encryption

    def collector_token(self, deployment_id: str) -> str:
        """The bearer token a deployed server uses to post observability events.

        Derived (HMAC-SHA256 of the deployment id with the installation's collector
        secret), so it needs no storage and is checked in constant time.
        """
        if self._collector_secret is None:
            raise Unavailable("no collector secret is configured")
        mac = hmac.new(self._collector_secret, deployment_id.encode(), hashlib.sha256)
        return "mac_" + mac.hexdigest()

    def verify_collector_token(self, deployment_id: str, token: str) -> bool:
        if self._collector_secret is None:
            return False
        return hmac.compare_digest(self.collector_token(deployment_id), token)

    def collector_url(self, deployment_id: str) -> str:
        """The traces URL given to a deployed server; the exporter derives the logs,
        metrics, scores and feedback URLs by replacing its ``spans/publish`` suffix."""
        return self.settings.collector_base_url + COLLECTOR_PATH.format(deployment_id=deployment_id)

    @staticmethod
    def subdomain_for(team: Team, project: Project, deployment: Deployment) -> str:
        """``{project}-{branch}.{team}``; production on the default branch omits nothing,
        so every deployment has its own stable host name."""
        branch = slugify(deployment.branch) or "branch"
        label = f"{project.slug}-{branch}"[:63].strip("-")
        return f"{label}.{team.slug}"

    async def build_env(
        self, deployment: Deployment, project: Project
    ) -> tuple[dict[str, str], list[str]]:
        """The environment a deployed server is given (DESIGN §6) without the
        runner's own part (``PORT``, observability dirs), and the secret values that
        must be masked in logs.

        Precedence: project vars for every type < project vars for this deployment
        type < the deployment's overrides.
        """
        encryption = self.require_encryption()
        env: dict[str, str] = {}
        secret: dict[str, bool] = {}
        env_vars = await self.storage.projects.list_env_vars(project.id)
        for wanted_type in (None, deployment.type):
            for var in env_vars:
                if var.deployment_type == wanted_type:
                    env[var.key] = encryption.decrypt(var.encrypted_value)
                    secret[var.key] = var.is_secret
        for override in deployment.env_var_overrides:
            env[override.key] = encryption.decrypt(override.encrypted_value)
            secret[override.key] = override.is_secret
        secrets = sorted({env[k] for k, is_secret in secret.items() if is_secret and env[k]})
        env.update(
            {
                "MASTRA_PROJECT_ID": project.id,
                "MASTRA_DEPLOYMENT_ID": deployment.id,
                "MASTRA_TELEMETRY_DISABLED": "1",
            }
        )
        if self._collector_secret is not None and self.settings.collector:
            token = self.collector_token(deployment.id)
            env["MASTRA_CLOUD_ACCESS_TOKEN"] = token
            env["MASTRA_CLOUD_TRACES_ENDPOINT"] = self.collector_url(deployment.id)
            secrets.append(token)
        return env, secrets

    async def fire(self, hook: str, **kwargs: Any) -> None:
        """Call an event hook on every plugin; a failing plugin is logged, not raised."""
        if self.plugins is not None:
            await self.plugins.call_async(hook, admin=self, **kwargs)

    async def load_deployment(self, deployment_id: str) -> tuple[Deployment, Project, Team]:
        """The deployment with its project and team, without any permission check."""
        deployment = await self.storage.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found", details={"deployment_id": deployment_id})
        project = await self.storage.projects.get(deployment.project_id)
        if project is None:
            raise NotFound("project not found", details={"project_id": deployment.project_id})
        team = await self.storage.teams.get(project.team_id)
        if team is None:
            raise NotFound("team not found", details={"team_id": project.team_id})
        return deployment, project, team

    @staticmethod
    def default_branch_for(project: Project, type: DeploymentType, branch: str | None) -> str:
        if branch:
            return branch
        if type is DeploymentType.PREVIEW:
            raise InvalidInput("a preview deployment needs a branch", details={"field": "branch"})
        return project.default_branch if type is DeploymentType.PRODUCTION else "staging"

    # --- lifecycle -------------------------------------------------------------------

    async def init(self) -> None:
        """Prepare storage (schema, system roles), observability and the router,
        recover builds and servers left by an earlier process, then tell plugins."""
        if self._initialised:
            return
        await self.storage.init()
        if self.observability is not None:
            await self.observability.init()
        if self.router is not None:
            await self.router.start()
        orchestrator = self.orchestrator
        if orchestrator is not None:
            await orchestrator.recover()
        self._initialised = True
        info = self.licence.info()
        _log.info("admin.started", licence_tier=info.tier.value, licence_valid=info.valid)
        if not info.valid:
            _log.warning("licence.community_tier", reason=info.message)
        try:
            self._require_provider_features("runner", "router", "source")
        except LicenceLimit as exc:
            _log.warning("licence.provider_not_licensed", reason=exc.message)
        await self.fire("mastra_admin_startup")

    async def close(self) -> None:
        """Tell plugins, stop the build workers, then close every provider (a failure
        closing one is logged and the others still close). Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        await self.fire("mastra_admin_shutdown")
        orchestrator = self.orchestrator
        if orchestrator is not None:
            await self._guarded("orchestrator", orchestrator.stop())
        if self.router is not None:
            await self._guarded("router", self.router.close())
        if self.runner is not None:
            await self._guarded("runner", self.runner.close())
        if self.source is not None:
            await self._guarded("source", self.source.close())
        if self.observability is not None:
            await self._guarded("observability", self.observability.close())
        if self.auth is not None:
            await self._guarded("auth", self.auth.close())
        await self._guarded("storage", self.storage.close())
        self._initialised = False

    @staticmethod
    async def _guarded(name: str, closing: Awaitable[object]) -> None:
        try:
            await closing
        except Exception:
            _log.exception("admin.close_failed", provider=name)

    def licence_info(self) -> LicenceInfo:
        """The licence in force now (community when there is none)."""
        return self.licence.info()

    # --- lookups with permission checks -------------------------------------------

    async def _team_for(self, actor_id: str, team_id: str, permission: str) -> Team:
        hidden = NotFound("team not found", details={"team_id": team_id})
        team = await self.storage.teams.get(team_id)
        if team is None:
            raise hidden
        await self.authorizer.ensure(actor_id, permission, team.id, hidden=hidden)
        return team

    async def _project_for(self, actor_id: str, project_id: str, permission: str) -> Project:
        hidden = NotFound("project not found", details={"project_id": project_id})
        project = await self.storage.projects.get(project_id)
        if project is None:
            raise hidden
        await self.authorizer.ensure(
            actor_id, permission, project.team_id, project.id, hidden=hidden
        )
        return project

    async def _deployment_for(
        self, actor_id: str, deployment_id: str, permission: str
    ) -> tuple[Deployment, Project, Team]:
        hidden = NotFound("deployment not found", details={"deployment_id": deployment_id})
        try:
            deployment, project, team = await self.load_deployment(deployment_id)
        except NotFound:
            raise hidden from None
        await self.authorizer.ensure(actor_id, permission, team.id, project.id, hidden=hidden)
        return deployment, project, team

    async def _build_for(
        self, actor_id: str, build_id: str, permission: str
    ) -> tuple[Build, Deployment, Project, Team]:
        hidden = NotFound("build not found", details={"build_id": build_id})
        build = await self.storage.builds.get(build_id)
        if build is None:
            raise hidden
        try:
            deployment, project, team = await self.load_deployment(build.deployment_id)
        except NotFound:
            raise hidden from None
        await self.authorizer.ensure(actor_id, permission, team.id, project.id, hidden=hidden)
        return build, deployment, project, team

    async def _ensure_may_change_commands(
        self, actor_id: str, team_id: str, project_id: str | None, settings: Sequence[str]
    ) -> None:
        """``PermissionDenied`` naming ``settings`` (changed execution settings) unless
        the actor holds ``project:commands:write``."""
        if not settings or await self.authorizer.can(
            actor_id, COMMANDS_PERMISSION, team_id, project_id
        ):
            return
        raise PermissionDenied(
            f"changing {', '.join(settings)} needs the permission {COMMANDS_PERMISSION!r}",
            details={
                "permission": COMMANDS_PERMISSION,
                "settings": list(settings),
                "team_id": team_id,
                "project_id": project_id,
            },
        )

    async def _ensure_may_change_execution_env(
        self, actor_id: str, project: Project, keys: Sequence[str], field: str
    ) -> None:
        """``InvalidInput`` on ``field`` naming ``keys`` (env vars that change how code
        loads) unless the actor holds ``project:commands:write``."""
        if not keys or await self.authorizer.can(
            actor_id, COMMANDS_PERMISSION, project.team_id, project.id
        ):
            return
        one = len(keys) == 1
        raise InvalidInput(
            f"{', '.join(keys)} {'changes' if one else 'change'} how Node, npm or the"
            f" loader load code; changing {'it' if one else 'them'} needs the permission"
            f" {COMMANDS_PERMISSION!r}",
            details={
                "field": field,
                "key": keys[0],
                "keys": list(keys),
                "permission": COMMANDS_PERMISSION,
            },
        )

    async def _user(self, user_id: str) -> User:
        user = await self.storage.users.get(user_id)
        if user is None:
            raise NotFound("user not found", details={"user_id": user_id})
        return user

    async def _system_role(self, name: str) -> Role:
        role = await self.storage.rbac.get_role_by_name(None, name)
        if role is None:
            raise Unavailable(
                f"the system role {name!r} is missing: MastraAdmin.init() seeds it",
                details={"role": name},
            )
        return role

    # --- users ------------------------------------------------------------------------

    async def bootstrap_admin(self, email: str, *, name: str | None = None) -> tuple[User, str]:
        """Create the first user, a platform administrator, with an API token.

        Only when the platform has no users yet (``Conflict`` otherwise). Returns
        the user and the raw token, which is shown this once.
        """
        data = _validated(CreateUser, email=email, name=name)
        if await self.storage.users.count() > 0:
            raise Conflict(
                "the platform already has users: an administrator creates new accounts",
                details={"field": "users"},
            )
        user = await self.storage.users.create(User(email=str(data.email), name=data.name))
        role = await self._system_role(PLATFORM_ADMIN)
        await self.storage.rbac.assign(RoleAssignment(role_id=role.id, user_id=user.id))
        _token, raw = await self._issue_user_token(user.id, CreateApiToken(name="bootstrap"))
        _log.info("user.bootstrapped", user_id=user.id)
        return user, raw

    async def system_create_user(
        self, email: str, *, name: str | None = None, platform_admin: bool = False
    ) -> tuple[User, str]:
        """Create a user with an API token, as the installation's operator (the CLI,
        with access to the data dir and database, acts with no user of its own).
        Returns the user and the raw token, shown this once."""
        data = _validated(CreateUser, email=email, name=name)
        user = await self.storage.users.create(User(email=str(data.email), name=data.name))
        if platform_admin:
            role = await self._system_role(PLATFORM_ADMIN)
            await self.storage.rbac.assign(RoleAssignment(role_id=role.id, user_id=user.id))
        _token, raw = await self._issue_user_token(user.id, CreateApiToken(name="cli"))
        _log.info("user.created_by_operator", user_id=user.id, platform_admin=platform_admin)
        return user, raw

    async def create_user(self, actor_id: str, data: CreateUser) -> User:
        """Create an account (platform administrators only)."""
        await self.authorizer.ensure_platform_admin(actor_id)
        user = await self.storage.users.create(
            User(
                email=str(data.email),
                name=data.name,
                external_id=data.external_id,
                avatar_url=str(data.avatar_url) if data.avatar_url else None,
            )
        )
        _log.info("user.created", user_id=user.id, actor_id=actor_id)
        return user

    async def get_me(self, actor_id: str) -> User:
        return await self._user(actor_id)

    async def get_user(self, actor_id: str, user_id: str) -> User:
        """A user's account: yourself, anyone you share a team with, or anyone for a
        platform administrator; ``NotFound`` for everyone else."""
        if actor_id != user_id and not await self.authorizer.is_platform_admin(actor_id):
            mine = {team.id for team in await self.storage.teams.list_for_user(actor_id)}
            theirs = {team.id for team in await self.storage.teams.list_for_user(user_id)}
            if not mine & theirs:
                raise NotFound("user not found", details={"user_id": user_id})
        return await self._user(user_id)

    async def list_users(self, actor_id: str, *, limit: int = 100, offset: int = 0) -> Page[User]:
        await self.authorizer.ensure_platform_admin(actor_id)
        items = await self.storage.users.list_all(limit=limit, offset=offset)
        return Page(items=items, total=await self.storage.users.count(), limit=limit, offset=offset)

    async def grant_platform_admin(self, actor_id: str, user_id: str) -> RoleAssignment:
        await self.authorizer.ensure_platform_admin(actor_id)
        await self._user(user_id)
        role = await self._system_role(PLATFORM_ADMIN)
        assignment = await self.storage.rbac.assign(
            RoleAssignment(role_id=role.id, user_id=user_id)
        )
        _log.info("user.platform_admin_granted", user_id=user_id, actor_id=actor_id)
        return assignment

    async def revoke_platform_admin(self, actor_id: str, user_id: str) -> None:
        """Take the platform administrator role away; nobody revokes their own, so
        at least one administrator always remains."""
        await self.authorizer.ensure_platform_admin(actor_id)
        if actor_id == user_id:
            raise Conflict(
                "you cannot revoke your own platform administrator role",
                details={"field": "user_id"},
            )
        role = await self._system_role(PLATFORM_ADMIN)
        if not await self.storage.rbac.unassign(role.id, user_id, None, None):
            raise NotFound("the user is not a platform administrator", details={"user_id": user_id})
        _log.info("user.platform_admin_revoked", user_id=user_id, actor_id=actor_id)

    async def user_for_identity(self, identity: ExternalIdentity) -> User:
        """The user behind a verified external identity (an OIDC token's claims).

        Found by external id; else by email, linking the external id to that user
        (unless the provider says the email is unverified, or the user is linked to
        another identity already); else created.
        """
        user = await self.storage.users.get_by_external_id(identity.external_id)
        if user is not None:
            return user
        if not identity.email:
            raise Unauthenticated("the identity has no email address to match or create a user by")
        verified = identity.claims.get("email_verified", True) is not False
        user = await self.storage.users.get_by_email(identity.email)
        if user is not None:
            if user.external_id is not None or not verified:
                raise Unauthenticated(
                    "the identity's email belongs to a user linked to another identity"
                    if user.external_id is not None
                    else "the identity's email is not verified, so it cannot be linked to a user"
                )
            user = await self.storage.users.update(
                user.id, UserUpdate(external_id=identity.external_id)
            )
            _log.info("user.identity_linked", user_id=user.id)
            return user
        data = _validated(CreateUser, email=identity.email, name=identity.name)
        try:
            user = await self.storage.users.create(
                User(email=str(data.email), name=data.name, external_id=identity.external_id)
            )
        except Conflict:
            # Another request created the same user a moment ago.
            found = await self.storage.users.get_by_external_id(identity.external_id)
            if found is None:
                raise
            return found
        _log.info("user.created_from_identity", user_id=user.id)
        return user

    # --- user API tokens ----------------------------------------------------------

    async def _issue_user_token(
        self, user_id: str, data: CreateApiToken
    ) -> tuple[UserApiToken, str]:
        _check_expiry(data.expires_at)
        scopes = check_custom_permissions(data.scopes) if data.scopes else []
        generated = generate_token(USER_TOKEN_PREFIX)
        token = await self.storage.users.create_token(
            UserApiToken(
                user_id=user_id,
                name=data.name,
                token_hash=generated.token_hash,
                token_prefix=generated.display_prefix,
                scopes=scopes,
                expires_at=data.expires_at,
            )
        )
        _log.info("user_token.created", token_id=token.id, user_id=user_id)
        return token, generated.raw

    async def create_user_token(
        self, actor_id: str, data: CreateApiToken
    ) -> tuple[UserApiToken, str]:
        """A new API token for yourself; the raw token is returned this once."""
        await self._user(actor_id)
        return await self._issue_user_token(actor_id, data)

    async def list_user_tokens(self, actor_id: str) -> list[UserApiToken]:
        return await self.storage.users.list_tokens(actor_id)

    async def revoke_user_token(self, actor_id: str, token_id: str) -> None:
        if not any(t.id == token_id for t in await self.storage.users.list_tokens(actor_id)):
            raise NotFound("API token not found", details={"token_id": token_id})
        await self.storage.users.revoke_token(token_id, utcnow())
        _log.info("user_token.revoked", token_id=token_id, user_id=actor_id)

    async def authenticate_token(self, raw: str) -> User:
        """The user an API token belongs to; ``Unauthenticated`` when the token is
        unknown, revoked or expired. Records the use."""
        token, user = await self._token_owner(hash_token(raw))
        if token is None:
            raise Unauthenticated("invalid API token")
        now = utcnow()
        if token.revoked_at is not None:
            raise Unauthenticated("the API token was revoked", details={"token_id": token.id})
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated("the API token has expired", details={"token_id": token.id})
        if user is None:
            raise Unauthenticated("invalid API token")
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
            await self.storage.users.touch_token(token.id, now)
        return user

    async def _token_owner(self, token_hash: str) -> tuple[UserApiToken | None, User | None]:
        """The token with this hash and its user. While the storage's change tracking
        vouches that neither changed since (``storage.changes``), from memory: every
        request authenticates, and this is most of what it reads."""
        tracker = self.storage.changes
        if tracker is None or not tracker.live:
            return await self._load_token_owner(token_hash)
        cached = self._token_owners.get(token_hash)
        if cached is not None and tracker.valid(cached[0]):
            return cached[1], cached[2]
        with tracker.recording() as record:
            token, user = await self._load_token_owner(token_hash)
        if token is not None and user is not None and record.complete:
            owners = self._token_owners
            owners.pop(token_hash, None)
            if len(owners) >= TOKEN_OWNERS_CACHED:
                owners.pop(next(iter(owners)))
            owners[token_hash] = (tracker.snapshot_of(record), token, user)
        return token, user

    async def _load_token_owner(self, token_hash: str) -> tuple[UserApiToken | None, User | None]:
        token = await self.storage.users.get_token_by_hash(token_hash)
        if token is None:
            return None, None
        return token, await self.storage.users.get(token.user_id)

    # --- teams ------------------------------------------------------------------------

    async def create_team(self, actor_id: str, data: CreateTeam) -> Team:
        """Create a team; the creator becomes its owner. Any user may create teams,
        up to the licence's ``max_teams``."""
        await self._user(actor_id)
        self.licence.check_limit("max_teams", await self.storage.teams.count())
        team = await self.storage.teams.create(
            Team(name=data.name, slug=data.resolved_slug, settings=data.settings)
        )
        try:
            await self.storage.teams.add_member(
                TeamMember(team_id=team.id, user_id=actor_id, role=TeamRole.OWNER)
            )
        except BaseException:
            await self.storage.teams.delete(team.id)
            raise
        _log.info("team.created", team_id=team.id, actor_id=actor_id)
        return team

    async def get_team(self, actor_id: str, team_id: str) -> Team:
        return await self._team_for(actor_id, team_id, "team:read")

    async def get_team_by_slug(self, actor_id: str, slug: str) -> Team:
        team = await self.storage.teams.get_by_slug(slug)
        if team is None:
            raise NotFound("team not found", details={"slug": slug})
        return await self._team_for(actor_id, team.id, "team:read")

    async def list_teams(self, actor_id: str) -> list[Team]:
        """Teams the user can see (every team for a platform administrator), by name."""
        if await self.authorizer.is_platform_admin(actor_id):
            return await self._all_teams()
        teams = {team.id: team for team in await self.storage.teams.list_for_user(actor_id)}
        for assignment in await self.storage.rbac.list_assignments_for_user(actor_id):
            team_id: str | None = None
            if assignment.resource_type is ResourceType.TEAM:
                team_id = assignment.resource_id
            elif assignment.resource_type is ResourceType.PROJECT and assignment.resource_id:
                project = await self.storage.projects.get(assignment.resource_id)
                team_id = project.team_id if project else None
            if team_id and team_id not in teams:
                team = await self.storage.teams.get(team_id)
                if team is not None and await self.authorizer.can(actor_id, "team:read", team_id):
                    teams[team.id] = team
        return sorted(teams.values(), key=lambda t: (t.name, t.id))

    async def _all_teams(self) -> list[Team]:
        found: list[Team] = []
        while True:
            page = await self.storage.teams.list_all(limit=500, offset=len(found))
            found.extend(page)
            if len(page) < 500:
                return found

    async def update_team(self, actor_id: str, team_id: str, data: UpdateTeam) -> Team:
        await self._team_for(actor_id, team_id, "team:update")
        changes = _set_fields(data)
        team = await self.storage.teams.update(team_id, TeamUpdate(**changes))
        _log.info("team.updated", team_id=team_id, actor_id=actor_id, fields=sorted(changes))
        return team

    async def delete_team(self, actor_id: str, team_id: str) -> None:
        """Delete the team with everything in it, stopping its servers first."""
        await self._team_for(actor_id, team_id, "team:delete")
        for project in await self._team_projects(team_id):
            for deployment in await self.storage.deployments.list_for_project(project.id):
                await self._teardown(deployment)
        await self.storage.teams.delete(team_id)
        _log.info("team.deleted", team_id=team_id, actor_id=actor_id)

    async def _team_projects(self, team_id: str) -> list[Project]:
        found: list[Project] = []
        while True:
            page = await self.storage.projects.list_for_team(team_id, limit=500, offset=len(found))
            found.extend(page)
            if len(page) < 500:
                return found

    # --- members ----------------------------------------------------------------------

    async def list_members(self, actor_id: str, team_id: str) -> list[TeamMember]:
        await self._team_for(actor_id, team_id, "team:members:read")
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
        self, actor_id: str, team_id: str, user_id: str, data: UpdateMember
    ) -> TeamMember:
        """Change a member's role; the last owner keeps theirs."""
        await self._team_for(actor_id, team_id, "team:members:write")
        access = await self.authorizer.access(actor_id, team_id)
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
            actor_id=actor_id,
        )
        return updated

    async def remove_member(self, actor_id: str, team_id: str, user_id: str) -> None:
        """Remove a member (or leave the team yourself). The last owner stays.
        Their custom role assignments within the team go with them."""
        if actor_id == user_id:
            team = await self._team_for(actor_id, team_id, "team:read")
            member = await self._member(team.id, user_id)
        else:
            await self._team_for(actor_id, team_id, "team:members:write")
            member = await self._member(team_id, user_id)
            if member.role is TeamRole.OWNER:
                access = await self.authorizer.access(actor_id, team_id)
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
        _log.info("member.removed", team_id=team_id, user_id=user_id, actor_id=actor_id)

    # --- invites ----------------------------------------------------------------------

    async def invite_member(
        self, actor_id: str, team_id: str, data: InviteMember
    ) -> tuple[TeamInvite, str]:
        """Invite someone by email. The email carries the raw token (also returned,
        this once, so that it can be handed over another way). Inviting an address
        again replaces its pending invite. Pending invites count towards the
        licence's ``max_members_per_team``."""
        team = await self._team_for(actor_id, team_id, "team:members:write")
        if data.role is TeamRole.OWNER:
            self._ensure_owner_power(
                await self.authorizer.access(actor_id, team_id), "invite an owner"
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
                invited_by=actor_id,
                token_hash=generated.token_hash,
                expires_at=now + INVITE_TTL,
                created_at=now,
            )
        )
        await self._send_invite(team, invite, generated.raw, inviter=await self._user(actor_id))
        _log.info("invite.created", team_id=team_id, invite_id=invite.id, actor_id=actor_id)
        return invite, generated.raw

    async def _send_invite(
        self, team: Team, invite: TeamInvite, raw: str, *, inviter: User
    ) -> None:
        if self.email is None:
            _log.warning("invite.not_emailed", invite_id=invite.id, reason="no email provider")
            return
        accept_url = f"{self.settings.admin_url}/invites/accept?token={raw}"
        who = inviter.name or inviter.email
        await self.email.send(
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

    async def list_invites(self, actor_id: str, team_id: str) -> list[TeamInvite]:
        """Pending invites (not accepted, not expired), newest first."""
        await self._team_for(actor_id, team_id, "team:members:read")
        return await self.storage.teams.list_pending_invites(team_id, utcnow())

    async def revoke_invite(self, actor_id: str, team_id: str, invite_id: str) -> None:
        await self._team_for(actor_id, team_id, "team:members:write")
        invite = await self.storage.teams.get_invite(invite_id)
        if invite is None or invite.team_id != team_id:
            raise NotFound("invite not found", details={"invite_id": invite_id})
        await self.storage.teams.delete_invite(invite_id)
        _log.info("invite.revoked", team_id=team_id, invite_id=invite_id, actor_id=actor_id)

    async def accept_invite(self, actor_id: str, token: str | AcceptInvite) -> TeamMember:
        """Join a team with an invite token. The invite must be pending and made out
        to the acting user's email (compared case-insensitively)."""
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
        user = await self._user(actor_id)
        if user.email.lower() != invite.email.lower():
            raise PermissionDenied(
                "this invite was sent to another email address",
                details={"field": "email"},
            )
        if await self.storage.teams.get_member(invite.team_id, actor_id) is not None:
            raise Conflict("you are already a member of this team", details={"field": "team_id"})
        self.licence.check_limit(
            "max_members_per_team", await self.storage.teams.count_members(invite.team_id)
        )
        if not await self.storage.teams.mark_invite_accepted(invite.id, utcnow()):
            raise Conflict("this invite has already been accepted", details={"field": "token"})
        member = await self.storage.teams.add_member(
            TeamMember(team_id=invite.team_id, user_id=actor_id, role=invite.role)
        )
        _log.info("invite.accepted", team_id=invite.team_id, invite_id=invite.id, user_id=actor_id)
        return member

    # --- installations ----------------------------------------------------------------

    async def add_installation(
        self, actor_id: str, team_id: str, data: CreateInstallation
    ) -> TeamInstallation:
        await self._team_for(actor_id, team_id, "team:update")
        installation = await self.storage.teams.create_installation(
            TeamInstallation(team_id=team_id, **data.model_dump())
        )
        _log.info(
            "installation.added",
            team_id=team_id,
            provider=data.provider,
            installation_id=installation.id,
            actor_id=actor_id,
        )
        return installation

    async def list_installations(self, actor_id: str, team_id: str) -> list[TeamInstallation]:
        await self._team_for(actor_id, team_id, "team:read")
        return await self.storage.teams.list_installations(team_id)

    async def remove_installation(self, actor_id: str, team_id: str, installation_id: str) -> None:
        await self._team_for(actor_id, team_id, "team:update")
        installations = await self.storage.teams.list_installations(team_id)
        if not any(i.id == installation_id for i in installations):
            raise NotFound("installation not found", details={"installation_id": installation_id})
        await self.storage.teams.delete_installation(installation_id)
        _log.info(
            "installation.removed",
            team_id=team_id,
            installation_id=installation_id,
            actor_id=actor_id,
        )

    # --- custom roles -----------------------------------------------------------------

    async def list_roles(self, actor_id: str, team_id: str) -> list[Role]:
        """The system roles and the team's custom roles."""
        await self._team_for(actor_id, team_id, "role:read")
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

    @staticmethod
    def _ensure_can_grant(access: Access, permissions: Sequence[str]) -> None:
        """Nobody hands out more than they hold: every permission a role or token
        covers must be covered by the actor's own permissions there."""
        missing = sorted(
            {
                known
                for granted in permissions
                for known in PERMISSIONS
                if permission_matches(str(granted), known) and not access.allows(known)
            }
        )
        if missing:
            raise PermissionDenied(
                "you cannot grant permissions you do not hold: " + ", ".join(missing),
                details={"permissions": missing},
            )

    async def create_role(self, actor_id: str, team_id: str, data: CreateRole) -> Role:
        """A custom role of the team (licence feature ``advanced-rbac``)."""
        await self._team_for(actor_id, team_id, "role:write")
        self.licence.require_feature("advanced-rbac")
        if data.name in SYSTEM_ROLE_NAMES:
            raise Conflict("that name belongs to a system role", details={"field": "name"})
        permissions = check_custom_permissions(data.permissions)
        self._ensure_can_grant(await self.authorizer.access(actor_id, team_id), permissions)
        role = await self.storage.rbac.create_role(
            Role(
                team_id=team_id,
                name=data.name,
                description=data.description,
                permissions=permissions,
            )
        )
        _log.info("role.created", team_id=team_id, role_id=role.id, actor_id=actor_id)
        return role

    async def update_role(
        self, actor_id: str, team_id: str, role_id: str, data: UpdateRole
    ) -> Role:
        await self._team_for(actor_id, team_id, "role:write")
        self.licence.require_feature("advanced-rbac")
        await self._custom_role(team_id, role_id)
        patch = RoleUpdate()
        if "description" in data.model_fields_set:
            patch.description = data.description
        if data.permissions is not None:
            permissions = check_custom_permissions(data.permissions)
            self._ensure_can_grant(await self.authorizer.access(actor_id, team_id), permissions)
            patch.permissions = permissions
        role = await self.storage.rbac.update_role(role_id, patch)
        _log.info("role.updated", team_id=team_id, role_id=role_id, actor_id=actor_id)
        return role

    async def delete_role(self, actor_id: str, team_id: str, role_id: str) -> None:
        """Delete a custom role with its assignments (allowed without the licence
        feature, so that a downgraded installation can clean up)."""
        await self._team_for(actor_id, team_id, "role:write")
        await self._custom_role(team_id, role_id)
        await self.storage.rbac.delete_role(role_id)
        _log.info("role.deleted", team_id=team_id, role_id=role_id, actor_id=actor_id)

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

    async def assign_role(self, actor_id: str, team_id: str, data: AssignRole) -> RoleAssignment:
        """Give a user a role on the team or on one of its projects (licence feature
        ``advanced-rbac``). The role is a custom role of the team or a team system
        role; the user need not be a member (a project-scoped role gives a guest
        access to that project only)."""
        await self._team_for(actor_id, team_id, "role:write")
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
        access = await self.authorizer.access(actor_id, team_id, project_id)
        self._ensure_can_grant(access, [str(p) for p in role.permissions])
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
            actor_id=actor_id,
        )
        return assignment

    async def unassign_role(self, actor_id: str, team_id: str, data: AssignRole) -> None:
        await self._team_for(actor_id, team_id, "role:write")
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
            actor_id=actor_id,
        )

    async def list_role_assignments(self, actor_id: str, team_id: str) -> list[RoleAssignment]:
        """Assignments on the team and on each of its projects."""
        await self._team_for(actor_id, team_id, "role:read")
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

    # --- projects ---------------------------------------------------------------------

    async def create_project(self, actor_id: str, team_id: str, data: CreateProject) -> Project:
        """Create a project from a project the source knows (``data.source_id``),
        up to the licence's ``max_projects`` (counted across the installation).
        Setting a command or Node options also needs ``project:commands:write``."""
        await self._team_for(actor_id, team_id, "project:create")
        await self._ensure_may_change_commands(
            actor_id, team_id, None, changed_execution_settings(ProjectSettings(), data.settings)
        )
        self._require_provider_features("source")
        self.licence.check_limit("max_projects", await self.storage.projects.count())
        source = await self.require_source().get_project(data.source_id)
        if "source_type" in data.model_fields_set and source.type != data.source_type:
            raise InvalidInput(
                f"the project source is of type {source.type!r}, not {data.source_type!r}",
                details={"field": "source_type"},
            )
        if source.metadata.get("valid") is False:
            problems = [str(p) for p in source.metadata.get("problems") or []]
            raise InvalidInput(
                "the source project cannot be built: " + ("; ".join(problems) or "invalid"),
                details={"field": "source_id", "problems": problems},
            )
        source_config: dict[str, Any] = {
            "source_id": source.id,
            "path": source.path,
            "name": source.name,
            "package_manager": source.package_manager,
        }
        for key in ("mastra_version", "workspace_root"):
            if source.metadata.get(key) is not None:
                source_config[key] = source.metadata[key]
        project = await self.storage.projects.create(
            Project(
                team_id=team_id,
                name=data.name,
                slug=data.resolved_slug,
                source_type=source.type,
                source_config=source_config,
                default_branch=data.default_branch,
                settings=data.settings,
            )
        )
        _log.info("project.created", team_id=team_id, project_id=project.id, actor_id=actor_id)
        return project

    async def get_project(self, actor_id: str, project_id: str) -> Project:
        return await self._project_for(actor_id, project_id, "project:read")

    async def list_projects(
        self, actor_id: str, team_id: str, *, limit: int = 50, offset: int = 0
    ) -> Page[Project]:
        """The team's projects the user may see, by name."""
        hidden = NotFound("team not found", details={"team_id": team_id})
        if await self.storage.teams.get(team_id) is None:
            raise hidden
        access = await self.authorizer.access(actor_id, team_id)
        if not access.visible:
            raise hidden
        if access.allows("project:read"):
            items = await self.storage.projects.list_for_team(team_id, limit=limit, offset=offset)
            total = await self.storage.projects.count_for_team(team_id)
            return Page(items=items, total=total, limit=limit, offset=offset)
        visible = [
            project
            for project in await self._team_projects(team_id)
            if await self.authorizer.can(actor_id, "project:read", team_id, project.id)
        ]
        return Page(
            items=visible[offset : offset + limit], total=len(visible), limit=limit, offset=offset
        )

    async def update_project(self, actor_id: str, project_id: str, data: UpdateProject) -> Project:
        """Change the given fields; ``settings`` replaces the settings as a whole.
        Changing a command or Node options also needs ``project:commands:write``
        (settings saved again unchanged do not)."""
        stored = await self._project_for(actor_id, project_id, "project:update")
        if data.settings is not None:
            await self._ensure_may_change_commands(
                actor_id,
                stored.team_id,
                stored.id,
                changed_execution_settings(stored.settings, data.settings),
            )
        changes = _set_fields(data)
        project = await self.storage.projects.update(project_id, ProjectUpdate(**changes))
        _log.info(
            "project.updated", project_id=project_id, actor_id=actor_id, fields=sorted(changes)
        )
        return project

    async def delete_project(self, actor_id: str, project_id: str) -> None:
        """Delete the project with its deployments, stopping their servers first."""
        await self._project_for(actor_id, project_id, "project:delete")
        for deployment in await self.storage.deployments.list_for_project(project_id):
            await self._teardown(deployment)
        await self.storage.projects.delete(project_id)
        _log.info("project.deleted", project_id=project_id, actor_id=actor_id)

    # --- env vars ---------------------------------------------------------------------

    async def set_env_var(self, actor_id: str, project_id: str, data: SetEnvVar) -> EnvVarView:
        """Set (or replace) an env var; the value is stored encrypted. A name that
        ``changes_execution`` also needs ``project:commands:write``."""
        project = await self._project_for(actor_id, project_id, "env_var:write")
        if changes_execution(data.key):
            await self._ensure_may_change_execution_env(actor_id, project, [data.key], "key")
        encrypted = self.require_encryption().encrypt(data.value)
        stored = await self.storage.projects.set_env_var(
            ProjectEnvVar(
                project_id=project_id,
                deployment_type=data.deployment_type,
                key=data.key,
                encrypted_value=encrypted,
                is_secret=data.is_secret,
            )
        )
        _log.info(
            "env_var.set",
            project_id=project_id,
            key=data.key,
            deployment_type=data.deployment_type.value if data.deployment_type else None,
            actor_id=actor_id,
        )
        return EnvVarView.of(stored)

    async def list_env_vars(self, actor_id: str, project_id: str) -> list[EnvVarView]:
        """Every env var of the project with its value hidden (``value`` is ``None``)."""
        await self._project_for(actor_id, project_id, "env_var:read")
        return [EnvVarView.of(var) for var in await self.storage.projects.list_env_vars(project_id)]

    async def reveal_env_vars(
        self,
        actor_id: str,
        project_id: str,
        keys: Sequence[str] | None = None,
        *,
        deployment_type: DeploymentType | None = None,
    ) -> list[EnvVarView]:
        """Env vars with their values in clear text (``env_var:reveal``): all of
        them, or those named in ``keys`` (of every deployment type, or of
        ``deployment_type`` only). Each reveal is logged (``env_var.revealed``)
        with the actor, the project and the keys, never the values."""
        await self._project_for(actor_id, project_id, "env_var:reveal")
        encryption = self.require_encryption()
        wanted = set(keys) if keys is not None else None
        revealed = [
            EnvVarView.of(var, encryption.decrypt(var.encrypted_value))
            for var in await self.storage.projects.list_env_vars(project_id)
            if (wanted is None or var.key in wanted)
            and (deployment_type is None or var.deployment_type in (None, deployment_type))
        ]
        _log.info(
            "env_var.revealed",
            actor_id=actor_id,
            project_id=project_id,
            keys=sorted({view.key for view in revealed}),
        )
        return revealed

    async def delete_env_var(
        self,
        actor_id: str,
        project_id: str,
        key: str,
        deployment_type: DeploymentType | None = None,
    ) -> None:
        """Delete an env var; a name that ``changes_execution`` also needs
        ``project:commands:write``."""
        project = await self._project_for(actor_id, project_id, "env_var:write")
        if changes_execution(key):
            await self._ensure_may_change_execution_env(actor_id, project, [key], "key")
        type_value = deployment_type.value if deployment_type else None
        if not await self.storage.projects.delete_env_var(project_id, key, type_value):
            raise NotFound("env var not found", details={"key": key, "deployment_type": type_value})
        _log.info(
            "env_var.deleted",
            project_id=project_id,
            key=key,
            deployment_type=type_value,
            actor_id=actor_id,
        )

    # --- project API tokens -----------------------------------------------------------

    async def create_project_token(
        self, actor_id: str, project_id: str, data: CreateApiToken
    ) -> tuple[ProjectApiToken, str]:
        """A token for automation on one project (a CI job deploying, say). Its
        scopes default to ``PROJECT_TOKEN_DEFAULT_SCOPES``; the creator cannot grant
        a scope they do not hold. The raw token is returned this once."""
        project = await self._project_for(actor_id, project_id, "token:write")
        _check_expiry(data.expires_at)
        scopes = check_custom_permissions(data.scopes or list(PROJECT_TOKEN_DEFAULT_SCOPES))
        access = await self.authorizer.access(actor_id, project.team_id, project.id)
        self._ensure_can_grant(access, scopes)
        generated = generate_token(PROJECT_TOKEN_PREFIX)
        token = await self.storage.projects.create_api_token(
            ProjectApiToken(
                project_id=project_id,
                name=data.name,
                token_hash=generated.token_hash,
                token_prefix=generated.display_prefix,
                scopes=scopes,
                expires_at=data.expires_at,
                created_by=actor_id,
            )
        )
        _log.info(
            "project_token.created", project_id=project_id, token_id=token.id, actor_id=actor_id
        )
        return token, generated.raw

    async def list_project_tokens(self, actor_id: str, project_id: str) -> list[ProjectApiToken]:
        await self._project_for(actor_id, project_id, "token:read")
        return await self.storage.projects.list_api_tokens(project_id)

    async def delete_project_token(self, actor_id: str, project_id: str, token_id: str) -> None:
        await self._project_for(actor_id, project_id, "token:write")
        tokens = await self.storage.projects.list_api_tokens(project_id)
        if not any(t.id == token_id for t in tokens):
            raise NotFound("API token not found", details={"token_id": token_id})
        await self.storage.projects.delete_api_token(token_id)
        _log.info(
            "project_token.deleted", project_id=project_id, token_id=token_id, actor_id=actor_id
        )

    async def authenticate_project_token(
        self,
        raw: str,
        *,
        permission: str | None = None,
        project_id: str | None = None,
    ) -> ProjectApiToken:
        """The project token for ``raw``; ``Unauthenticated`` when unknown or expired.

        With ``project_id``, the token must belong to that project (``NotFound``
        otherwise); with ``permission``, its scopes must cover it
        (``PermissionDenied``). A caller then acts as the token's creator
        (``created_by``), so the creator's current permissions apply too.
        """
        token = await self.storage.projects.get_api_token_by_hash(hash_token(raw))
        if token is None:
            raise Unauthenticated("invalid project API token")
        now = utcnow()
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated(
                "the project API token has expired", details={"token_id": token.id}
            )
        if project_id is not None and token.project_id != project_id:
            raise NotFound("project not found", details={"project_id": project_id})
        if permission is not None and not has_permission(
            [str(s) for s in token.scopes], permission
        ):
            raise PermissionDenied(
                f"the token's scopes do not include {permission!r}",
                details={"permission": permission, "token_id": token.id},
            )
        await self.storage.projects.touch_api_token(token.id, now)
        return token

    # --- deployments ------------------------------------------------------------------

    def _encrypt_overrides(self, overrides: Mapping[str, str]) -> list[EnvVarOverride]:
        encryption = self.require_encryption()
        return [
            EnvVarOverride(key=key, encrypted_value=encryption.encrypt(value))
            for key, value in overrides.items()
        ]

    def _execution_overrides(self, deployment: Deployment) -> dict[str, str]:
        """The deployment's overrides that ``changes_execution``, decrypted."""
        execution = [o for o in deployment.env_var_overrides if changes_execution(o.key)]
        if not execution:
            return {}
        encryption = self.require_encryption()
        return {o.key: encryption.decrypt(o.encrypted_value) for o in execution}

    async def create_deployment(
        self, actor_id: str, project_id: str, data: CreateDeployment
    ) -> Deployment:
        """A deployment of the project: production (default branch), staging, or a
        preview of a branch that expires (``ttl_hours``/``expires_at``, else the
        team's ``preview_ttl_hours``). Its public URL is known once it is routed.
        Overrides named as ``changes_execution`` also need ``project:commands:write``."""
        project = await self._project_for(actor_id, project_id, "deployment:create")
        await self._ensure_may_change_execution_env(
            actor_id,
            project,
            changed_execution_env({}, data.env_var_overrides),
            "env_var_overrides",
        )
        team = await self.storage.teams.get(project.team_id)
        if team is None:
            raise NotFound("team not found", details={"team_id": project.team_id})
        branch = self.default_branch_for(project, data.type, data.branch)
        now = utcnow()
        expires_at: datetime | None = None
        if data.type is DeploymentType.PREVIEW:
            if data.expires_at is not None:
                expires_at = data.expires_at
            else:
                hours = data.ttl_hours or team.settings.preview_ttl_hours
                expires_at = now + timedelta(hours=hours)
            _check_expiry(expires_at)
        slug = slugify(f"{data.type.value}-{branch}") or data.type.value
        candidate = Deployment(
            project_id=project_id,
            type=data.type,
            branch=branch,
            slug=slug,
            env_var_overrides=self._encrypt_overrides(data.env_var_overrides),
            auto_shutdown=data.auto_shutdown,
            expires_at=expires_at,
        )
        host = self.subdomain_for(team, project, candidate)
        for other in await self.storage.deployments.list_for_project(project_id):
            if other.slug == slug:
                raise Conflict(
                    f"the project already has a deployment {slug!r}", details={"field": "slug"}
                )
        # Host names are {project}-{branch}.{team}: project "a-b" on branch "c" and
        # project "a" on branch "b-c" would share one, so look across the team.
        for sibling in await self._team_projects(team.id):
            for other in await self.storage.deployments.list_for_project(sibling.id):
                if self.subdomain_for(team, sibling, other) == host:
                    raise Conflict(
                        f"the {other.type.value} deployment of branch {other.branch!r}"
                        + ("" if sibling.id == project.id else f" of project {sibling.slug!r}")
                        + f" already uses the host name {host!r}",
                        details={"field": "branch"},
                    )
        deployment = await self.storage.deployments.create(candidate)
        _log.info(
            "deployment.created",
            project_id=project_id,
            deployment_id=deployment.id,
            type=deployment.type.value,
            actor_id=actor_id,
        )
        return deployment

    async def get_deployment(self, actor_id: str, deployment_id: str) -> Deployment:
        deployment, _, _ = await self._deployment_for(actor_id, deployment_id, "deployment:read")
        return deployment

    async def list_deployments(self, actor_id: str, project_id: str) -> list[Deployment]:
        await self._project_for(actor_id, project_id, "deployment:read")
        return await self.storage.deployments.list_for_project(project_id)

    async def update_deployment(
        self, actor_id: str, deployment_id: str, data: UpdateDeployment
    ) -> Deployment:
        """Change overrides (replaced as a whole), auto-shutdown or a preview's
        expiry. Takes effect with the next deploy. Adding, changing or removing an
        override named as ``changes_execution`` also needs ``project:commands:write``."""
        deployment, project, _ = await self._deployment_for(
            actor_id, deployment_id, "deployment:update"
        )
        patch = DeploymentUpdate()
        if data.env_var_overrides is not None:
            await self._ensure_may_change_execution_env(
                actor_id,
                project,
                changed_execution_env(
                    self._execution_overrides(deployment), data.env_var_overrides
                ),
                "env_var_overrides",
            )
            patch.env_var_overrides = self._encrypt_overrides(data.env_var_overrides)
        if data.auto_shutdown is not None:
            patch.auto_shutdown = data.auto_shutdown
        if "expires_at" in data.model_fields_set:
            if deployment.type is not DeploymentType.PREVIEW and data.expires_at is not None:
                raise InvalidInput(
                    "only preview deployments expire", details={"field": "expires_at"}
                )
            if deployment.type is DeploymentType.PREVIEW and data.expires_at is None:
                raise InvalidInput(
                    "a preview deployment must expire", details={"field": "expires_at"}
                )
            _check_expiry(data.expires_at)
            patch.expires_at = data.expires_at
        updated = await self.storage.deployments.update(deployment_id, patch)
        _log.info("deployment.updated", deployment_id=deployment_id, actor_id=actor_id)
        return updated

    async def delete_deployment(self, actor_id: str, deployment_id: str) -> None:
        """Cancel its builds, stop its servers, remove its route, then delete it."""
        deployment, _, _ = await self._deployment_for(actor_id, deployment_id, "deployment:delete")
        await self._teardown(deployment)
        await self.storage.deployments.delete(deployment_id)
        _log.info("deployment.deleted", deployment_id=deployment_id, actor_id=actor_id)

    async def _set_status(
        self,
        deployment: Deployment,
        status: DeploymentStatus,
        patch: DeploymentUpdate | None = None,
    ) -> Deployment:
        """Change a deployment's status and tell plugins when it changed."""
        update = patch or DeploymentUpdate()
        update.status = status
        updated = await self.storage.deployments.update(deployment.id, update)
        if deployment.status is not status:
            _log.info(
                "deployment.status_changed",
                deployment_id=deployment.id,
                previous=deployment.status.value,
                status=status.value,
            )
            await self.fire(
                "mastra_admin_deployment_status_changed",
                deployment=updated,
                previous=deployment.status,
            )
        return updated

    # --- deploy, stop, restart, rollback ------------------------------------------------

    def _require_provider_features(self, *kinds: str) -> None:
        """A provider whose use the licence gates (a Kubernetes runner, say) works
        only while the licence includes its feature."""
        for kind in kinds:
            provider = getattr(self, kind, None)
            name = getattr(provider, "type", None)
            feature = PROVIDER_FEATURES.get((kind, str(name)))
            if feature is not None:
                self.licence.require_feature(feature)

    async def _check_billing(self, team: Team) -> None:
        self._require_provider_features("runner", "router", "source")
        if self.billing is not None and not await self.billing.can_use(team.id, "builds"):
            raise LicenceLimit(
                "the team's billing plan allows no more builds now",
                details={"metric": "builds", "team_id": team.id},
            )

    async def _enqueue(self, build: Build, team: Team) -> Build:
        """Queue a build; it supersedes the deployment's older queued builds (only
        older ones, so that two deploys racing leave the newest queued)."""
        created = await self.storage.builds.create(build)
        superseded: list[Build] = []
        for queued in await self.storage.builds.list_by_status([BuildStatus.QUEUED]):
            if queued.deployment_id != created.deployment_id or queued.id == created.id:
                continue
            # Whichever of two queued builds is older gives way. A newer one can be
            # here already when its deploy began later but inserted first; checking
            # both ways after every insert leaves exactly the newest queued.
            newer_here = (queued.queued_at, queued.id) > (created.queued_at, created.id)
            loser, winner = (created, queued) if newer_here else (queued, created)
            cancelled = await self.storage.builds.transition(
                loser.id,
                [BuildStatus.QUEUED],
                BuildUpdate(
                    status=BuildStatus.CANCELLED,
                    completed_at=utcnow(),
                    error_message=f"superseded by build {winner.id}",
                ),
            )
            if cancelled is not None:
                superseded.append(cancelled)
            if newer_here and cancelled is not None:
                created = cancelled
        _log.info(
            "build.queued",
            build_id=created.id,
            deployment_id=created.deployment_id,
            trigger=created.trigger.value,
            superseded=[b.id for b in superseded],
        )
        for old in superseded:
            await self._build_finished(old)
        if self.billing is not None:
            await self.billing.record_usage(team.id, "builds", 1)
        orchestrator = self.orchestrator
        if orchestrator is not None:
            orchestrator.wake()
        return created

    async def _build_finished(self, build: Build) -> None:
        try:
            deployment, project, _ = await self.load_deployment(build.deployment_id)
        except NotFound:
            return
        await self.fire(
            "mastra_admin_build_finished", build=build, deployment=deployment, project=project
        )

    async def _deployment_to_build(
        self, actor_id: str, deployment_id: str
    ) -> tuple[Deployment, Team]:
        """Queueing a build of a deployment takes ``deployment:deploy`` and
        ``build:create``."""
        deployment, project, team = await self._deployment_for(
            actor_id, deployment_id, "deployment:deploy"
        )
        await self.authorizer.ensure(actor_id, "build:create", team.id, project.id)
        return deployment, team

    async def deploy(
        self, actor_id: str, deployment_id: str, request: DeployRequest | None = None
    ) -> Build:
        """Queue a build of the deployment; a worker builds and starts it."""
        deployment, team = await self._deployment_to_build(actor_id, deployment_id)
        request = request or DeployRequest()
        await self._check_billing(team)
        return await self._enqueue(
            Build(
                deployment_id=deployment.id,
                trigger=request.trigger,
                triggered_by=actor_id,
                commit_sha=request.commit_sha,
                commit_message=request.commit_message,
            ),
            team,
        )

    async def stop(self, actor_id: str, deployment_id: str) -> Deployment:
        """Stop the deployment: cancel its queued and running builds, stop its
        servers, mark its route stopped (the host answers 503)."""
        deployment, _, _ = await self._deployment_for(actor_id, deployment_id, "deployment:deploy")
        await self._cancel_builds(deployment.id, reason=f"deployment stopped by {actor_id}")
        await self._stop_servers(deployment.id)
        route = await self._route_of(deployment.id)
        if route is not None:
            if self.router is not None:
                await self.router.set_route_status(route.id, RouteStatus.STOPPED)
            else:
                await self.storage.routes.update(route.id, RouteUpdate(status=RouteStatus.STOPPED))
        current = await self.storage.deployments.get(deployment.id) or deployment
        stopped = await self._set_status(current, DeploymentStatus.STOPPED)
        _log.info("deployment.stopped", deployment_id=deployment_id, actor_id=actor_id)
        return stopped

    async def restart(self, actor_id: str, deployment_id: str) -> Build:
        """Start the current build again: from its kept output when the runner still
        has it, otherwise by rebuilding."""
        deployment, team = await self._deployment_to_build(actor_id, deployment_id)
        if deployment.current_build_id is None:
            raise Conflict(
                "the deployment has never been deployed: deploy it first",
                details={"field": "current_build_id"},
            )
        current = await self.storage.builds.get(deployment.current_build_id)
        artifact_id = (current.artifact_build_id or current.id) if current else None
        has_output = (
            artifact_id is not None
            and self.runner is not None
            and await self.runner.has_artifact(artifact_id) is not None
        )
        await self._check_billing(team)
        build = Build(
            deployment_id=deployment.id,
            trigger=BuildTrigger.ROLLBACK if has_output else BuildTrigger.MANUAL,
            triggered_by=actor_id,
            artifact_build_id=artifact_id if has_output else None,
            commit_sha=current.commit_sha if current else None,
            commit_message=f"restart of build {deployment.current_build_id}",
        )
        return await self._enqueue(build, team)

    async def rollback(
        self, actor_id: str, deployment_id: str, request: RollbackRequest | str
    ) -> Build:
        """Re-deploy an earlier succeeded build of this deployment from its kept
        output, without rebuilding; ``Conflict`` when the output is gone."""
        deployment, team = await self._deployment_to_build(actor_id, deployment_id)
        build_id = request.build_id if isinstance(request, RollbackRequest) else request
        target = await self.storage.builds.get(build_id)
        if target is None or target.deployment_id != deployment.id:
            raise NotFound("build not found", details={"build_id": build_id})
        if target.status is not BuildStatus.SUCCEEDED:
            raise Conflict(
                f"only a succeeded build can be rolled back to (this one {target.status.value})",
                details={"build_id": build_id, "status": target.status.value},
            )
        artifact_id = target.artifact_build_id or target.id
        if await self.require_runner().has_artifact(artifact_id) is None:
            raise Conflict(
                "the output of that build is no longer kept: deploy the commit again instead",
                details={"build_id": build_id},
            )
        await self._check_billing(team)
        build = Build(
            deployment_id=deployment.id,
            trigger=BuildTrigger.ROLLBACK,
            triggered_by=actor_id,
            artifact_build_id=artifact_id,
            commit_sha=target.commit_sha,
            commit_message=target.commit_message,
        )
        return await self._enqueue(build, team)

    # --- builds -----------------------------------------------------------------------

    async def _cancel(self, build: Build, reason: str) -> Build | None:
        """Cancel a queued or active build; ``None`` when it was already final."""
        for _ in range(3):
            if build.status.is_terminal:
                return None
            was_active = build.status.is_active
            cancelled = await self.storage.builds.transition(
                build.id,
                [build.status],
                BuildUpdate(
                    status=BuildStatus.CANCELLED, completed_at=utcnow(), error_message=reason
                ),
            )
            if cancelled is not None:
                if was_active:
                    # The worker holding it finishes the cancellation (stops what it
                    # started, fires build_finished): here at once, elsewhere when its
                    # lease loop sees the status.
                    orchestrator = self.orchestrator
                    if orchestrator is not None:
                        orchestrator.cancel_local(build.id)
                else:
                    await self._build_finished(cancelled)
                _log.info("build.cancelled", build_id=build.id, was_active=was_active)
                return cancelled
            refreshed = await self.storage.builds.get(build.id)
            if refreshed is None:
                return None
            build = refreshed
        return None

    async def _cancel_builds(self, deployment_id: str, *, reason: str) -> None:
        pending = await self.storage.builds.list_by_status(
            [BuildStatus.QUEUED, BuildStatus.BUILDING, BuildStatus.DEPLOYING]
        )
        for build in pending:
            if build.deployment_id == deployment_id:
                await self._cancel(build, reason)

    async def cancel_build(self, actor_id: str, build_id: str) -> Build:
        """Cancel a queued build, or a running one (its process tree is killed and
        the previous server keeps serving). ``Conflict`` when it is already final."""
        build, _, _, _ = await self._build_for(actor_id, build_id, "build:cancel")
        cancelled = await self._cancel(build, f"cancelled by {actor_id}")
        if cancelled is None:
            current = await self.storage.builds.get(build_id) or build
            raise Conflict(
                f"the build has already {current.status.value}"
                if current.status is not BuildStatus.CANCELLED
                else "the build was already cancelled",
                details={"build_id": build_id, "status": current.status.value},
            )
        return cancelled

    async def get_build(self, actor_id: str, build_id: str) -> Build:
        build, _, _, _ = await self._build_for(actor_id, build_id, "build:read")
        return build

    async def list_builds(
        self, actor_id: str, deployment_id: str, *, limit: int = 50, offset: int = 0
    ) -> Page[Build]:
        """The deployment's builds, newest first."""
        await self._deployment_for(actor_id, deployment_id, "build:read")
        items = await self.storage.builds.list_for_deployment(
            deployment_id, limit=limit, offset=offset
        )
        total = await self.storage.builds.count_for_deployment(deployment_id)
        return Page(items=items, total=total, limit=limit, offset=offset)

    async def get_build_log(self, actor_id: str, build_id: str, *, offset: int = 0) -> str:
        """The build's log from byte ``offset`` (secrets already masked)."""
        await self._build_for(actor_id, build_id, "build:read")
        build_logs = self.build_logs
        if build_logs is None:
            raise Unavailable("build logs need file storage, and none is configured")
        return await build_logs.read(build_id, offset=offset)

    async def get_queue_position(self, actor_id: str, build_id: str) -> int | None:
        """1-based position of a queued build, ``None`` when it is not queued."""
        await self._build_for(actor_id, build_id, "build:read")
        return await self.storage.builds.queue_position(build_id)

    # --- servers and routes -------------------------------------------------------------

    async def list_servers(
        self, actor_id: str, deployment_id: str, *, include_stopped: bool = False
    ) -> list[RunningServer]:
        await self._deployment_for(actor_id, deployment_id, "server:read")
        if include_stopped:
            return await self.storage.servers.list_for_deployment(deployment_id)
        return await self.storage.servers.list_active(deployment_id)

    async def list_routes(self, actor_id: str, project_id: str) -> list[Route]:
        await self._project_for(actor_id, project_id, "route:read")
        return await self.storage.routes.list_for_project(project_id)

    async def get_route(self, actor_id: str, deployment_id: str) -> Route | None:
        await self._deployment_for(actor_id, deployment_id, "route:read")
        return await self._route_of(deployment_id)

    # --- sources ------------------------------------------------------------------------

    async def list_source_projects(self, actor_id: str, team_id: str) -> list[ProjectSource]:
        """The projects the team can create from (the source picker), valid or not:
        an invalid one carries ``metadata["problems"]`` saying why."""
        await self._team_for(actor_id, team_id, "project:create")
        return await self.require_source().list_projects(team_id)

    async def get_source_project(
        self, actor_id: str, team_id: str, source_id: str
    ) -> ProjectSource:
        await self._team_for(actor_id, team_id, "project:create")
        return await self.require_source().get_project(source_id)

    async def _route_of(self, deployment_id: str) -> Route | None:
        if self.router is not None:
            return await self.router.get_route(deployment_id)
        return await self.storage.routes.get_by_deployment(deployment_id)

    async def _stop_servers(self, deployment_id: str) -> None:
        for server in await self.storage.servers.list_active(deployment_id):
            if self.runner is not None:
                try:
                    await self.runner.stop(server, grace_s=self.settings.builds.stop_grace_s)
                except Exception:
                    _log.exception("server.stop_failed", server_id=server.id)
            else:
                _log.warning("server.stop_without_runner", server_id=server.id)
            await self.storage.servers.update(
                server.id,
                RunningServerUpdate(stopped_at=utcnow(), health_status=HealthStatus.STOPPED),
            )
            _log.info("server.stopped", server_id=server.id, deployment_id=deployment_id)

    async def _teardown(self, deployment: Deployment) -> None:
        """Everything that runs for a deployment, gone: builds cancelled, servers
        stopped, route removed (before the deployment itself is deleted)."""
        await self._cancel_builds(deployment.id, reason="deployment deleted")
        await self._stop_servers(deployment.id)
        route = await self._route_of(deployment.id)
        if route is not None:
            if self.router is not None:
                await self.router.remove_route(route.id)
            else:
                await self.storage.routes.delete(route.id)

    async def cleanup_expired_previews(self) -> list[str]:
        """Delete every preview deployment past its expiry (a system task, run by
        the build supervisor): servers stopped, routes removed. Returns their ids."""
        removed: list[str] = []
        for deployment in await self.storage.deployments.list_expired_previews(utcnow()):
            try:
                await self._teardown(deployment)
                await self.storage.deployments.delete(deployment.id)
            except Exception:
                _log.exception("deployment.expiry_failed", deployment_id=deployment.id)
                continue
            removed.append(deployment.id)
            _log.info(
                "deployment.expired",
                deployment_id=deployment.id,
                project_id=deployment.project_id,
                branch=deployment.branch,
            )
        return removed

    # --- observability ------------------------------------------------------------------

    def _query_provider(self) -> ObservabilityQueryProvider:
        if self.observability is None:
            raise Unavailable("no observability backend is configured")
        return self.observability.query

    async def _observability_scope(
        self, actor_id: str, project_id: str | None, deployment_id: str | None
    ) -> ObservabilityQueryProvider:
        if not project_id:
            raise InvalidInput("project_id is required", details={"field": "project_id"})
        await self._project_for(actor_id, project_id, "observability:read")
        if deployment_id is not None:
            deployment = await self.storage.deployments.get(deployment_id)
            if deployment is None or deployment.project_id != project_id:
                raise NotFound("deployment not found", details={"deployment_id": deployment_id})
        return self._query_provider()

    async def list_traces(self, actor_id: str, query: TraceQuery) -> Page[Trace]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.list_traces(query)

    async def get_trace(self, actor_id: str, project_id: str, trace_id: str) -> TraceTree:
        provider = await self._observability_scope(actor_id, project_id, None)
        tree = await provider.get_trace(trace_id, project_id=project_id)
        if tree is None:
            raise NotFound("trace not found", details={"trace_id": trace_id})
        return tree

    async def list_spans(self, actor_id: str, query: SpanQuery) -> Page[Span]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.list_spans(query)

    async def list_logs(self, actor_id: str, query: LogQuery) -> Page[Log]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.list_logs(query)

    async def list_metrics(self, actor_id: str, query: MetricQuery) -> Page[Metric]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.list_metrics(query)

    async def list_scores(self, actor_id: str, query: ScoreQuery) -> Page[Score]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.list_scores(query)

    async def list_feedback(self, actor_id: str, query: FeedbackQuery) -> Page[Feedback]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.list_feedback(query)

    async def time_series(self, actor_id: str, query: TimeSeriesQuery) -> list[TimeBucket]:
        provider = await self._observability_scope(actor_id, query.project_id, query.deployment_id)
        return await provider.time_series(query)

    def __repr__(self) -> str:
        kinds: Mapping[str, object] = {
            "storage": self.storage,
            "runner": self.runner,
            "router": self.router,
            "source": self.source,
        }
        parts = ", ".join(f"{k}={type(v).__name__}" for k, v in kinds.items() if v is not None)
        return f"MastraAdmin({parts})"


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], **values: Any) -> _M:
    """Build an input model from plain values, as ``InvalidInput`` when they are bad."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{field}: {first['msg']}", details={"field": field}) from None


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=utcnow().tzinfo)
    if moment <= utcnow():
        raise InvalidInput("the expiry must be in the future", details={"field": "expires_at"})


def _set_fields(data: BaseModel) -> dict[str, Any]:
    """The fields an update input set to a value (an explicit ``null`` for a field
    that cannot be empty, such as a name, changes nothing)."""
    return {
        name: getattr(data, name)
        for name in data.model_fields_set
        if getattr(data, name) is not None
    }
