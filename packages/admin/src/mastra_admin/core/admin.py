"""``MastraAdmin``: the platform's one entry point, a facade over the core's services.

The HTTP server, the CLI and embedding code all call its methods; none of them
holds business logic of its own. Every public operation takes who acts first (a
``Principal``, or a user id for that user with all of their permissions), checks what
it may do, and returns models. The logic lives in the
services (``mastra_admin.core.services``): identity, teams, projects, deployments,
custom domains and observability, sharing one ``ServiceContext``; each method here is
one of theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MethodType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

import structlog

from mastra_admin.core.build_logs import BuildLogs
from mastra_admin.core.env_contract import COLLECTOR_PATH
from mastra_admin.core.errors import LicenceLimit
from mastra_admin.core.hooks import Hooks
from mastra_admin.core.licence import LicenceInfo, LicenceValidator
from mastra_admin.core.rbac import Authorizer
from mastra_admin.core.services.context import LICENSED_KINDS, ServiceContext
from mastra_admin.core.services.deployments import DeploymentService
from mastra_admin.core.services.domains import DomainService
from mastra_admin.core.services.identity import (
    TOKEN_OWNERS_CACHED,
    TOKEN_TOUCH_INTERVAL,
    IdentityService,
)
from mastra_admin.core.services.observability import ObservabilityService
from mastra_admin.core.services.projects import PROJECT_TOKEN_DEFAULT_SCOPES, ProjectService
from mastra_admin.core.services.teams import INVITE_TTL, TeamService
from mastra_admin.core.services.webhooks import WebhookService
from mastra_admin.core.settings import MastraAdminSettings

if TYPE_CHECKING:
    from mastra_admin.core.auth import AuthProvider
    from mastra_admin.core.billing import BillingProvider
    from mastra_admin.core.email import EmailProvider
    from mastra_admin.core.encryption import EncryptionProvider
    from mastra_admin.core.file_storage import FileStorageProvider
    from mastra_admin.core.observability import ObservabilityBackend
    from mastra_admin.core.orchestrator import BuildOrchestrator
    from mastra_admin.core.plugins import PluginManager
    from mastra_admin.core.router import EdgeRouterProvider
    from mastra_admin.core.runner import ProjectRunner
    from mastra_admin.core.source import ProjectSourceProvider
    from mastra_admin.core.storage import AdminStorage

__all__ = [
    "COLLECTOR_PATH",
    "INVITE_TTL",
    "PROJECT_TOKEN_DEFAULT_SCOPES",
    "TOKEN_OWNERS_CACHED",
    "TOKEN_TOUCH_INTERVAL",
    "MastraAdmin",
]

_log = structlog.get_logger("mastra_admin.core.admin")

_T = TypeVar("_T")
_S = TypeVar("_S")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _FromContext(Generic[_T]):
    """A facade attribute that is the ``ServiceContext``'s attribute of that name:
    setting it (a test swapping the runner, say) changes what every service sees."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, admin: None, owner: type) -> _FromContext[_T]: ...
    @overload
    def __get__(self, admin: MastraAdmin, owner: type) -> _T: ...
    def __get__(self, admin: MastraAdmin | None, owner: type) -> _T | _FromContext[_T]:
        if admin is None:
            return self
        return cast("_T", getattr(admin.context, self.name))

    def __set__(self, admin: MastraAdmin, value: _T) -> None:
        setattr(admin.context, self.name, value)


class _ServiceMethod(Generic[_S, _P, _R]):
    """A facade method that is a method of one of the facade's services (named by
    the attribute that holds it): same signature, same docstring."""

    def __init__(self, service: str, method: Callable[Concatenate[_S, _P], _R]) -> None:
        self.service = service
        self.method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, admin: None, owner: type) -> Callable[Concatenate[_S, _P], _R]: ...
    @overload
    def __get__(self, admin: MastraAdmin, owner: type) -> Callable[_P, _R]: ...
    def __get__(
        self, admin: MastraAdmin | None, owner: type
    ) -> Callable[_P, _R] | Callable[Concatenate[_S, _P], _R]:
        if admin is None:
            return self.method
        return cast("Callable[_P, _R]", MethodType(self.method, getattr(admin, self.service)))


class MastraAdmin:
    """The platform. Construct it with providers (or let
    ``mastra_admin.core.compose.build_admin`` do it from settings), then
    ``await admin.init()``; ``await admin.close()`` when done.

    ``identity``, ``teams``, ``projects``, ``deployments``, ``domains`` and
    ``observability_queries`` are the services behind it; ``context`` what they share.
    """

    settings: _FromContext[MastraAdminSettings] = _FromContext()
    storage: _FromContext[AdminStorage] = _FromContext()
    authorizer: _FromContext[Authorizer] = _FromContext()
    licence: _FromContext[LicenceValidator] = _FromContext()
    plugins: _FromContext[PluginManager | None] = _FromContext()
    runner: _FromContext[ProjectRunner | None] = _FromContext()
    router: _FromContext[EdgeRouterProvider | None] = _FromContext()
    source: _FromContext[ProjectSourceProvider | None] = _FromContext()
    file_storage: _FromContext[FileStorageProvider | None] = _FromContext()
    observability: _FromContext[ObservabilityBackend | None] = _FromContext()
    encryption: _FromContext[EncryptionProvider | None] = _FromContext()
    email: _FromContext[EmailProvider | None] = _FromContext()
    billing: _FromContext[BillingProvider | None] = _FromContext()
    auth: _FromContext[AuthProvider | None] = _FromContext()
    build_logs: _FromContext[BuildLogs | None] = _FromContext()

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
        settings = settings or MastraAdminSettings()
        self.context = ServiceContext(
            settings=settings,
            storage=storage,
            authorizer=Authorizer(storage),
            licence=licence or LicenceValidator(settings.licence_key, settings.licence_public_key),
            hooks=Hooks(plugins, admin=self),
            runner=runner,
            router=router,
            source=source,
            file_storage=file_storage,
            observability=observability,
            encryption=encryption,
            email=email,
            billing=billing,
            auth=auth,
            build_logs=BuildLogs(file_storage) if file_storage is not None else None,
            collector_secret=collector_secret,
        )
        self.identity = IdentityService(self.context)
        self.deployments = DeploymentService(self.context)
        self.teams = TeamService(self.context, self.deployments)
        self.projects = ProjectService(self.context, self.deployments)
        self.webhooks = WebhookService(self.context, self.deployments)
        self.domains = DomainService(self.context)
        self.observability_queries = ObservabilityService(self.context)
        self._initialised = False
        self._closed = False

    @property
    def hooks(self) -> Hooks:
        """The event hooks, as typed calls (``await admin.hooks.build_finished(...)``)."""
        return self.context.hooks

    @property
    def orchestrator(self) -> BuildOrchestrator | None:
        """The build workers of this process (``None`` without a runner)."""
        return self.deployments.orchestrator

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
            self.context.require_provider_features(*LICENSED_KINDS)
        except LicenceLimit as exc:
            _log.warning("licence.provider_not_licensed", reason=exc.message)
        await self.hooks.startup()

    async def close(self) -> None:
        """Tell plugins, stop the build workers, then close every provider (a failure
        closing one is logged and the others still close). Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        await self.hooks.shutdown()
        orchestrator = self.orchestrator
        if orchestrator is not None:
            await self._guarded("orchestrator", orchestrator.stop())
        await self._guarded("domain checks", self.domains.pending_checks.stop())
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

    async def fire(self, hook: str, **kwargs: Any) -> None:
        """Call an event hook by name on every plugin; a failing plugin is logged, not
        raised. Prefer the typed calls of ``hooks``."""
        await self.hooks.fire(hook, **kwargs)

    # --- shared helpers: ServiceContext ---
    require_runner = _ServiceMethod("context", ServiceContext.require_runner)
    require_source = _ServiceMethod("context", ServiceContext.require_source)
    require_encryption = _ServiceMethod("context", ServiceContext.require_encryption)
    collector_token = _ServiceMethod("context", ServiceContext.collector_token)
    verify_collector_token = _ServiceMethod("context", ServiceContext.verify_collector_token)
    collector_url = _ServiceMethod("context", ServiceContext.collector_url)
    subdomain_for = staticmethod(DeploymentService.subdomain_for)
    default_branch_for = staticmethod(DeploymentService.default_branch_for)

    # --- identity: IdentityService ---
    bootstrap_admin = _ServiceMethod("identity", IdentityService.bootstrap_admin)
    system_create_user = _ServiceMethod("identity", IdentityService.system_create_user)
    create_user = _ServiceMethod("identity", IdentityService.create_user)
    get_me = _ServiceMethod("identity", IdentityService.get_me)
    get_user = _ServiceMethod("identity", IdentityService.get_user)
    list_users = _ServiceMethod("identity", IdentityService.list_users)
    grant_platform_admin = _ServiceMethod("identity", IdentityService.grant_platform_admin)
    revoke_platform_admin = _ServiceMethod("identity", IdentityService.revoke_platform_admin)
    user_for_identity = _ServiceMethod("identity", IdentityService.user_for_identity)
    create_user_token = _ServiceMethod("identity", IdentityService.create_user_token)
    list_user_tokens = _ServiceMethod("identity", IdentityService.list_user_tokens)
    revoke_user_token = _ServiceMethod("identity", IdentityService.revoke_user_token)
    authenticate_token = _ServiceMethod("identity", IdentityService.authenticate_token)
    authenticate = _ServiceMethod("identity", IdentityService.authenticate)

    # --- teams: TeamService ---
    create_team = _ServiceMethod("teams", TeamService.create_team)
    get_team = _ServiceMethod("teams", TeamService.get_team)
    get_team_by_slug = _ServiceMethod("teams", TeamService.get_team_by_slug)
    list_teams = _ServiceMethod("teams", TeamService.list_teams)
    update_team = _ServiceMethod("teams", TeamService.update_team)
    delete_team = _ServiceMethod("teams", TeamService.delete_team)
    list_members = _ServiceMethod("teams", TeamService.list_members)
    update_member_role = _ServiceMethod("teams", TeamService.update_member_role)
    remove_member = _ServiceMethod("teams", TeamService.remove_member)
    invite_member = _ServiceMethod("teams", TeamService.invite_member)
    list_invites = _ServiceMethod("teams", TeamService.list_invites)
    revoke_invite = _ServiceMethod("teams", TeamService.revoke_invite)
    accept_invite = _ServiceMethod("teams", TeamService.accept_invite)
    add_installation = _ServiceMethod("teams", TeamService.add_installation)
    list_installations = _ServiceMethod("teams", TeamService.list_installations)
    remove_installation = _ServiceMethod("teams", TeamService.remove_installation)
    list_roles = _ServiceMethod("teams", TeamService.list_roles)
    create_role = _ServiceMethod("teams", TeamService.create_role)
    update_role = _ServiceMethod("teams", TeamService.update_role)
    delete_role = _ServiceMethod("teams", TeamService.delete_role)
    assign_role = _ServiceMethod("teams", TeamService.assign_role)
    unassign_role = _ServiceMethod("teams", TeamService.unassign_role)
    list_role_assignments = _ServiceMethod("teams", TeamService.list_role_assignments)

    # --- projects: ProjectService ---
    create_project = _ServiceMethod("projects", ProjectService.create_project)
    get_project = _ServiceMethod("projects", ProjectService.get_project)
    list_projects = _ServiceMethod("projects", ProjectService.list_projects)
    update_project = _ServiceMethod("projects", ProjectService.update_project)
    delete_project = _ServiceMethod("projects", ProjectService.delete_project)
    set_env_var = _ServiceMethod("projects", ProjectService.set_env_var)
    list_env_vars = _ServiceMethod("projects", ProjectService.list_env_vars)
    reveal_env_vars = _ServiceMethod("projects", ProjectService.reveal_env_vars)
    delete_env_var = _ServiceMethod("projects", ProjectService.delete_env_var)
    create_project_token = _ServiceMethod("projects", ProjectService.create_project_token)
    list_project_tokens = _ServiceMethod("projects", ProjectService.list_project_tokens)
    delete_project_token = _ServiceMethod("projects", ProjectService.delete_project_token)
    authenticate_project_token = _ServiceMethod(
        "identity", IdentityService.authenticate_project_token
    )
    list_source_projects = _ServiceMethod("projects", ProjectService.list_source_projects)
    get_source_project = _ServiceMethod("projects", ProjectService.get_source_project)

    # --- webhooks: WebhookService ---
    receive_webhook = _ServiceMethod("webhooks", WebhookService.receive)

    # --- deployments: DeploymentService ---
    build_env = _ServiceMethod("deployments", DeploymentService.build_env)
    load_deployment = _ServiceMethod("deployments", DeploymentService.load_deployment)
    create_deployment = _ServiceMethod("deployments", DeploymentService.create_deployment)
    get_deployment = _ServiceMethod("deployments", DeploymentService.get_deployment)
    list_deployments = _ServiceMethod("deployments", DeploymentService.list_deployments)
    update_deployment = _ServiceMethod("deployments", DeploymentService.update_deployment)
    delete_deployment = _ServiceMethod("deployments", DeploymentService.delete_deployment)
    deploy = _ServiceMethod("deployments", DeploymentService.deploy)
    stop = _ServiceMethod("deployments", DeploymentService.stop)
    restart = _ServiceMethod("deployments", DeploymentService.restart)
    rollback = _ServiceMethod("deployments", DeploymentService.rollback)
    cancel_build = _ServiceMethod("deployments", DeploymentService.cancel_build)
    get_build = _ServiceMethod("deployments", DeploymentService.get_build)
    list_builds = _ServiceMethod("deployments", DeploymentService.list_builds)
    get_build_log = _ServiceMethod("deployments", DeploymentService.get_build_log)
    get_queue_position = _ServiceMethod("deployments", DeploymentService.get_queue_position)
    list_servers = _ServiceMethod("deployments", DeploymentService.list_servers)
    list_routes = _ServiceMethod("deployments", DeploymentService.list_routes)
    get_route = _ServiceMethod("deployments", DeploymentService.get_route)
    cleanup_expired_previews = _ServiceMethod(
        "deployments", DeploymentService.cleanup_expired_previews
    )

    # --- custom domains: DomainService ---
    add_domain = _ServiceMethod("domains", DomainService.add_domain)
    list_domains = _ServiceMethod("domains", DomainService.list_domains)
    list_project_domains = _ServiceMethod("domains", DomainService.list_project_domains)
    get_domain = _ServiceMethod("domains", DomainService.get_domain)
    domain_support = _ServiceMethod("domains", DomainService.domain_support)
    verify_domain = _ServiceMethod("domains", DomainService.verify_domain)
    remove_domain = _ServiceMethod("domains", DomainService.remove_domain)
    recheck_pending_domains = _ServiceMethod("domains", DomainService.recheck_pending_domains)

    # --- observability: ObservabilityService ---
    list_traces = _ServiceMethod("observability_queries", ObservabilityService.list_traces)
    get_trace = _ServiceMethod("observability_queries", ObservabilityService.get_trace)
    list_spans = _ServiceMethod("observability_queries", ObservabilityService.list_spans)
    list_logs = _ServiceMethod("observability_queries", ObservabilityService.list_logs)
    list_metrics = _ServiceMethod("observability_queries", ObservabilityService.list_metrics)
    list_scores = _ServiceMethod("observability_queries", ObservabilityService.list_scores)
    list_feedback = _ServiceMethod("observability_queries", ObservabilityService.list_feedback)
    time_series = _ServiceMethod("observability_queries", ObservabilityService.time_series)

    def __repr__(self) -> str:
        kinds: Mapping[str, object] = {
            "storage": self.storage,
            "runner": self.runner,
            "router": self.router,
            "source": self.source,
        }
        parts = ", ".join(f"{k}={type(v).__name__}" for k, v in kinds.items() if v is not None)
        return f"MastraAdmin({parts})"
