"""The server's own plugin: the ``oidc`` auth provider and the built-in commands of
``mastra-admin`` (added through ``mastra_admin_cli``, like any plugin's)."""

from __future__ import annotations

from typing import Any

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.server.oidc import OidcAuthProvider, OidcSettings

__all__ = ["PLUGIN_NAME", "mastra_admin_cli", "mastra_admin_providers"]

PLUGIN_NAME = "server"
"""This plugin's entry-point name."""


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


@hookimpl(tryfirst=True)
def mastra_admin_cli(group: Any) -> None:
    """``serve``, ``worker``, ``migrate``, ``users``, ``tokens``, ``licence``, ``doctor``.

    First of all implementations, so that an adapter that offers a command only when
    the command line has none (``migrate``, ``ingest``) sees these."""
    from mastra_admin.server.commands import add_commands

    add_commands(group)
