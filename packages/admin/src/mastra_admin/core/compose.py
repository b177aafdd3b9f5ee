"""The composition root: settings and plugins in, a ``MastraAdmin`` ready for ``init()`` out.

It knows no concrete adapter: for each kind it looks the provider named in the
settings up in the plugin manager, validates that provider's section with the
provider's own settings model, and calls its factory. It is the one place where the
platform is wired: the whole admin (``build_admin``), a part of it for commands that
need less (``build_admin(only=STORAGE_KINDS)``, ``build_providers``), and the
ingestion worker (``build_ingestion_worker``), whose folders the runner names.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import secrets
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import structlog
from pydantic import BaseModel, ValidationError

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.auth import AuthProvider
from mastra_admin.core.billing import BillingProvider
from mastra_admin.core.email import EmailProvider
from mastra_admin.core.encryption import EncryptionProvider
from mastra_admin.core.errors import InvalidInput, MastraAdminError
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.licence import LicenceValidator
from mastra_admin.core.observability import IngestionWorker, ObservabilityBackend
from mastra_admin.core.plugins import (
    PROVIDER_KINDS,
    PluginError,
    PluginManager,
    ProviderContext,
    ProviderKind,
    ProviderSpec,
)
from mastra_admin.core.router import EdgeRouterProvider
from mastra_admin.core.runner import ProjectRunner
from mastra_admin.core.settings import MastraAdminSettings, describe_validation_error, load_settings
from mastra_admin.core.source import ProjectSourceProvider
from mastra_admin.core.storage import AdminStorage

__all__ = [
    "COLLECTOR_SECRET_FILE",
    "INGESTION_KINDS",
    "INTERFACES",
    "REQUIRED_KINDS",
    "STORAGE_KINDS",
    "IngestionParts",
    "Providers",
    "build_admin",
    "build_ingestion_worker",
    "build_providers",
    "env_aliases",
    "load_collector_secret",
    "provider_settings",
]

_log = structlog.get_logger("mastra_admin.core.compose")

REQUIRED_KINDS: frozenset[ProviderKind] = frozenset({"encryption", "file_storage", "storage"})
"""Kinds ``MastraAdmin`` cannot run without; every other kind may be ``none``."""

STORAGE_KINDS: frozenset[ProviderKind] = REQUIRED_KINDS
"""What a command that only reads and writes the platform's records composes
(``users``, ``tokens``, ``migrate`` of the database): storage and what ``MastraAdmin``
cannot run without. No runner, router or observability store is constructed, so such a
command takes no port and no engine lock and runs beside ``serve``."""

INGESTION_KINDS: frozenset[ProviderKind] = frozenset(
    {"file_storage", "source", "runner", "observability"}
)
"""What an ingestion worker is built from: the observability store it writes to, the
file storage it reads, and the runner that names the folders its builds write to
(with the source, which runners are constructed with)."""

NONE_PROVIDER = "none"

INTERFACES: Mapping[ProviderKind, type] = {
    "encryption": EncryptionProvider,
    "file_storage": FileStorageProvider,
    "storage": AdminStorage,
    "source": ProjectSourceProvider,
    "router": EdgeRouterProvider,
    "runner": ProjectRunner,
    "observability": ObservabilityBackend,
    "auth": AuthProvider,
    "email": EmailProvider,
    "billing": BillingProvider,
}
"""The interface a provider of each kind must implement."""

COLLECTOR_SECRET_FILE = "collector-secret"
_COLLECTOR_SECRET_BYTES = 32

# Kinds that have their own attribute on ProviderContext (the others are in extras).
_CONTEXT_FIELDS = ("encryption", "file_storage", "storage", "source", "router")


@dataclass
class Providers:
    """Providers composed from the settings, by kind (``None``: not composed, or the
    ``none`` provider). What ``build_providers`` returns; ``close()`` closes them."""

    settings: MastraAdminSettings
    data_dir: Path
    plugins: PluginManager
    by_kind: dict[ProviderKind, Any]

    def get(self, kind: ProviderKind) -> Any:
        """The provider of ``kind``, or ``None``."""
        return self.by_kind.get(kind)

    @property
    def storage(self) -> AdminStorage | None:
        return cast(AdminStorage | None, self.get("storage"))

    @property
    def file_storage(self) -> FileStorageProvider | None:
        return cast(FileStorageProvider | None, self.get("file_storage"))

    @property
    def runner(self) -> ProjectRunner | None:
        return cast(ProjectRunner | None, self.get("runner"))

    @property
    def observability(self) -> ObservabilityBackend | None:
        return cast(ObservabilityBackend | None, self.get("observability"))

    async def close(self) -> None:
        """Close every provider that has a ``close()``, newest first; a failure is
        logged and the others still close."""
        await _close_quietly(self.by_kind)


async def build_providers(
    settings: MastraAdminSettings | None = None,
    *,
    kinds: Iterable[ProviderKind] | None = None,
    plugins: PluginManager | Sequence[object] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Providers:
    """Construct the providers of ``kinds`` (default: every kind) from the settings.

    Kinds are constructed in ``PROVIDER_KINDS`` order; a kind left out is ``None``
    for the factories of later kinds too (a factory that needs it says so). Nothing
    is initialised: the caller initialises what it uses.

    :param kinds: the kinds to construct; the others stay ``None``.
    :param plugins: as for ``build_admin``.
    :param overrides: ready providers by kind, used instead of the settings' choice
        (also for a kind not in ``kinds``).
    :raises PluginError: as for ``build_admin``.
    :raises InvalidInput: as for ``build_admin``, and for an unknown kind.
    """
    settings = settings if settings is not None else load_settings()
    wanted = set(PROVIDER_KINDS if kinds is None else kinds)
    given = dict(overrides or {})
    unknown = sorted((set(given) | wanted) - set(PROVIDER_KINDS))
    if unknown:
        raise InvalidInput(
            f"unknown provider kinds {unknown}; the kinds are: {', '.join(PROVIDER_KINDS)}",
            details={"kinds": unknown},
        )
    manager = _plugin_manager(settings, plugins)
    data_dir = await asyncio.to_thread(_prepare_data_dir, settings.data_dir)
    context = ProviderContext(settings=settings, data_dir=data_dir)
    built: dict[ProviderKind, Any] = {}
    try:
        for kind in PROVIDER_KINDS:
            if kind in given:
                provider = given[kind]
                _check_provider(kind, "(override)", "embedding code", provider)
            elif kind in wanted:
                provider = await _construct(kind, settings, manager, context)
            else:
                provider = None
            built[kind] = provider
            if provider is not None:
                context.extras[kind] = provider
                if kind in _CONTEXT_FIELDS:
                    setattr(context, kind, provider)
    except BaseException:
        await _close_quietly(built)
        raise
    return Providers(settings=settings, data_dir=data_dir, plugins=manager, by_kind=built)


async def build_admin(
    settings: MastraAdminSettings | None = None,
    *,
    plugins: PluginManager | Sequence[object] | None = None,
    overrides: Mapping[str, object] | None = None,
    only: Iterable[ProviderKind] | None = None,
) -> MastraAdmin:
    """Construct ``MastraAdmin`` from settings and the installed plugins.

    :param settings: default ``load_settings()``.
    :param plugins: a ``PluginManager`` to use as it is, or plugin objects to
        register (in code) after the built-in plugin and the entry points that the
        settings' ``plugins_allow`` / ``plugins_deny`` let through.
    :param overrides: ready providers by kind (``{"storage": my_storage}``); they
        are used instead of the settings' choice, ``None`` meaning "no provider".
    :param only: compose only these kinds (and ``REQUIRED_KINDS``); the others are
        ``None``, as if their provider were ``none``. ``only=STORAGE_KINDS`` is the
        admin of a command that needs only the platform's records: it runs beside a
        server on the same data dir.
    :return: the platform, not yet initialised: call ``await admin.init()``.
    :raises PluginError: a plugin is broken, a provider is not installed, or a
        factory failed; the message names the kind, provider and plugin.
    :raises InvalidInput: a provider's settings are invalid; the message names the
        kind, the provider and the field.
    """
    settings = settings if settings is not None else load_settings()
    kinds = None if only is None else REQUIRED_KINDS | set(only)
    providers = await build_providers(settings, kinds=kinds, plugins=plugins, overrides=overrides)
    built = providers.by_kind
    try:
        collector_secret = await asyncio.to_thread(load_collector_secret, providers.data_dir)
    except BaseException:
        await providers.close()
        raise
    licence = LicenceValidator(settings.licence_key, settings.licence_public_key)
    _log.info(
        "admin.composed",
        data_dir=str(providers.data_dir),
        providers={kind: type(p).__name__ for kind, p in built.items() if p is not None},
        plugins=[info.name for info in providers.plugins.list_plugins()],
    )
    return MastraAdmin(
        storage=cast(AdminStorage, built["storage"]),
        runner=cast(ProjectRunner | None, built.get("runner")),
        router=cast(EdgeRouterProvider | None, built.get("router")),
        source=cast(ProjectSourceProvider | None, built.get("source")),
        file_storage=cast(FileStorageProvider | None, built.get("file_storage")),
        observability=cast(ObservabilityBackend | None, built.get("observability")),
        encryption=cast(EncryptionProvider | None, built.get("encryption")),
        email=cast(EmailProvider | None, built.get("email")),
        billing=cast(BillingProvider | None, built.get("billing")),
        auth=cast(AuthProvider | None, built.get("auth")),
        licence=licence,
        settings=settings,
        plugins=providers.plugins,
        collector_secret=collector_secret,
    )


class IngestionParts(Protocol):
    """What an ingestion worker is built from: a ``MastraAdmin`` or ``Providers``."""

    @property
    def observability(self) -> ObservabilityBackend | None: ...

    @property
    def file_storage(self) -> FileStorageProvider | None: ...

    @property
    def runner(self) -> ProjectRunner | None: ...


def build_ingestion_worker(
    composed: IngestionParts, *, build_dirs: Sequence[str] | None = None
) -> IngestionWorker | None:
    """The ingestion worker of a composition: it reads the file storage and the
    per-build folders under the runner's ``artifact_roots()`` into the observability
    store. ``None`` when there is no observability store or no file storage.

    :param build_dirs: folders of build folders to read instead of the runner's.
    """
    observability, file_storage = composed.observability, composed.file_storage
    if observability is None or file_storage is None:
        return None
    if build_dirs is None:
        runner = composed.runner
        build_dirs = runner.artifact_roots() if runner is not None else []
    return observability.ingestion_worker(file_storage, build_dirs=list(build_dirs))


def _plugin_manager(
    settings: MastraAdminSettings, plugins: PluginManager | Sequence[object] | None
) -> PluginManager:
    if isinstance(plugins, PluginManager):
        return plugins
    manager = PluginManager.from_settings(settings)
    for plugin in plugins or ():
        manager.register(plugin)
    return manager


def _prepare_data_dir(data_dir: Path) -> Path:
    path = data_dir.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


async def _construct(
    kind: ProviderKind,
    settings: MastraAdminSettings,
    manager: PluginManager,
    context: ProviderContext,
) -> object | None:
    section = settings.section(kind)
    name = section.provider
    if name == NONE_PROVIDER and (kind, name) not in manager.provider_specs():
        if kind in REQUIRED_KINDS:
            raise InvalidInput(
                f"{kind} is required: set {kind}.provider to one of "
                f"{manager.provider_names(kind) or 'the installed adapters'}",
                details={"kind": kind, "provider": name},
            )
        _log.info("provider.none", kind=kind)
        return None
    spec = manager.get_provider(kind, name)
    plugin = manager.provider_plugin(kind, name)
    where = manager.describe_plugin(plugin)
    provider_config = provider_settings(spec, settings)
    try:
        provider: object = spec.factory(provider_config, context)
        if inspect.isawaitable(provider):
            provider = await provider
    except MastraAdminError:
        _log.error("provider.failed", kind=kind, provider=name, plugin=plugin)
        raise
    except Exception as exc:
        raise PluginError(
            f"{kind} provider {name!r} of plugin {where} failed to start: "
            f"{type(exc).__name__}: {exc}",
            details={"kind": kind, "provider": name, "plugin": plugin},
        ) from exc
    _check_provider(kind, name, where, provider)
    _log.info("provider.created", kind=kind, provider=name, plugin=plugin)
    return provider


def _check_provider(kind: ProviderKind, name: str, where: str, provider: object) -> None:
    if provider is None:
        if kind in REQUIRED_KINDS:
            raise InvalidInput(f"{kind} is required but {where} gave none", details={"kind": kind})
        return
    interface = INTERFACES[kind]
    if not isinstance(provider, interface):
        raise PluginError(
            f"{kind} provider {name!r} of {where} returned {type(provider).__name__}, "
            f"which is not a {interface.__name__}",
            details={"kind": kind, "provider": name},
        )


def env_aliases(model: type[BaseModel]) -> dict[str, list[str]]:
    """Extra environment variables per settings key, from the fields'
    ``json_schema_extra={"env": [...]}``."""
    aliases: dict[str, list[str]] = {}
    for field_name, info in model.model_fields.items():
        extra = info.json_schema_extra
        names = extra.get("env") if isinstance(extra, dict) else None
        if isinstance(names, list) and names:
            aliases[info.alias or field_name] = [str(n) for n in names]
    return aliases


def _is_structured(annotation: Any) -> bool:
    """Whether a field holds a list, mapping or model (rather than a scalar)."""
    candidates = (
        typing.get_args(annotation)
        if typing.get_origin(annotation)
        in (
            typing.Union,
            types.UnionType,
        )
        else (annotation,)
    )
    for candidate in candidates:
        origin = typing.get_origin(candidate) or candidate
        if origin in (list, dict, set, frozenset, tuple):
            return True
        if isinstance(origin, type) and issubclass(origin, BaseModel):
            return True
    return False


def _decoded(model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with JSON text decoded where a field holds a list, mapping or model:
    how an environment variable gives one (``MASTRA_ADMIN_SOURCE__FILE_BASE_PATHS=
    '["/srv/git"]'``). Text that is not JSON is left for validation to refuse."""
    decoded = dict(raw)
    for name, info in model.model_fields.items():
        key = info.alias or name
        value = decoded.get(key)
        if isinstance(value, str) and _is_structured(info.annotation):
            with contextlib.suppress(ValueError):
                decoded[key] = json.loads(value)
    return decoded


def provider_settings(spec: ProviderSpec, settings: MastraAdminSettings) -> BaseModel:
    """The provider's section validated with its settings model.

    A field's extra environment variables (``DATABASE_URL`` ...) fill it unless an
    override or a ``MASTRA_ADMIN_*`` variable set it; they beat the TOML file.

    :raises InvalidInput: naming the kind, the provider and the field.
    """
    section = settings.section(spec.kind)
    raw = section.provider_settings()
    explicit = settings.explicit_section_keys(spec.kind)
    if explicit is None:
        explicit = frozenset(raw)
    for key, names in env_aliases(spec.settings_model).items():
        if key in explicit:
            continue
        for env_name in names:
            value = os.environ.get(env_name)
            if value:
                raw[key] = value
                break
    try:
        return spec.settings_model.model_validate(_decoded(spec.settings_model, raw))
    except ValidationError as exc:
        message, errors = describe_validation_error(exc, prefix=spec.kind)
        first = errors[0]["field"].split(".", 1)[-1] if errors else ""
        hint = (
            f" (set it in the [{spec.kind}] section of the settings file or with "
            f"MASTRA_ADMIN_{spec.kind.upper()}__{first.upper()})"
            if first and "." not in first
            else ""
        )
        raise InvalidInput(
            f"invalid settings for {spec.kind} provider {spec.name!r}: {message}{hint}",
            details={"kind": spec.kind, "provider": spec.name, "errors": errors},
        ) from exc


def load_collector_secret(data_dir: Path) -> bytes:
    """The installation's collector secret, created (32 random bytes, mode 0600)
    on first use. Collector tokens are derived from it, so deleting it invalidates
    the token of every deployed server until it is redeployed."""
    path = data_dir / COLLECTOR_SECRET_FILE
    if not path.exists():
        # Write a complete temp file, then link it into place: a concurrent
        # starter either wins the link or reads the whole winner.
        temp = data_dir / f".{COLLECTOR_SECRET_FILE}.{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(_COLLECTOR_SECRET_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, path)
                _log.info("collector_secret.created", path=str(path))
            except FileExistsError:
                pass
        finally:
            temp.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < _COLLECTOR_SECRET_BYTES:
        raise InvalidInput(
            f"{path} holds {len(secret)} bytes, a collector secret needs "
            f"{_COLLECTOR_SECRET_BYTES}; delete the file to create a new one "
            "(deployed servers then need a redeploy to get new collector tokens)",
            details={"path": str(path)},
        )
    return secret


async def _close_quietly(built: Mapping[ProviderKind, Any]) -> None:
    """Close what was constructed before a later kind failed, newest first."""
    for kind in reversed(list(built)):
        close = getattr(built[kind], "close", None)
        if not callable(close):
            continue
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            _log.warning("provider.close_failed", kind=kind, error=f"{type(exc).__name__}: {exc}")
