"""Settings, hostile input, the configuration Caddy is given, the plugin and its factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from pydantic import ValidationError

from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.models import Route
from mastra_admin.core.plugins import ProviderContext
from mastra_admin.core.router import RouteConfig
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import AdminStorage
from mastra_admin.routers.caddy import CaddyEdgeRouter, CaddyRouterSettings
from mastra_admin.routers.caddy._binary import find_caddy
from mastra_admin.routers.caddy._config import EdgeLayout, build_config
from mastra_admin.routers.caddy._hosts import canonical_host
from mastra_admin.routers.caddy.plugin import create_router, mastra_admin_providers

from .conftest import AppFactory, host_of, make_deployment, named_app, send_through

RouteTo = Callable[..., Awaitable[Route]]


@pytest.mark.parametrize(
    "fields",
    [
        {"admin_address": "0.0.0.0:2019"},
        {"admin_address": "10.1.2.3:2019"},
        {"admin_address": "caddy.internal:2019"},
        {"admin_address": "unix/relative/admin.sock"},
        {"admin_address": "unix//run/caddy.sock|0999"},
        {"listen_host": "edge.example.com"},
        {"base_domain": "bad domain"},
        {"base_domain": "{http.request.host}"},
        {"tls": "files"},
        {"tls": "acme", "acme_ca": "http://insecure.example/directory"},
        {"tls": "acme", "acme_email": "not an address"},
        {"tls": "internal", "http_port": 8443, "https_port": 8443},
        {"stream_close_delay_s": -1},
        {"surprise": 1},
    ],
)
def test_hostile_or_broken_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CaddyRouterSettings.model_validate(fields)


def test_admin_addresses_on_loopback_or_a_socket_are_accepted() -> None:
    def admin(value: str) -> str | None:
        return CaddyRouterSettings(admin_address=value).admin_address

    assert admin("127.0.0.1:2019") == "127.0.0.1:2019"
    assert admin("[::1]:2019") == "[::1]:2019"
    assert admin("localhost:2019") == "localhost:2019"
    assert admin("unix//run/caddy/admin.sock") == "unix//run/caddy/admin.sock"
    assert admin("unix//run/caddy/admin.sock|0660") == "unix//run/caddy/admin.sock|0660"


def test_canonical_host_names_only() -> None:
    assert canonical_host("shop-main.team.localhost") == "shop-main.team.localhost"
    for bad in ["Shop.localhost", "shop.localhost.", "1.2.3.4", "::1", "a..b", "-a.b", "a/b", ""]:
        assert canonical_host(bad) is None
    assert canonical_host("a" * 63 + "." + "b" * 63) is not None
    assert canonical_host(".".join(["a" * 63] * 4)) is None  # 255 characters


async def test_invalid_subdomains_and_targets_are_refused(
    router: CaddyEdgeRouter, storage: AdminStorage
) -> None:
    project_id, deployment_id = await make_deployment(storage, 1)

    def config(subdomain: str = "shop-main.team", host: str = "127.0.0.1") -> RouteConfig:
        return RouteConfig(
            deployment_id=deployment_id,
            project_id=project_id,
            subdomain=subdomain,
            target_host=host,
            target_port=4100,
        )

    for subdomain in ["", "a b", "{http.request.host}", "x/../y", "-x", "a" * 64, "é.team"]:
        with pytest.raises(InvalidInput):
            await router.register_route(config(subdomain=subdomain))
    for host in ["{http.request.header.X-Target}", "10.0.0.1:80", "a b", "evil.com/x", ""]:
        with pytest.raises(InvalidInput):
            await router.register_route(config(host=host))
    assert await router.list_routes() == []


async def test_a_deployment_moving_to_another_subdomain_leaves_the_old_one(
    router: CaddyEdgeRouter, serve_app: AppFactory, storage: AdminStorage
) -> None:
    project_id, deployment_id = await make_deployment(storage, 1)
    upstream = await serve_app(named_app("a"))

    async def register(subdomain: str) -> Route:
        return await router.register_route(
            RouteConfig(
                deployment_id=deployment_id,
                project_id=project_id,
                subdomain=subdomain,
                target_host=upstream[0],
                target_port=upstream[1],
            )
        )

    old = await register("old-name.team")
    new = await register("new-name.team")

    assert (await send_through(router, host_of(router, new))).text == "a"
    assert (await send_through(router, host_of(router, old))).status == 404
    assert [r.id for r in await router.list_routes()] == [new.id]


async def test_unknown_hosts_get_an_html_page_in_a_browser(
    router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    await route_to(router, *await serve_app(named_app("a")))
    host = f"nothing.{router.base_domain}"

    page = await send_through(
        router, host, headers={"Accept": "text/html,*/*", "Accept-Encoding": "identity"}
    )

    assert page.status == 404
    assert page.headers["content-type"].startswith("text/html")
    assert f"No deployment is routed at {host}." in page.text
    assert "body { font" in page.text  # CSS braces are not taken for placeholders
    assert "shop-main" not in page.text


async def test_an_upstream_that_is_down_gets_an_error_naming_only_the_host(
    router: CaddyEdgeRouter, route_to: RouteTo
) -> None:
    from .conftest import free_port

    route = await route_to(router, "127.0.0.1", free_port())

    answer = await send_through(router, host_of(router, route))

    assert answer.status == 502
    assert answer.json()["error"]["code"] == "upstream_error"
    assert host_of(router, route) in answer.text
    assert "127.0.0.1" not in answer.text


def test_the_configuration_is_deterministic_and_names_itself(tmp_path: Path) -> None:
    settings = CaddyRouterSettings(tls="internal")
    layout = EdgeLayout(
        settings=settings,
        base_domain="mastra.test",
        admin_listen="unix//run/admin.sock|0600",
        admin_origins=("localhost",),
        http_port=80,
        https_port=443,
        storage_root=tmp_path,
        permission_url="http://127.0.0.1:1234/token/ask",
    )
    route = Route(
        deployment_id="d",
        project_id="p",
        subdomain="shop-main.team",
        target_host="127.0.0.1",
        target_port=4101,
        public_url="https://shop-main.team.mastra.test",
    )
    config, marker = build_config([route], {"d": ["shop.example.com"]}, layout)
    again, same = build_config([route], {"d": ["shop.example.com"]}, layout)
    _, other = build_config([route], {}, layout)

    assert (config, marker) == (again, same)
    assert other != marker
    admin = config["admin"]
    assert admin["enforce_origin"] is True
    assert "remote" not in admin
    assert admin["config"] == {"persist": False}
    edge = config["apps"]["http"]["servers"]["mastra_edge"]
    assert edge["@id"] == marker
    assert edge["protocols"] == ["h1", "h2"]
    site = next(r for r in edge["routes"] if r.get("match"))
    assert site["match"] == [{"host": ["shop-main.team.mastra.test", "shop.example.com"]}]
    proxy = site["handle"][0]
    assert proxy["handler"] == "reverse_proxy"
    assert proxy["transport"]["keep_alive"] == {"idle_timeout": "4000ms"}
    assert proxy["stream_close_delay"] == "300000ms"
    encode = edge["routes"][0]["handle"][0]
    assert encode["handler"] == "encode"
    assert not any(
        "event-stream" in t or t == "text/*" for t in encode["match"]["headers"]["Content-Type"]
    )
    policy = config["apps"]["tls"]["automation"]["policies"][0]
    assert policy["on_demand"] is True
    assert config["apps"]["tls"]["automation"]["on_demand"]["permission"]["endpoint"].endswith(
        "/ask"
    )
    redirect = config["apps"]["http"]["servers"]["mastra_redirect"]
    location = redirect["routes"][0]["handle"][0]["headers"]["Location"][0]
    assert location == "https://{http.request.host}{http.request.uri}"


def test_the_caddy_binary_comes_with_the_package() -> None:
    caddy = find_caddy()
    assert caddy.is_file()
    with pytest.raises(Unavailable):
        find_caddy(Path("/nonexistent/caddy"))


# --- the plugin ------------------------------------------------------------------------


def test_the_entry_point_registers_the_caddy_router() -> None:
    (entry,) = [e for e in entry_points(group="mastra_admin") if e.name == "router-caddy"]
    assert entry.value == "mastra_admin.routers.caddy.plugin"
    (spec,) = mastra_admin_providers()
    assert (spec.kind, spec.name) == ("router", "caddy")
    assert spec.settings_model is CaddyRouterSettings
    assert CaddyEdgeRouter.serves_custom_domains


async def test_the_factory_takes_storage_domain_and_data_dir_from_the_context(
    storage: AdminStorage, tmp_path: Path
) -> None:
    context = ProviderContext(
        settings=MastraAdminSettings(base_domain="mastra.test", data_dir=tmp_path),
        data_dir=tmp_path,
        storage=storage,
    )
    router = create_router(CaddyRouterSettings(), context)
    assert router.base_domain == "mastra.test"
    assert router.state_dir == tmp_path / "router" / "caddy"
    assert router.managed

    kept = create_router(CaddyRouterSettings(base_domain="edge.example.com"), context)
    assert kept.base_domain == "edge.example.com"

    with pytest.raises(Unavailable):
        create_router(
            CaddyRouterSettings(), ProviderContext(settings=context.settings, data_dir=tmp_path)
        )


async def test_the_composition_root_builds_and_starts_the_caddy_router(
    storage: AdminStorage, tmp_path: Path
) -> None:
    from mastra_admin.core.compose import build_admin
    from mastra_admin.core.settings import load_settings

    from .conftest import free_port

    port = free_port()
    settings = load_settings(
        data_dir=tmp_path,
        base_domain="mastra.test",
        router={"provider": "caddy", "http_port": port, "health_interval_s": 0},
    )
    admin = await build_admin(
        settings,
        overrides={"storage": storage, "runner": None, "source": None, "observability": None},
    )
    try:
        await admin.init()
        router = admin.router
        assert isinstance(router, CaddyEdgeRouter)
        assert router.serving
        assert router.caddy_pid is not None
        assert (
            router.public_url("shop-main.search") == f"http://shop-main.search.mastra.test:{port}"
        )
    finally:
        await admin.close()
    assert not router.serving
