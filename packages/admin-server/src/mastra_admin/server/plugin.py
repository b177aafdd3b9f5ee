"""The server's own plugin: the ``oidc`` auth provider."""

from __future__ import annotations

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.server.oidc import OidcAuthProvider, OidcSettings

__all__ = ["mastra_admin_providers"]


def _create_oidc(settings: OidcSettings, context: ProviderContext) -> OidcAuthProvider:
    return OidcAuthProvider(settings)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="auth",
            name="oidc",
            settings_model=OidcSettings,
            factory=_create_oidc,
            description="OIDC JWTs checked against the provider's JWKS",
        )
    ]
