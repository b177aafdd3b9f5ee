"""MastraAdmin's core: ``MastraAdmin`` and the models, inputs, errors and provider
interfaces it is built from.

Names are imported on first use, so ``import mastra_admin.core.errors`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mastra_admin.core.version import __version__

if TYPE_CHECKING:
    from mastra_admin.core.admin import (
        MastraAdmin,
    )
    from mastra_admin.core.auth import (
        AuthProvider,
        ExternalIdentity,
    )
    from mastra_admin.core.billing import (
        BillingProvider,
        NoBillingProvider,
    )
    from mastra_admin.core.build_logs import (
        BuildLogs,
    )
    from mastra_admin.core.compose import (
        build_admin,
    )
    from mastra_admin.core.email import (
        ConsoleEmailProvider,
        EmailMessage,
        EmailProvider,
    )
    from mastra_admin.core.encryption import (
        AesGcmEncryption,
        EncryptionProvider,
    )
    from mastra_admin.core.errors import (
        BuildFailed,
        Conflict,
        InvalidInput,
        LicenceLimit,
        MastraAdminError,
        NotFound,
        PermissionDenied,
        RateLimited,
        Unauthenticated,
        Unavailable,
    )
    from mastra_admin.core.file_storage import (
        FileStorageProvider,
    )
    from mastra_admin.core.hookspecs import (
        hookimpl,
        hookspec,
    )
    from mastra_admin.core.inputs import (
        AcceptInvite,
        AddDomain,
        AssignRole,
        BranchName,
        CreateApiToken,
        CreateDeployment,
        CreateInstallation,
        CreateProject,
        CreateRole,
        CreateTeam,
        CreateUser,
        DeployRequest,
        EnvVarKey,
        InviteMember,
        Port,
        RollbackRequest,
        SetEnvVar,
        Slug,
        UpdateDeployment,
        UpdateMember,
        UpdateProject,
        UpdateRole,
        UpdateTeam,
        slugify,
    )
    from mastra_admin.core.licence import (
        LicenceInfo,
        LicenceTier,
        LicenceValidator,
        generate_keypair,
        issue_licence,
    )
    from mastra_admin.core.local_file_storage import (
        LocalFileStorage,
    )
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
        JsonList,
        JsonMap,
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
        TeamSettings,
        User,
        UserApiToken,
        new_id,
        utcnow,
    )
    from mastra_admin.core.observability import (
        ObservabilityBackend,
        ObservabilityQueryProvider,
    )
    from mastra_admin.core.observability_writer import (
        ObservabilityWriter,
    )
    from mastra_admin.core.orchestrator import (
        BuildOrchestrator,
    )
    from mastra_admin.core.outbound import (
        CheckedTarget,
        DeliveryAttempt,
        DeliveryResult,
    )
    from mastra_admin.core.plugins import (
        PluginManager,
        ProviderContext,
        ProviderSpec,
    )
    from mastra_admin.core.rbac import (
        PERMISSIONS,
        Authorizer,
        system_roles,
    )
    from mastra_admin.core.router import (
        EdgeRouterProvider,
        RouteConfig,
    )
    from mastra_admin.core.runner import (
        BuildArtifact,
        BuildContext,
        ProjectRunner,
    )
    from mastra_admin.core.settings import (
        MastraAdminSettings,
        load_settings,
    )
    from mastra_admin.core.smtp_email import (
        SmtpEmailProvider,
        SmtpEmailSettings,
    )
    from mastra_admin.core.source import (
        ProjectSource,
        ProjectSourceProvider,
    )
    from mastra_admin.core.storage import (
        AdminStorage,
    )
    from mastra_admin.core.tokens import (
        generate_token,
        hash_token,
    )
    from mastra_admin.core.views import (
        DomainView,
        EnvVarView,
    )

_WHERE: dict[str, str] = {
    "AcceptInvite": "inputs",
    "AddDomain": "inputs",
    "AdminStorage": "storage",
    "AesGcmEncryption": "encryption",
    "AssignRole": "inputs",
    "AuthProvider": "auth",
    "Authorizer": "rbac",
    "BillingProvider": "billing",
    "BranchName": "inputs",
    "Build": "models",
    "BuildArtifact": "runner",
    "BuildContext": "runner",
    "BuildFailed": "errors",
    "BuildLogs": "build_logs",
    "BuildOrchestrator": "orchestrator",
    "BuildStatus": "models",
    "BuildTrigger": "models",
    "CheckedTarget": "outbound",
    "Conflict": "errors",
    "ConsoleEmailProvider": "email",
    "CreateApiToken": "inputs",
    "CreateDeployment": "inputs",
    "CreateInstallation": "inputs",
    "CreateProject": "inputs",
    "CreateRole": "inputs",
    "CreateTeam": "inputs",
    "CreateUser": "inputs",
    "DeliveryAttempt": "outbound",
    "DeliveryResult": "outbound",
    "DeployRequest": "inputs",
    "Deployment": "models",
    "DeploymentStatus": "models",
    "DeploymentType": "models",
    "Domain": "models",
    "DomainStatus": "models",
    "DomainView": "views",
    "EdgeRouterProvider": "router",
    "EmailMessage": "email",
    "EmailProvider": "email",
    "EncryptionProvider": "encryption",
    "EnvVarKey": "inputs",
    "EnvVarOverride": "models",
    "EnvVarView": "views",
    "ExternalIdentity": "auth",
    "FileStorageProvider": "file_storage",
    "HealthStatus": "models",
    "InvalidInput": "errors",
    "InviteMember": "inputs",
    "JsonList": "models",
    "JsonMap": "models",
    "LicenceInfo": "licence",
    "LicenceLimit": "errors",
    "LicenceTier": "licence",
    "LicenceValidator": "licence",
    "LocalFileStorage": "local_file_storage",
    "MastraAdmin": "admin",
    "MastraAdminError": "errors",
    "MastraAdminSettings": "settings",
    "NoBillingProvider": "billing",
    "NotFound": "errors",
    "ObservabilityBackend": "observability",
    "ObservabilityQueryProvider": "observability",
    "ObservabilityWriter": "observability_writer",
    "PERMISSIONS": "rbac",
    "Page": "models",
    "PermissionDenied": "errors",
    "PluginManager": "plugins",
    "Port": "inputs",
    "Project": "models",
    "ProjectApiToken": "models",
    "ProjectEnvVar": "models",
    "ProjectRunner": "runner",
    "ProjectSettings": "models",
    "ProjectSource": "source",
    "ProjectSourceProvider": "source",
    "ProviderContext": "plugins",
    "ProviderSpec": "plugins",
    "RateLimited": "errors",
    "ResourceType": "models",
    "Role": "models",
    "RoleAssignment": "models",
    "RollbackRequest": "inputs",
    "Route": "models",
    "RouteConfig": "router",
    "RouteStatus": "models",
    "RunningServer": "models",
    "SetEnvVar": "inputs",
    "Slug": "inputs",
    "SmtpEmailProvider": "smtp_email",
    "SmtpEmailSettings": "smtp_email",
    "Team": "models",
    "TeamInstallation": "models",
    "TeamInvite": "models",
    "TeamMember": "models",
    "TeamRole": "models",
    "TeamSettings": "models",
    "Unauthenticated": "errors",
    "Unavailable": "errors",
    "UpdateDeployment": "inputs",
    "UpdateMember": "inputs",
    "UpdateProject": "inputs",
    "UpdateRole": "inputs",
    "UpdateTeam": "inputs",
    "User": "models",
    "UserApiToken": "models",
    "build_admin": "compose",
    "generate_keypair": "licence",
    "generate_token": "tokens",
    "hash_token": "tokens",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "issue_licence": "licence",
    "load_settings": "settings",
    "new_id": "models",
    "slugify": "inputs",
    "system_roles": "rbac",
    "utcnow": "models",
}

__all__ = [
    "PERMISSIONS",
    "AcceptInvite",
    "AddDomain",
    "AdminStorage",
    "AesGcmEncryption",
    "AssignRole",
    "AuthProvider",
    "Authorizer",
    "BillingProvider",
    "BranchName",
    "Build",
    "BuildArtifact",
    "BuildContext",
    "BuildFailed",
    "BuildLogs",
    "BuildOrchestrator",
    "BuildStatus",
    "BuildTrigger",
    "CheckedTarget",
    "Conflict",
    "ConsoleEmailProvider",
    "CreateApiToken",
    "CreateDeployment",
    "CreateInstallation",
    "CreateProject",
    "CreateRole",
    "CreateTeam",
    "CreateUser",
    "DeliveryAttempt",
    "DeliveryResult",
    "DeployRequest",
    "Deployment",
    "DeploymentStatus",
    "DeploymentType",
    "Domain",
    "DomainStatus",
    "DomainView",
    "EdgeRouterProvider",
    "EmailMessage",
    "EmailProvider",
    "EncryptionProvider",
    "EnvVarKey",
    "EnvVarOverride",
    "EnvVarView",
    "ExternalIdentity",
    "FileStorageProvider",
    "HealthStatus",
    "InvalidInput",
    "InviteMember",
    "JsonList",
    "JsonMap",
    "LicenceInfo",
    "LicenceLimit",
    "LicenceTier",
    "LicenceValidator",
    "LocalFileStorage",
    "MastraAdmin",
    "MastraAdminError",
    "MastraAdminSettings",
    "NoBillingProvider",
    "NotFound",
    "ObservabilityBackend",
    "ObservabilityQueryProvider",
    "ObservabilityWriter",
    "Page",
    "PermissionDenied",
    "PluginManager",
    "Port",
    "Project",
    "ProjectApiToken",
    "ProjectEnvVar",
    "ProjectRunner",
    "ProjectSettings",
    "ProjectSource",
    "ProjectSourceProvider",
    "ProviderContext",
    "ProviderSpec",
    "RateLimited",
    "ResourceType",
    "Role",
    "RoleAssignment",
    "RollbackRequest",
    "Route",
    "RouteConfig",
    "RouteStatus",
    "RunningServer",
    "SetEnvVar",
    "Slug",
    "SmtpEmailProvider",
    "SmtpEmailSettings",
    "Team",
    "TeamInstallation",
    "TeamInvite",
    "TeamMember",
    "TeamRole",
    "TeamSettings",
    "Unauthenticated",
    "Unavailable",
    "UpdateDeployment",
    "UpdateMember",
    "UpdateProject",
    "UpdateRole",
    "UpdateTeam",
    "User",
    "UserApiToken",
    "__version__",
    "build_admin",
    "generate_keypair",
    "generate_token",
    "hash_token",
    "hookimpl",
    "hookspec",
    "issue_licence",
    "load_settings",
    "new_id",
    "slugify",
    "system_roles",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
