"""The plugin manager: loading, checking and calling plugins, one manager per application."""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from mastra_admin.core import plugins
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import (
    BUILTIN_PLUGIN,
    ENTRY_POINT_ALIASES,
    ENTRY_POINT_GROUP,
    PluginError,
    PluginManager,
    ProviderSpec,
)


class _Empty(BaseModel):
    pass


def _spec(kind: Any, name: str) -> ProviderSpec:
    return ProviderSpec(kind=kind, name=name, settings_model=_Empty, factory=lambda s, c: None)


class ProvidersPlugin:
    """A plugin given in code that offers fixed provider specs."""

    def __init__(self, *specs: ProviderSpec) -> None:
        self.specs = list(specs)

    @hookimpl
    def mastra_admin_providers(self) -> list[ProviderSpec]:
        return self.specs


RUNNER_PLUGIN = """
from pydantic import BaseModel
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderSpec

class Settings(BaseModel):
    pass

@hookimpl
def mastra_admin_providers():
    return [ProviderSpec(kind="runner", name="{name}", settings_model=Settings,
                         factory=lambda settings, context: None)]
"""


def _runner_plugin(name: str) -> str:
    return RUNNER_PLUGIN.replace("{name}", name)


# --- the built-in plugin -------------------------------------------------------------


def test_builtin_plugin_offers_the_core_providers() -> None:
    manager = PluginManager()

    assert set(manager.provider_specs()) == {
        ("encryption", "aes-gcm"),
        ("file_storage", "local"),
        ("email", "console"),
        ("email", "smtp"),
        ("billing", "none"),
        ("auth", "none"),
    }
    [info] = manager.list_plugins()
    assert info.name == BUILTIN_PLUGIN
    assert info.distribution == "mastra-admin"
    assert info.hooks == ["mastra_admin_providers"]
    assert "file_storage:local" in info.providers


def test_each_manager_is_its_own() -> None:
    first, second = PluginManager(), PluginManager()
    first.register(ProvidersPlugin(_spec("runner", "only-here")), "mine")

    assert ("runner", "only-here") in first.provider_specs()
    assert ("runner", "only-here") not in second.provider_specs()


def test_denying_builtin_takes_the_builtin_providers_away() -> None:
    manager = PluginManager()

    manager.load_entrypoints(allow=[], deny=[BUILTIN_PLUGIN])

    assert manager.provider_specs() == {}
    assert not manager.has_plugin(BUILTIN_PLUGIN)


# --- plugins given in code -------------------------------------------------------------


def test_a_plugin_registered_in_code_offers_its_providers() -> None:
    manager = PluginManager(builtins=False)

    name = manager.register(ProvidersPlugin(_spec("runner", "tiny")), "tiny-plugin")

    assert name == "tiny-plugin"
    assert manager.get_provider("runner", "tiny").name == "tiny"
    assert manager.provider_plugin("runner", "tiny") == "tiny-plugin"


def test_plugins_given_in_code_without_a_name_are_named_after_their_class() -> None:
    manager = PluginManager()

    first = manager.register(ProvidersPlugin(_spec("runner", "a")))
    second = manager.register(ProvidersPlugin(_spec("runner", "b")))

    assert (first, second) == ("ProvidersPlugin", "ProvidersPlugin#2")
    assert manager.provider_plugin("runner", "b") == "ProvidersPlugin#2"


def test_a_misspelt_hook_fails_naming_the_plugin_and_the_likely_hook() -> None:
    class Misspelt:
        @hookimpl
        def mastra_admin_provider(self) -> list[ProviderSpec]:
            return []

    manager = PluginManager()

    with pytest.raises(PluginError) as caught:
        manager.register(Misspelt(), "typo-plugin")

    message = caught.value.message
    assert "'typo-plugin'" in message
    assert "'mastra_admin_provider'" in message
    assert "did you mean 'mastra_admin_providers'" in message
    assert caught.value.code == "plugin_error"
    assert caught.value.details["unknown_hooks"] == ["mastra_admin_provider"]
    assert not manager.has_plugin("typo-plugin")  # the manager is as it was


def test_a_hook_function_without_hookimpl_is_refused() -> None:
    class Unmarked:
        def mastra_admin_providers(self) -> list[ProviderSpec]:
            return [_spec("runner", "never")]

    with pytest.raises(PluginError, match=r"'unmarked'.*mastra_admin_providers without @hookimpl"):
        PluginManager().register(Unmarked(), "unmarked")


def test_a_hook_taking_arguments_the_spec_lacks_is_refused() -> None:
    class ExtraArgument:
        @hookimpl
        def mastra_admin_routes(self, admin: Any, request: Any) -> list[Any]:
            return []

    with pytest.raises(PluginError, match=r"'extra'.*request"):
        PluginManager().register(ExtraArgument(), "extra")


def test_a_provider_offered_twice_fails_naming_both_plugins() -> None:
    manager = PluginManager()
    manager.register(ProvidersPlugin(_spec("runner", "tiny")), "first", distribution="dist-a")

    with pytest.raises(PluginError) as caught:
        manager.register(ProvidersPlugin(_spec("runner", "tiny")), "second", distribution="dist-b")

    message = caught.value.message
    assert "runner provider 'tiny' is offered by two plugins" in message
    assert "'first' (distribution dist-a)" in message
    assert "'second' (distribution dist-b)" in message
    assert manager.has_plugin("first")
    assert not manager.has_plugin("second")


def test_a_builtin_provider_cannot_be_shadowed_silently() -> None:
    with pytest.raises(PluginError, match=r"'builtin'.*'shadow'"):
        PluginManager().register(ProvidersPlugin(_spec("file_storage", "local")), "shadow")


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("not a spec", "not a ProviderSpec"),
        (_spec("queue", "x"), "unknown kind 'queue'"),
        (_spec("runner", "Has Spaces"), "must be 1-63 lowercase"),
        (
            ProviderSpec(kind="runner", name="x", settings_model=dict, factory=print),  # type: ignore[arg-type]
            "needs a pydantic model",
        ),
    ],
)
def test_a_malformed_provider_spec_is_refused(spec: Any, complaint: str) -> None:
    with pytest.raises(PluginError, match=complaint):
        PluginManager().register(ProvidersPlugin(spec), "malformed")


def test_a_providers_hook_that_raises_fails_naming_the_plugin() -> None:
    class Raising:
        @hookimpl
        def mastra_admin_providers(self) -> list[ProviderSpec]:
            raise RuntimeError("no config")

    with pytest.raises(PluginError, match=r"'raising'.*RuntimeError: no config"):
        PluginManager().register(Raising(), "raising")


def test_get_provider_lists_the_names_that_exist() -> None:
    manager = PluginManager()
    manager.register(ProvidersPlugin(_spec("runner", "local"), _spec("runner", "k8s")), "r")

    with pytest.raises(PluginError) as caught:
        manager.get_provider("runner", "docker")

    assert caught.value.message.startswith(
        "no runner provider named 'docker' is installed (available: 'k8s', 'local')"
    )
    assert caught.value.details["available"] == ["k8s", "local"]
    # One of this project's adapters: the message names what to install.
    with pytest.raises(
        PluginError, match=r"available: none\); install it with: pip install mastra-admin-pg$"
    ):
        manager.get_provider("storage", "pg")


# --- entry points ------------------------------------------------------------------------


def test_allow_loads_only_the_listed_plugins_and_deny_wins(plugin_dists: Any) -> None:
    plugin_dists("acme-runners", {"acme-a": _runner_plugin("a"), "acme-b": _runner_plugin("b")})
    plugin_dists("other-runners", {"acme-c": _runner_plugin("c")})
    manager = PluginManager()

    loaded = manager.load_entrypoints(allow=["acme-a", "acme-b"], deny=["acme-b"])

    assert loaded == ["acme-a"]
    assert manager.provider_names("runner") == ["a"]
    info = {i.name: i for i in manager.list_plugins()}["acme-a"]
    assert (info.distribution, info.version) == ("acme-runners", "1.2.3")
    assert info.providers == ["runner:a"]


def test_the_0_1_entry_point_names_are_aliases_of_the_kind_name_ones() -> None:
    assert ENTRY_POINT_ALIASES == {"pg": "storage-pg", "clickhouse": "observability-clickhouse"}


def test_allow_and_deny_accept_an_old_entry_point_name(
    plugin_dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As "pg" names "storage-pg": settings written before a rename keep working,
    # against a distribution published under either name.
    monkeypatch.setattr(plugins, "ENTRY_POINT_ALIASES", {"acme-old": "runner-acme"})
    plugin_dists("acme-new", {"runner-acme": _runner_plugin("acme")})
    plugin_dists("acme-before", {"acme-old": _runner_plugin("before")})

    allowed_by_old = PluginManager()
    assert allowed_by_old.load_entrypoints(allow=["acme-old"]) == ["acme-old", "runner-acme"]
    allowed_by_new = PluginManager()
    assert allowed_by_new.load_entrypoints(allow=["runner-acme"]) == ["acme-old", "runner-acme"]
    denied = PluginManager()
    assert denied.load_entrypoints(allow=["runner-acme"], deny=["acme-old"]) == []


def test_without_an_allow_list_every_installed_plugin_loads(plugin_dists: Any) -> None:
    mine = plugin_dists(
        "acme-runners", {"acme-x": _runner_plugin("x"), "acme-y": _runner_plugin("y")}
    )
    others = [
        ep.name
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.name not in mine
    ]
    manager = PluginManager()

    loaded = manager.load_entrypoints(deny=others)

    assert loaded == ["acme-x", "acme-y"]
    assert manager.provider_names("runner") == ["x", "y"]
    assert manager.load_entrypoints(deny=others) == []  # a second call changes nothing


def test_a_plugin_that_fails_to_import_fails_start_up_naming_it(plugin_dists: Any) -> None:
    plugin_dists("acme-broken", {"broken": "import not_a_module_anywhere\n"})

    with pytest.raises(PluginError) as caught:
        PluginManager().load_entrypoints(allow=["broken"])

    message = caught.value.message
    assert message.startswith("plugin 'broken' (distribution acme-broken 1.2.3) failed to import")
    assert "ModuleNotFoundError" in message
    assert caught.value.details == {"plugin": "broken", "distribution": "acme-broken"}


def test_a_misspelt_hook_in_an_installed_plugin_names_its_distribution(plugin_dists: Any) -> None:
    source = """
    from mastra_admin.core.hookspecs import hookimpl

    @hookimpl
    def mastra_admin_build_finishd(build):
        pass
    """
    plugin_dists("acme-notify", {"notify": source})

    with pytest.raises(PluginError) as caught:
        PluginManager().load_entrypoints(allow=["notify"])

    message = caught.value.message
    assert "plugin 'notify' (distribution acme-notify 1.2.3)" in message
    assert "did you mean 'mastra_admin_build_finished'" in message


def test_installed_plugins_offering_the_same_provider_fail_naming_both(
    plugin_dists: Any,
) -> None:
    plugin_dists("acme-one", {"one": _runner_plugin("tiny")})
    plugin_dists("acme-two", {"two": _runner_plugin("tiny")})

    with pytest.raises(PluginError) as caught:
        PluginManager().load_entrypoints(allow=["one", "two"])

    message = caught.value.message
    assert "runner provider 'tiny' is offered by two plugins" in message
    assert "'one' (distribution acme-one 1.2.3)" in message
    assert "'two' (distribution acme-two 1.2.3)" in message
    assert caught.value.details["distributions"] == ["acme-one", "acme-two"]


def test_two_distributions_publishing_one_plugin_name_fail(plugin_dists: Any) -> None:
    plugin_dists("acme-one", {"same": _runner_plugin("one")})
    plugin_dists("acme-two", {"same": _runner_plugin("two")})

    with pytest.raises(PluginError, match="two distributions publish a plugin named 'same'"):
        PluginManager().load_entrypoints(allow=["same"])


# --- calling hooks ----------------------------------------------------------------------


async def test_call_async_awaits_coroutines_and_keeps_plain_results() -> None:
    events: list[str] = []

    class AsyncPlugin:
        @hookimpl
        async def mastra_admin_routes(self, admin: Any) -> list[str]:
            await asyncio.sleep(0)
            events.append("async done")
            return ["/async"]

    class SyncPlugin:
        @hookimpl
        def mastra_admin_routes(self) -> list[str]:  # a subset of the spec's arguments
            return ["/sync"]

    class SilentPlugin:
        @hookimpl
        def mastra_admin_routes(self, admin: Any) -> None:
            return None

    manager = PluginManager()
    manager.register(AsyncPlugin(), "async")
    manager.register(SyncPlugin(), "sync")
    manager.register(SilentPlugin(), "silent")

    results = await manager.call_async("mastra_admin_routes", admin=object())

    assert events == ["async done"]
    assert results == [["/sync"], ["/async"]]  # pluggy's order: last registered first


async def test_call_async_logs_a_failing_event_hook_and_runs_the_others() -> None:
    ran: list[str] = []

    class Failing:
        @hookimpl
        async def mastra_admin_startup(self, admin: Any) -> None:
            raise ValueError("smtp down")

    class Working:
        @hookimpl
        async def mastra_admin_startup(self, admin: Any) -> None:
            ran.append("working")

    manager = PluginManager()
    manager.register(Working(), "working")
    manager.register(Failing(), "failing")

    with capture_logs() as logs:
        results = await manager.call_async("mastra_admin_startup", admin=object())

    assert results == []
    assert ran == ["working"]
    [failure] = [entry for entry in logs if entry["event"] == "plugin.hook_failed"]
    assert failure["plugin"] == "failing"
    assert failure["hook"] == "mastra_admin_startup"
    assert failure["error"] == "ValueError: smtp down"
    assert failure["log_level"] == "error"


async def test_call_async_raises_for_a_failing_hook_that_is_not_an_event() -> None:
    class Failing:
        @hookimpl
        async def mastra_admin_routes(self, admin: Any) -> list[Any]:
            raise KeyError("route")

    manager = PluginManager()
    manager.register(Failing(), "bad-routes", distribution="acme-routes", version="2.0")

    with pytest.raises(PluginError) as caught:
        await manager.call_async("mastra_admin_routes", admin=object())

    assert caught.value.message == (
        "plugin 'bad-routes' (distribution acme-routes 2.0) failed in mastra_admin_routes: "
        "KeyError: 'route'"
    )


def test_call_refuses_an_awaitable_from_a_synchronous_call() -> None:
    class AsyncRoutes:
        @hookimpl
        async def mastra_admin_routes(self, admin: Any) -> list[Any]:
            return []

    manager = PluginManager()
    manager.register(AsyncRoutes(), "async-routes")

    with pytest.raises(PluginError, match=r"'async-routes'.*returned an awaitable"):
        manager.call("mastra_admin_routes", admin=object())


async def test_calling_an_unknown_hook_or_with_wrong_arguments_fails() -> None:
    manager = PluginManager()

    with pytest.raises(PluginError, match="'mastra_admin_nope' is not a MastraAdmin hook"):
        await manager.call_async("mastra_admin_nope")
    with pytest.raises(TypeError, match="missing \\['admin'\\]"):
        manager.call("mastra_admin_routes")
    with pytest.raises(TypeError, match="unexpected \\['extra'\\]"):
        await manager.call_async("mastra_admin_startup", admin=object(), extra=1)


def test_list_plugins_reports_what_each_plugin_implements() -> None:
    class Notifier:
        @hookimpl
        def mastra_admin_build_finished(self, build: Any) -> None:
            pass

        @hookimpl
        def mastra_admin_startup(self, admin: Any) -> None:
            pass

    manager = PluginManager()
    manager.register(Notifier(), "notifier", distribution="acme-notify", version="0.3.0")

    infos = {info.name: info for info in manager.list_plugins()}

    assert set(infos) == {"builtin", "notifier"}
    notifier = infos["notifier"]
    assert notifier.model_dump() == {
        "name": "notifier",
        "distribution": "acme-notify",
        "version": "0.3.0",
        "hooks": ["mastra_admin_build_finished", "mastra_admin_startup"],
        "providers": [],
    }
