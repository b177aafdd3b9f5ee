"""Provider specs and the plugin manager (one per application, never a global).

An adapter distribution registers providers through the ``mastra_admin_providers``
hook and the ``mastra_admin`` entry-point group, e.g. in its ``pyproject.toml``::

    [project.entry-points.mastra_admin]
    storage-pg = "mastra_admin.stores.pg.plugin"

and in that module::

    @hookimpl
    def mastra_admin_providers() -> list[ProviderSpec]:
        return [ProviderSpec(kind="storage", name="pg", settings_model=PgSettings,
                             factory=create_storage)]

``PluginManager`` loads those entry points (with an allow and a deny list), checks
every plugin at start-up (unknown hooks, unmarked hook functions, duplicate
providers, import errors) and is the one place where awaitables returned by hook
implementations are awaited (``call_async``).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import pluggy
import structlog
from pydantic import BaseModel, Field

from mastra_admin.core import hookspecs
from mastra_admin.core.errors import MastraAdminError
from mastra_admin.core.hookspecs import PROJECT_NAME
from mastra_admin.core.version import __version__

if TYPE_CHECKING:
    from mastra_admin.core.encryption import EncryptionProvider
    from mastra_admin.core.file_storage import FileStorageProvider
    from mastra_admin.core.router import EdgeRouterProvider
    from mastra_admin.core.settings import MastraAdminSettings
    from mastra_admin.core.source import ProjectSourceProvider
    from mastra_admin.core.storage import AdminStorage

__all__ = [
    "BUILTIN_PLUGIN",
    "ENTRY_POINT_ALIASES",
    "ENTRY_POINT_GROUP",
    "EVENT_HOOKS",
    "OWN_ADAPTERS",
    "PROVIDER_KINDS",
    "PluginError",
    "PluginInfo",
    "PluginManager",
    "ProviderContext",
    "ProviderFactory",
    "ProviderKind",
    "ProviderSpec",
    "hookspec_names",
]

_log = structlog.get_logger("mastra_admin.core.plugins")

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

ENTRY_POINT_GROUP = PROJECT_NAME
"""The entry-point group plugin distributions publish their plugin module under."""

OWN_ADAPTERS: Mapping[tuple[str, str], str] = {
    ("storage", "pg"): "mastra-admin-pg",
    ("observability", "clickhouse"): "mastra-admin-observability-clickhouse",
    ("runner", "local"): "mastra-admin-runner-local",
    ("runner", "docker"): "mastra-admin-runner-docker",
    ("router", "local"): "mastra-admin-router-local",
    ("router", "caddy"): "mastra-admin-router-caddy",
    ("source", "local"): "mastra-admin-source-local",
    ("source", "git"): "mastra-admin-source-git",
}
"""The distributions of this project's own adapters, by the provider they offer: what
the message for a provider that is not installed tells the operator to install. The
core imports none of them."""

ENTRY_POINT_ALIASES: Mapping[str, str] = {
    "pg": "storage-pg",
    "clickhouse": "observability-clickhouse",
}
"""Entry-point names of 0.1 and the names that replaced them (``<kind>-<name>``): a
``plugins_allow`` / ``plugins_deny`` entry may use either, and either matches an
installed plugin of either name."""


def _current_name(name: str) -> str:
    return ENTRY_POINT_ALIASES.get(name, name)


BUILTIN_PLUGIN = "builtin"
"""The name of the core's own plugin (``mastra_admin.core.builtin``); deny it like
any other plugin to replace every built-in provider."""

EVENT_HOOKS: frozenset[str] = frozenset(
    {
        "mastra_admin_startup",
        "mastra_admin_shutdown",
        "mastra_admin_build_finished",
        "mastra_admin_deployment_event",
        "mastra_admin_deployment_status_changed",
    }
)
"""Hooks that report something that happened: a failing implementation is logged and
the other implementations still run; the error never reaches the caller."""

_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


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


class PluginError(MastraAdminError):
    """A plugin could not be loaded or broke its contract. The message names the
    plugin and the distribution it came from; ``details`` has both."""

    code = "plugin_error"


class PluginInfo(BaseModel):
    """One loaded plugin, as the introspection endpoint lists it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = Field(default_factory=list)
    providers: list[str] = Field(
        default_factory=list, description="``kind:name`` of every provider it offers"
    )


def hookspec_names() -> list[str]:
    """The name of every hook a plugin may implement, sorted."""
    marker = f"{PROJECT_NAME}_spec"
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and getattr(value, marker, None) is not None
    )


@dataclass(frozen=True)
class _Origin:
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.distribution is None:
            return "registered in code"
        if self.version is None:
            return f"distribution {self.distribution}"
        return f"distribution {self.distribution} {self.version}"


class PluginManager:
    """The plugins of one application: the built-in plugin, entry points, and
    plugins registered in code.

    Every registration is checked at once; a broken plugin raises ``PluginError``
    naming it, and the manager stays as it was before that registration.
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._origins: dict[str, _Origin] = {}
        self._specs: dict[tuple[ProviderKind, str], tuple[ProviderSpec, str]] | None = None
        if builtins:
            from mastra_admin.core import builtin

            self.register(builtin, BUILTIN_PLUGIN, distribution="mastra-admin", version=__version__)

    @classmethod
    def from_settings(cls, settings: MastraAdminSettings) -> PluginManager:
        """A manager with the built-in plugin and the entry points the settings allow."""
        manager = cls()
        manager.load_entrypoints(settings.plugins_allow, settings.plugins_deny)
        return manager

    @property
    def hook(self) -> pluggy.HookRelay:
        """pluggy's hook relay, for callers that need pluggy itself (e.g. historic hooks)."""
        return self._pm.hook

    # --- registration -----------------------------------------------------------

    def load_entrypoints(
        self, allow: Iterable[str] | None = None, deny: Iterable[str] = ()
    ) -> list[str]:
        """Load the plugins published under the ``mastra_admin`` entry-point group.

        :param allow: when given, only entry points with these names are loaded.
        :param deny: never loaded, even when allowed; naming ``builtin`` here also
            removes the core's built-in providers.
        :return: the names of the plugins loaded by this call.
        :raises PluginError: a plugin fails to import, implements an unknown hook,
            or offers a provider another plugin already offers.
        """
        allowed = None if allow is None else {_current_name(n) for n in allow}
        denied = {_current_name(n) for n in deny}
        if BUILTIN_PLUGIN in denied and self._pm.has_plugin(BUILTIN_PLUGIN):
            self.unregister(BUILTIN_PLUGIN)
            _log.info("plugin.denied", plugin=BUILTIN_PLUGIN)
        seen: dict[str, _Origin] = {}
        loaded: list[str] = []
        for entry_point in sorted(
            importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
        ):
            name = entry_point.name
            origin = _origin_of(entry_point)
            if _current_name(name) in denied:
                _log.info("plugin.denied", plugin=name, distribution=origin.distribution)
                continue
            if allowed is not None and _current_name(name) not in allowed:
                _log.info("plugin.not_allowed", plugin=name, distribution=origin.distribution)
                continue
            if name in seen:
                raise PluginError(
                    f"two distributions publish a plugin named {name!r}: "
                    f"{seen[name].describe()} and {origin.describe()}; "
                    "uninstall one of them",
                    details={
                        "plugin": name,
                        "distributions": [seen[name].distribution, origin.distribution],
                    },
                )
            seen[name] = origin
            if self._pm.has_plugin(name):
                if self._origins.get(name) == origin:
                    continue  # loaded by an earlier call
                raise PluginError(
                    f"plugin {name!r} ({origin.describe()}) has the name of a plugin "
                    f"that is already registered ({self._origins[name].describe()})",
                    details={"plugin": name, "distribution": origin.distribution},
                )
            try:
                plugin = entry_point.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {name!r} ({origin.describe()}) failed to import "
                    f"{entry_point.value!r}: {type(exc).__name__}: {exc}",
                    details={"plugin": name, "distribution": origin.distribution},
                ) from exc
            self.register(plugin, name, distribution=origin.distribution, version=origin.version)
            loaded.append(name)
        if allowed:
            missing = sorted(allowed - {_current_name(n) for n in seen} - {BUILTIN_PLUGIN})
            if missing:
                _log.warning("plugin.allowed_not_installed", plugins=missing)
        return loaded

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register a plugin given in code (a module, class or object with hook
        implementations) and check it like an entry point; returns its name."""
        origin = _Origin(distribution, version)
        label = name or _plugin_label(plugin)
        if name is None:
            # Plugins given in code without a name are named after their class or
            # module, numbered when several share one.
            name, number = label, 1
            while self._pm.has_plugin(name):
                number += 1
                name = f"{label}#{number}"
        if name is not None and self._pm.has_plugin(name):
            raise PluginError(
                f"a plugin named {name!r} is already registered "
                f"({self._origins[name].describe()}); "
                f"cannot register another one ({origin.describe()})",
                details={"plugin": name, "distribution": distribution},
            )
        _reject_unmarked_hooks(plugin, label, origin)
        try:
            registered = self._pm.register(plugin, name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {label!r} ({origin.describe()}) is invalid: "
                + "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()),
                details={"plugin": label, "distribution": distribution},
            ) from exc
        except ValueError as exc:  # the same object registered twice
            raise PluginError(
                f"plugin {label!r} ({origin.describe()}) cannot be registered: {exc}",
                details={"plugin": label, "distribution": distribution},
            ) from exc
        if registered is None:  # blocked through pluggy directly
            raise PluginError(f"plugin {label!r} is blocked", details={"plugin": label})
        self._origins[registered] = origin
        self._specs = None
        try:
            self._check_pending()
            self._provider_index()
        except PluginError:
            self.unregister(registered)
            raise
        _log.debug("plugin.registered", plugin=registered, distribution=distribution)
        return registered

    def unregister(self, name: str) -> None:
        """Remove a plugin and its hook implementations (no error when absent)."""
        self._pm.unregister(name=name)
        self._origins.pop(name, None)
        self._specs = None

    def has_plugin(self, name: str) -> bool:
        return self._pm.has_plugin(name)

    def _check_pending(self) -> None:
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self._pm.get_name(exc.plugin) or _plugin_label(exc.plugin)
            unknown = sorted(
                caller.name
                for caller in self._pm.get_hookcallers(exc.plugin) or []
                if not caller.has_spec()
            )
            hints = []
            for hook_name in unknown:
                close = difflib.get_close_matches(hook_name, hookspec_names(), n=1)
                hints.append(f"{hook_name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise PluginError(
                f"plugin {name!r} ({self._origin(name).describe()}) implements "
                f"{', '.join(hints) or 'a hook'}, which is not a MastraAdmin hook; "
                f"the hooks are: {', '.join(hookspec_names())}",
                details={
                    "plugin": name,
                    "distribution": self._origin(name).distribution,
                    "unknown_hooks": unknown,
                },
            ) from exc

    def _origin(self, name: str) -> _Origin:
        return self._origins.get(name, _Origin())

    def describe_plugin(self, name: str) -> str:
        """``'storage-pg' (distribution mastra-admin-pg 0.1.0)``, for messages."""
        return f"{name!r} ({self._origin(name).describe()})"

    # --- providers ----------------------------------------------------------------

    def _provider_index(self) -> dict[tuple[ProviderKind, str], tuple[ProviderSpec, str]]:
        if self._specs is not None:
            return self._specs
        index: dict[tuple[ProviderKind, str], tuple[ProviderSpec, str]] = {}
        caller = self._pm.hook.mastra_admin_providers
        for impl in caller.get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                continue
            plugin = impl.plugin_name
            where = self.describe_plugin(plugin)
            details = {"plugin": plugin, "distribution": self._origin(plugin).distribution}
            try:
                result = impl.function()
            except Exception as exc:
                raise PluginError(
                    f"plugin {where} failed in mastra_admin_providers: {type(exc).__name__}: {exc}",
                    details=details,
                ) from exc
            if result is None:
                continue
            if inspect.isawaitable(result):
                _close_awaitable(result)
                raise PluginError(
                    f"plugin {where}: mastra_admin_providers must return a list, "
                    "not an awaitable (it is a synchronous hook)",
                    details=details,
                )
            if not isinstance(result, Iterable) or isinstance(result, str | bytes):
                raise PluginError(
                    f"plugin {where}: mastra_admin_providers must return a list of "
                    f"ProviderSpec, not {type(result).__name__}",
                    details=details,
                )
            for item in result:
                spec = _check_spec(item, where, details)
                key = (spec.kind, spec.name)
                if key in index:
                    other = index[key][1]
                    raise PluginError(
                        f"{spec.kind} provider {spec.name!r} is offered by two plugins: "
                        f"{self.describe_plugin(other)} and {where}; "
                        "deny one of them with plugins_deny",
                        details={
                            "kind": spec.kind,
                            "provider": spec.name,
                            "plugins": [other, plugin],
                            "distributions": [
                                self._origin(other).distribution,
                                self._origin(plugin).distribution,
                            ],
                        },
                    )
                index[key] = (spec, plugin)
        self._specs = index
        return index

    def provider_specs(self) -> dict[tuple[ProviderKind, str], ProviderSpec]:
        """Every provider offered by a registered plugin, keyed by ``(kind, name)``."""
        return {key: spec for key, (spec, _) in self._provider_index().items()}

    def provider_names(self, kind: ProviderKind) -> list[str]:
        """The names of the providers of ``kind``, sorted."""
        return sorted(name for (k, name) in self._provider_index() if k == kind)

    def get_provider(self, kind: ProviderKind, name: str) -> ProviderSpec:
        """The spec of provider ``name`` of ``kind``.

        :raises PluginError: no such provider; the message lists the names that exist.
        """
        if kind not in PROVIDER_KINDS:
            raise PluginError(
                f"unknown provider kind {kind!r}; the kinds are: {', '.join(PROVIDER_KINDS)}",
                details={"kind": kind},
            )
        found = self._provider_index().get((kind, name))
        if found is None:
            available = self.provider_names(kind)
            listing = ", ".join(repr(n) for n in available) or "none"
            distribution = OWN_ADAPTERS.get((kind, name))
            hint = (
                f"; install it with: pip install {distribution}"
                if distribution is not None
                else "; install the distribution that provides it (see docs/plugins.md)"
            )
            raise PluginError(
                f"no {kind} provider named {name!r} is installed (available: {listing}){hint}",
                details={
                    "kind": kind,
                    "provider": name,
                    "available": available,
                    "distribution": distribution,
                },
            )
        return found[0]

    def provider_plugin(self, kind: ProviderKind, name: str) -> str:
        """The name of the plugin that offers provider ``name`` of ``kind``."""
        self.get_provider(kind, name)
        return self._provider_index()[(kind, name)][1]

    # --- calling hooks ------------------------------------------------------------

    def _caller(self, hook_name: str) -> pluggy.HookCaller:
        if hook_name not in hookspec_names():
            raise PluginError(
                f"{hook_name!r} is not a MastraAdmin hook; the hooks are: "
                f"{', '.join(hookspec_names())}",
                details={"hook": hook_name},
            )
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
        return caller

    @staticmethod
    def _arguments(caller: pluggy.HookCaller, kwargs: Mapping[str, Any]) -> None:
        expected = set(caller.spec.argnames) if caller.spec is not None else set()
        missing = expected - set(kwargs)
        unknown = set(kwargs) - expected
        if missing or unknown:
            raise TypeError(
                f"hook {caller.name} takes {sorted(expected)}; "
                f"missing {sorted(missing)}, unexpected {sorted(unknown)}"
            )

    def _implementations(self, caller: pluggy.HookCaller) -> list[pluggy.HookImpl]:
        # pluggy's own order: the last registered (and tryfirst) runs first.
        return [
            impl
            for impl in reversed(caller.get_hookimpls())
            if not (impl.wrapper or impl.hookwrapper)
        ]

    def _failed(self, hook_name: str, impl: pluggy.HookImpl, exc: Exception) -> PluginError:
        plugin = impl.plugin_name
        return PluginError(
            f"plugin {self.describe_plugin(plugin)} failed in {hook_name}: "
            f"{type(exc).__name__}: {exc}",
            details={
                "plugin": plugin,
                "distribution": self._origin(plugin).distribution,
                "hook": hook_name,
            },
        )

    async def call_async(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of ``hook_name`` and await what they return.

        This is the one place where awaitables returned by hook implementations are
        awaited. Implementations run one after another, in pluggy's order; ``None``
        results are left out. For the event hooks (``EVENT_HOOKS``) a failing
        implementation is logged and the others still run; for the other hooks the
        failure is raised as ``PluginError`` naming the plugin.
        """
        caller = self._caller(hook_name)
        self._arguments(caller, kwargs)
        results: list[Any] = []
        for impl in self._implementations(caller):
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                if hook_name in EVENT_HOOKS:
                    _log.exception(
                        "plugin.hook_failed",
                        hook=hook_name,
                        plugin=impl.plugin_name,
                        distribution=self._origin(impl.plugin_name).distribution,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    continue
                raise self._failed(hook_name, impl, exc) from exc
            if result is not None:
                results.append(result)
        return results

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a synchronous hook (``mastra_admin_routes``, ``mastra_admin_cli`` ...)
        on every implementation; a failure raises ``PluginError`` naming the plugin.

        An implementation that returns an awaitable is an error here: use
        ``call_async`` for async-capable hooks.
        """
        caller = self._caller(hook_name)
        self._arguments(caller, kwargs)
        results: list[Any] = []
        for impl in self._implementations(caller):
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:
                raise self._failed(hook_name, impl, exc) from exc
            if inspect.isawaitable(result):
                _close_awaitable(result)
                raise PluginError(
                    f"plugin {self.describe_plugin(impl.plugin_name)} returned an awaitable "
                    f"from {hook_name}, which is called synchronously",
                    details={"plugin": impl.plugin_name, "hook": hook_name},
                )
            if result is not None:
                results.append(result)
        return results

    # --- introspection --------------------------------------------------------------

    def list_plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution, version, hooks and providers."""
        providers: dict[str, list[str]] = {}
        for (kind, name), (_, owner) in self._provider_index().items():
            providers.setdefault(owner, []).append(f"{kind}:{name}")
        infos = []
        for name, plugin in self._pm.list_name_plugin():
            origin = self._origin(name)
            hooks = sorted(caller.name for caller in self._pm.get_hookcallers(plugin) or [])
            infos.append(
                PluginInfo(
                    name=name,
                    distribution=origin.distribution,
                    version=origin.version,
                    hooks=hooks,
                    providers=sorted(providers.get(name, [])),
                )
            )
        return sorted(infos, key=lambda info: info.name)


def _origin_of(entry_point: importlib.metadata.EntryPoint) -> _Origin:
    dist = entry_point.dist
    if dist is None:
        return _Origin()
    return _Origin(dist.metadata["Name"] or dist.name, dist.version)


def _plugin_label(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    name = getattr(plugin, "__name__", None)
    if isinstance(name, str):
        return name
    return type(plugin).__name__


def _reject_unmarked_hooks(plugin: object, label: str, origin: _Origin) -> None:
    """A function named like a hook but not marked with ``@hookimpl`` would be
    silently ignored by pluggy; refuse it instead."""
    marker = f"{PROJECT_NAME}_impl"
    for attr in dir(plugin):
        if not attr.startswith(f"{PROJECT_NAME}_"):
            continue
        value = inspect.getattr_static(plugin, attr, None)
        function = getattr(value, "__func__", value)
        if not inspect.isroutine(function):
            continue
        if getattr(function, marker, None) is None and getattr(value, marker, None) is None:
            raise PluginError(
                f"plugin {label!r} ({origin.describe()}) defines {attr} without "
                "@hookimpl (from mastra_admin.core.hookspecs); it would never be called",
                details={"plugin": label, "distribution": origin.distribution, "hook": attr},
            )


def _check_spec(spec: object, where: str, details: dict[str, Any]) -> ProviderSpec:
    if not isinstance(spec, ProviderSpec):
        raise PluginError(
            f"plugin {where}: mastra_admin_providers returned {spec!r}, not a ProviderSpec",
            details=details,
        )
    if spec.kind not in PROVIDER_KINDS:
        raise PluginError(
            f"plugin {where}: provider {spec.name!r} has unknown kind {spec.kind!r}; "
            f"the kinds are: {', '.join(PROVIDER_KINDS)}",
            details=details,
        )
    if not _PROVIDER_NAME.match(spec.name):
        raise PluginError(
            f"plugin {where}: {spec.kind} provider name {spec.name!r} must be 1-63 "
            "lowercase letters, digits, '.', '_' or '-'",
            details=details,
        )
    model = spec.settings_model
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or model is BaseModel:
        raise PluginError(
            f"plugin {where}: {spec.kind} provider {spec.name!r} needs a pydantic model "
            "of its own as settings_model",
            details=details,
        )
    if not callable(spec.factory):
        raise PluginError(
            f"plugin {where}: {spec.kind} provider {spec.name!r} has no callable factory",
            details=details,
        )
    return spec


def _close_awaitable(result: object) -> None:
    close = getattr(result, "close", None)
    if inspect.iscoroutine(result) and callable(close):
        close()
