"""``ServiceContext``: what the core's services and the build orchestrator share.

The settings, the storage, the authorizer and the licence, the providers, the
typed event hooks, the build logs and the collector secret. One instance per
``MastraAdmin``; the facade's provider attributes read and write it, so a provider
swapped on the facade is the one every service sees.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mastra_admin.core import env_contract
from mastra_admin.core.errors import Unavailable

if TYPE_CHECKING:
    from mastra_admin.core.auth import AuthProvider
    from mastra_admin.core.billing import BillingProvider
    from mastra_admin.core.build_logs import BuildLogs
    from mastra_admin.core.email import EmailProvider
    from mastra_admin.core.encryption import EncryptionProvider
    from mastra_admin.core.file_storage import FileStorageProvider
    from mastra_admin.core.hooks import Hooks
    from mastra_admin.core.licence import LicenceValidator
    from mastra_admin.core.observability import ObservabilityBackend
    from mastra_admin.core.plugins import PluginManager
    from mastra_admin.core.rbac import Authorizer
    from mastra_admin.core.router import EdgeRouterProvider
    from mastra_admin.core.runner import ProjectRunner
    from mastra_admin.core.settings import MastraAdminSettings
    from mastra_admin.core.source import ProjectSourceProvider
    from mastra_admin.core.storage import AdminStorage

__all__ = ["LICENSED_KINDS", "ServiceContext"]

LICENSED_KINDS = ("runner", "router", "source")
"""Provider kinds whose ``licence_feature`` the licence checks before a build."""


@dataclass(eq=False)
class ServiceContext:
    settings: MastraAdminSettings
    storage: AdminStorage
    authorizer: Authorizer
    licence: LicenceValidator
    hooks: Hooks
    runner: ProjectRunner | None = None
    router: EdgeRouterProvider | None = None
    source: ProjectSourceProvider | None = None
    file_storage: FileStorageProvider | None = None
    observability: ObservabilityBackend | None = None
    encryption: EncryptionProvider | None = None
    email: EmailProvider | None = None
    billing: BillingProvider | None = None
    auth: AuthProvider | None = None
    build_logs: BuildLogs | None = None
    collector_secret: bytes | None = None

    @property
    def plugins(self) -> PluginManager | None:
        """The plugin manager the hooks fire on."""
        return self.hooks.plugins

    @plugins.setter
    def plugins(self, plugins: PluginManager | None) -> None:
        self.hooks.plugins = plugins

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

    def require_provider_features(self, *kinds: str) -> None:
        """A provider whose use the licence gates (a Kubernetes runner, say) works
        only while the licence includes the feature it declares
        (``licence_feature``)."""
        for kind in kinds:
            feature: str | None = getattr(getattr(self, kind, None), "licence_feature", None)
            if feature is not None:
                self.licence.require_feature(feature)

    # --- the collector ----------------------------------------------------------------

    def collector_token(self, deployment_id: str) -> str:
        """The bearer token a deployed server uses to post observability events.

        Derived (HMAC-SHA256 of the deployment id with the installation's collector
        secret), so it needs no storage and is checked in constant time.
        """
        if self.collector_secret is None:
            raise Unavailable("no collector secret is configured")
        mac = hmac.new(self.collector_secret, deployment_id.encode(), hashlib.sha256)
        return "mac_" + mac.hexdigest()

    def verify_collector_token(self, deployment_id: str, token: str) -> bool:
        if self.collector_secret is None:
            return False
        return hmac.compare_digest(self.collector_token(deployment_id), token)

    def collector_url(self, deployment_id: str) -> str:
        """The traces URL given to a deployed server; the exporter derives the logs,
        metrics, scores and feedback URLs by replacing its ``spans/publish`` suffix."""
        return env_contract.collector_url(self.settings.collector_base_url, deployment_id)

    @property
    def collector_enabled(self) -> bool:
        """Whether deployed servers are given the collector variables."""
        return self.collector_secret is not None and self.settings.collector
