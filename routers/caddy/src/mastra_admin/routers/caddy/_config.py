"""Caddy's whole JSON configuration, made from the routes and domains of the storage.

One pure function, ``build_config``: the same routes give byte-for-byte the same
configuration, whose digest names it (the ``@id`` marker the periodic check looks
for), so that an unchanged state is never re-loaded and a lost one always is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mastra_admin.core.models import Route, RouteStatus
from mastra_admin.routers.caddy._access_log import ROLL_KEEP, ROLL_SIZE_MB
from mastra_admin.routers.caddy._pages import error_handlers, status_error_handlers
from mastra_admin.routers.caddy._settings import CaddyRouterSettings

__all__ = ["ACCESS_LOGGER", "EDGE_SERVER", "MARKER_PREFIX", "EdgeLayout", "build_config"]

EDGE_SERVER = "mastra_edge"
REDIRECT_SERVER = "mastra_redirect"
ACCESS_LOGGER = "mastra_edge_access"
"""Caddy's access logger of the edge server is ``http.log.access.{ACCESS_LOGGER}``."""
MARKER_PREFIX = "mastra-admin-edge-"

# Caddy's own default list of compressible types, with ``text/*`` narrowed so that
# ``text/event-stream`` is never compressed (a compressor holds bytes back until it
# has enough; an SSE client must get each event at once).
_COMPRESSIBLE = [
    "application/atom+xml*",
    "application/javascript*",
    "application/json*",
    "application/ld+json*",
    "application/manifest+json*",
    "application/rss+xml*",
    "application/vnd.api+json*",
    "application/wasm*",
    "application/x-javascript*",
    "application/xhtml+xml*",
    "application/xml*",
    "image/svg+xml*",
    "image/x-icon*",
    "text/css*",
    "text/csv*",
    "text/html*",
    "text/javascript*",
    "text/markdown*",
    "text/plain*",
    "text/xml*",
]


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class EdgeLayout:
    """Everything besides the routes that the configuration names: addresses, ports
    and files, resolved by the router at start."""

    settings: CaddyRouterSettings
    base_domain: str
    admin_listen: str
    admin_origins: tuple[str, ...]
    http_port: int
    https_port: int
    storage_root: Path
    permission_url: str | None = None
    access_log_file: Path | None = None
    caddy_log_file: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.settings.tls != "off"

    @property
    def public_https_port(self) -> int:
        return self.settings.public_port or self.https_port


def _proxy(route: Route, settings: CaddyRouterSettings) -> dict[str, Any]:
    handler: dict[str, Any] = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": _join(route.target_host, route.target_port)}],
        # No flush_interval: Caddy already passes each chunk on at once for
        # text/event-stream, bodies of unknown length (streamed agent answers) and
        # bidirectional streams; forcing it for every answer cost ~8% of throughput.
        "transport": {
            "protocol": "http",
            "dial_timeout": _duration(settings.connect_timeout_s),
            "response_header_timeout": _duration(settings.read_timeout_s),
            "keep_alive": {"idle_timeout": _duration(settings.upstream_keepalive_s)},
        },
    }
    if settings.stream_close_delay_s > 0:
        handler["stream_close_delay"] = _duration(settings.stream_close_delay_s)
    return handler


def _site(route: Route, hosts: Sequence[str], settings: CaddyRouterSettings) -> dict[str, Any]:
    if route.status is RouteStatus.STOPPED:
        handle = error_handlers(
            503, "deployment_stopped", "The deployment at {http.request.host} is stopped."
        )
    else:
        handle = [_proxy(route, settings)]
    return {"match": [{"host": list(hosts)}], "handle": handle, "terminal": True}


def _routes(
    routes: Sequence[Route], domains: Mapping[str, Sequence[str]], layout: EdgeLayout
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if layout.settings.compression:
        out.append(
            {
                "handle": [
                    {
                        "handler": "encode",
                        "encodings": {"zstd": {}, "gzip": {}},
                        "prefer": ["zstd", "gzip"],
                        "match": {"headers": {"Content-Type": _COMPRESSIBLE}},
                    }
                ]
            }
        )
    own = {f"{r.subdomain}.{layout.base_domain}" for r in routes}
    for route in routes:
        hosts = [f"{route.subdomain}.{layout.base_domain}"]
        hosts += sorted(
            h for h in domains.get(route.deployment_id, ()) if h not in own and h not in hosts
        )
        out.append(_site(route, hosts, layout.settings))
    out.append(
        {
            "handle": error_handlers(
                404, "route_not_found", "No deployment is routed at {http.request.host}."
            ),
            "terminal": True,
        }
    )
    return out


def _tls_app(layout: EdgeLayout) -> dict[str, Any]:
    s = layout.settings
    if s.tls == "files":
        assert s.tls_cert_file is not None
        assert s.tls_key_file is not None
        return {
            "certificates": {
                "load_files": [
                    {
                        "certificate": str(s.tls_cert_file),
                        "key": str(s.tls_key_file),
                        "tags": ["mastra-admin"],
                    }
                ]
            }
        }
    if s.tls == "internal":
        issuer: dict[str, Any] = {"module": "internal"}
    else:
        issuer = {
            "module": "acme",
            "ca": s.acme_ca,
            "challenges": {
                # Caddy's own servers answer the challenges on the ports they listen on.
                "http": {"alternate_port": layout.http_port},
                "tls-alpn": {"alternate_port": layout.https_port},
            },
        }
        if s.acme_email:
            issuer["email"] = s.acme_email
        if s.acme_ca_root is not None:
            issuer["trusted_roots_pem_files"] = [str(s.acme_ca_root)]
    app: dict[str, Any] = {
        "automation": {
            # Certificates only on demand, and only for names the router's permission
            # endpoint approves: a route's host or a verified custom domain. Nothing is
            # issued for a name someone merely points at the edge.
            "policies": [{"issuers": [issuer], "on_demand": True}],
        }
    }
    if layout.permission_url is not None:
        app["automation"]["on_demand"] = {
            "permission": {"module": "http", "endpoint": layout.permission_url}
        }
    return app


def _logging(layout: EdgeLayout) -> dict[str, Any]:
    default: dict[str, Any] = {"exclude": [f"http.log.access.{ACCESS_LOGGER}"]}
    if layout.caddy_log_file is not None:
        default["writer"] = {
            "output": "file",
            "filename": str(layout.caddy_log_file),
            "roll_size_mb": 10,
            "roll_keep": 3,
        }
    logs: dict[str, Any] = {"default": default}
    if layout.access_log_file is not None:
        logs[ACCESS_LOGGER] = {
            "writer": {
                "output": "file",
                "filename": str(layout.access_log_file),
                "mode": "0600",
                "roll_size_mb": ROLL_SIZE_MB,
                "roll_keep": ROLL_KEEP,
                "roll_compression": "none",
            },
            # Plain JSON: Caddy's filter encoder (to drop the query string and headers
            # before the line is written) cost ~10% of throughput. The router keeps
            # only what it records (no query string, no header, no address).
            "encoder": {"format": "json"},
            "include": [f"http.log.access.{ACCESS_LOGGER}"],
        }
    return {"logs": logs}


def _servers(
    routes: Sequence[Route], domains: Mapping[str, Sequence[str]], layout: EdgeLayout
) -> dict[str, Any]:
    s = layout.settings
    host = s.listen_host
    edge: dict[str, Any] = {
        "listen": [_join(host, layout.https_port if layout.tls else layout.http_port)],
        # Everything automatic HTTPS would do is spelt out here instead (redirects,
        # certificate policies), so that it does exactly that and nothing more.
        "automatic_https": {"disable": True},
        "protocols": ["h1", "h2"] if layout.tls else ["h1"],
        "read_header_timeout": _duration(s.header_timeout_s),
        "idle_timeout": _duration(s.keepalive_timeout_s),
        "routes": _routes(routes, domains, layout),
        "errors": {"routes": [{"handle": status_error_handlers(), "terminal": True}]},
    }
    if layout.tls:
        edge["tls_connection_policies"] = [{}]
    if layout.access_log_file is not None:
        edge["logs"] = {"default_logger_name": ACCESS_LOGGER}
    servers: dict[str, Any] = {EDGE_SERVER: edge}
    if layout.tls:
        port = layout.public_https_port
        suffix = "" if port == 443 else f":{port}"
        servers[REDIRECT_SERVER] = {
            "listen": [_join(host, layout.http_port)],
            "automatic_https": {"disable": True},
            "protocols": ["h1"],
            "read_header_timeout": _duration(s.header_timeout_s),
            "idle_timeout": _duration(s.keepalive_timeout_s),
            # ACME HTTP challenges are answered by Caddy before any route.
            "routes": [
                {
                    "handle": [
                        {
                            "handler": "static_response",
                            "status_code": 308,
                            "headers": {
                                "Location": [
                                    f"https://{{http.request.host}}{suffix}{{http.request.uri}}"
                                ],
                                "Connection": ["close"],
                            },
                        }
                    ],
                    "terminal": True,
                }
            ],
        }
    return servers


def build_config(
    routes: Sequence[Route], domains: Mapping[str, Sequence[str]], layout: EdgeLayout
) -> tuple[dict[str, Any], str]:
    """Caddy's configuration for these routes and custom domains (deployment id →
    verified host names), and its marker (the ``@id`` of the edge server, made of the
    configuration's digest)."""
    ordered = sorted(routes, key=lambda r: (r.subdomain, r.id))
    apps: dict[str, Any] = {
        "http": {
            "http_port": layout.http_port,
            "https_port": layout.https_port,
            "servers": _servers(ordered, domains, layout),
        }
    }
    if layout.tls:
        apps["tls"] = _tls_app(layout)
        if layout.settings.tls == "internal":
            apps["pki"] = {
                "certificate_authorities": {
                    "local": {"name": "MastraAdmin edge CA", "install_trust": False}
                }
            }
    config: dict[str, Any] = {
        "admin": {
            "listen": layout.admin_listen,
            # Every admin request must carry an allowed Origin: a web page (DNS
            # rebinding, a deployed app's browser code) can never reach it. No remote
            # admin; nothing is persisted to Caddy's autosave file.
            "enforce_origin": True,
            "origins": list(layout.admin_origins),
            "config": {"persist": False},
        },
        "logging": _logging(layout),
        "storage": {"module": "file_system", "root": str(layout.storage_root)},
        "apps": apps,
        **layout.extra,
    }
    digest = hashlib.sha256(
        json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:24]
    marker = MARKER_PREFIX + digest
    config["apps"]["http"]["servers"][EDGE_SERVER]["@id"] = marker
    return config, marker
