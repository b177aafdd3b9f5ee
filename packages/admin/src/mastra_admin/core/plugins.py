"""Provider specs and the plugin manager (one per application, never a global).

An adapter distribution registers providers through the ``mastra_admin_providers``
hook and the ``mastra_admin`` entry-point group, e.g. in its ``pyproject.toml``::

    [project.entry-points.mastra_admin]
    pg = "mastra_admin.stores.pg.plugin"

and in that module::

    @hookimpl
    def mastra_admin_providers() -> list[ProviderSpec]:
        return [ProviderSpec(kind="storage", name="pg", settings_model=PgSettings,
                             factory=create_storage)]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from mastra_admin.core.encryption import EncryptionProvider
    from mastra_admin.core.file_storage import FileStorageProvider
    from mastra_admin.core.router import EdgeRouterProvider
    from mastra_admin.core.settings import MastraAdminSettings
    from mastra_admin.core.source import ProjectSourceProvider
    from mastra_admin.core.storage import AdminStorage

__all__ = ["PROVIDER_KINDS", "ProviderContext", "ProviderFactory", "ProviderKind", "ProviderSpec"]

ProviderKind = Literal[
    "encryption",
    "file_storage",
    "storage",
    "source",
    "router",
    "runner",
    "observability",
    "auth",
    "email",
    "billing",
]

PROVIDER_KINDS: tuple[ProviderKind, ...] = (
    "encryption",
    "file_storage",
    "storage",
    "source",
    "router",
    "runner",
    "observability",
    "auth",
    "email",
    "billing",
)
"""Every kind, in the order the composition root constructs them: a factory may use
the providers of the kinds before its own from the ``ProviderContext``."""


@dataclass
class ProviderContext:
    """What a provider factory may use: the core settings, the data dir, and the
    providers already constructed (kinds earlier in ``PROVIDER_KINDS``)."""

    settings: MastraAdminSettings
    data_dir: Path
    encryption: EncryptionProvider | None = None
    file_storage: FileStorageProvider | None = None
    storage: AdminStorage | None = None
    source: ProjectSourceProvider | None = None
    router: EdgeRouterProvider | None = None
    extras: dict[str, Any] = field(default_factory=dict)


ProviderFactory = Callable[[Any, ProviderContext], Any | Awaitable[Any]]
"""``factory(settings, context)``: ``settings`` is an instance of the spec's
``settings_model``; returns the provider (or an awaitable of it)."""


@dataclass(frozen=True)
class ProviderSpec:
    """One provider a plugin offers.

    ``settings_model`` is a pydantic model of the provider's own settings (the
    ``[<kind>]`` section of the settings file and ``MASTRA_ADMIN_<KIND>__<FIELD>``
    variables). A field may name extra environment variables that also set it with
    ``json_schema_extra={"env": ["DATABASE_URL"]}``.
    """

    kind: ProviderKind
    name: str
    settings_model: type[BaseModel]
    factory: ProviderFactory
    description: str = ""
