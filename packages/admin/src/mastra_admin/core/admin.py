"""``MastraAdmin``: every business operation of the platform, behind RBAC and the licence.

The HTTP server, the CLI and embedding code all call these methods; none of them
holds business logic of its own. Every public operation takes the acting user's id
first, checks what that user may do, and returns models.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from mastra_admin.core.errors import InvalidInput, NotFound, Unavailable
from mastra_admin.core.inputs import slugify
from mastra_admin.core.models import (
    Deployment,
    DeploymentType,
    Project,
    Team,
)
from mastra_admin.core.settings import MastraAdminSettings

if TYPE_CHECKING:
    from mastra_admin.core.auth import AuthProvider
    from mastra_admin.core.billing import BillingProvider
    from mastra_admin.core.email import EmailProvider
    from mastra_admin.core.encryption import EncryptionProvider
    from mastra_admin.core.file_storage import FileStorageProvider
    from mastra_admin.core.licence import LicenceValidator
    from mastra_admin.core.observability import ObservabilityBackend
    from mastra_admin.core.plugins import PluginManager
    from mastra_admin.core.router import EdgeRouterProvider
    from mastra_admin.core.runner import ProjectRunner
    from mastra_admin.core.source import ProjectSourceProvider
    from mastra_admin.core.storage import AdminStorage

__all__ = ["MastraAdmin"]

_log = structlog.get_logger("mastra_admin.core.admin")

COLLECTOR_PATH = "/api/collector/{deployment_id}/spans/publish"


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
        self.licence = licence
        self.plugins = plugins
        self._collector_secret = collector_secret
        self._initialised = False

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
        return self.settings.admin_url + COLLECTOR_PATH.format(deployment_id=deployment_id)

    @staticmethod
    def subdomain_for(team: Team, project: Project, deployment: Deployment) -> str:
        """``{project}-{branch}.{team}``; production on the default branch omits nothing,
        so every deployment has its own stable host name."""
        branch = slugify(deployment.branch) or "branch"
        label = f"{project.slug}-{branch}"[:63].strip("-")
        return f"{label}.{team.slug}"

    async def build_env(self, deployment: Deployment, project: Project) -> tuple[dict[str, str], list[str]]:
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
        if self._collector_secret is not None:
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

    def __repr__(self) -> str:
        kinds: Mapping[str, object] = {
            "storage": self.storage,
            "runner": self.runner,
            "router": self.router,
            "source": self.source,
        }
        parts = ", ".join(f"{k}={type(v).__name__}" for k, v in kinds.items() if v is not None)
        return f"MastraAdmin({parts})"
