"""Settings of a MastraAdmin installation (pydantic-settings).

Sources, strongest first: explicit overrides, ``MASTRA_ADMIN_*`` environment
variables (nested with ``__``), the specification's variable names (``ADMIN_PORT`` ...),
the TOML file named by ``MASTRA_ADMIN_CONFIG`` (default ``mastra-admin.toml`` when
present), defaults. ``load_settings`` reads all of them; constructing
``MastraAdminSettings`` directly reads arguments and the environment only.
Each provider kind has a section: ``provider`` picks the implementation by name and
every other key belongs to that provider's own settings model.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.log_config import LogSettings

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_FILE",
    "BuildSettings",
    "DomainSettings",
    "MastraAdminSettings",
    "ProviderSection",
    "RecoverySettings",
    "describe_validation_error",
    "load_settings",
]

CONFIG_ENV_VAR = "MASTRA_ADMIN_CONFIG"
"""Names the TOML settings file."""

DEFAULT_CONFIG_FILE = Path("mastra-admin.toml")
"""Read from the working directory when present and no other file is named."""

# The TOML layer of the ``load_settings`` call in progress (sources are built by a
# classmethod, so this is how the file reaches them).
_TOML_LAYER: ContextVar[dict[str, Any] | None] = ContextVar("mastra_admin_toml", default=None)


class ProviderSection(BaseModel):
    """``provider`` names the implementation; other keys are passed to its settings."""

    model_config = ConfigDict(extra="allow")

    provider: str

    def provider_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _section(name: str) -> Any:
    return Field(default_factory=lambda: ProviderSection(provider=name))


class BuildSettings(BaseModel):
    """How builds are run by this process's workers."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(default=2, ge=0, le=64, description="Build workers in this process.")
    max_active_builds: int | None = Field(
        default=None, ge=1, description="Most builds active at once across all workers."
    )
    lease_s: float = Field(default=30.0, gt=1, description="A worker's hold on a build.")
    poll_interval_s: float = Field(default=1.0, gt=0, description="Queue poll interval.")
    keep_successful: int = Field(default=3, ge=1, description="Build outputs kept per deployment.")
    stop_grace_s: float = Field(default=10.0, ge=0, description="SIGTERM to SIGKILL.")
    health_interval_s: float = Field(default=15.0, gt=0, description="Server health refresh.")


class RecoverySettings(BaseModel):
    """What happens when a deployment's server crashes: it is restarted after a
    backoff (doubling from ``backoff_initial_s`` up to ``backoff_max_s``), unless it
    has crashed ``crash_loop_restarts`` times within ``crash_loop_window_s``: then it
    is a crash loop, restarting stops and the deployment shows ``crash_loop`` until
    the next deploy or rollback. A server that fails ``unhealthy_checks`` health rounds
    in a row (``builds.health_interval_s`` apart) counts as crashed."""

    model_config = ConfigDict(extra="forbid")

    restart: bool = Field(default=True, description="Restart crashed servers.")
    backoff_initial_s: float = Field(
        default=0.5, ge=0, le=3600, description="Wait before the first restart."
    )
    backoff_max_s: float = Field(
        default=60.0, ge=0, le=3600, description="Longest wait between restarts."
    )
    crash_loop_restarts: int = Field(
        default=5, ge=1, le=1000, description="Crashes within the window that make a loop."
    )
    crash_loop_window_s: float = Field(
        default=600.0, gt=0, le=86400, description="The crash loop's window."
    )
    unhealthy_checks: int = Field(
        default=3, ge=1, le=1000, description="Failed health rounds in a row that count as a crash."
    )


def _nameserver(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; the port defaults to 53) as (address, port)."""
    text = value.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{value!r} is not host:port")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{value!r}: a nameserver is an IP address with an optional port "
            "(127.0.0.1:5353, [::1]:53), not a host name"
        ) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port must be 1-65535")
    return str(address), int(port)


class DomainSettings(BaseModel):
    """Custom domains: how their ownership is checked in DNS and what records they need.

    The records a domain needs point at the edge that serves it (``edge_cname``, or
    ``edge_addresses`` for a zone apex, where DNS allows no CNAME); without either the
    API shows only the TXT record that proves ownership.
    """

    model_config = ConfigDict(extra="forbid")

    resolver: list[str] = Field(
        default_factory=list,
        description="Nameservers that verification asks, as host:port (IP addresses; "
        "port 53 when left out, [v6]:port for IPv6). Empty: the system's resolver "
        "(/etc/resolv.conf).",
    )
    resolver_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long one verification waits for DNS before it answers 503 "
        "(the domain's status is left as it was).",
    )
    edge_cname: str | None = Field(
        default=None,
        description="Host name a custom domain's CNAME record points at (the edge "
        "router's public name); none: no CNAME is suggested.",
    )
    edge_addresses: list[str] = Field(
        default_factory=list,
        description="IPv4/IPv6 addresses of the edge, suggested as A/AAAA records (for a "
        "zone apex such as example.com, which cannot have a CNAME).",
    )
    max_per_deployment: int = Field(
        default=20, ge=1, le=100, description="Most custom domains one deployment may have."
    )
    verify_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often the server and worker processes check the DNS of pending "
        "domains again (seconds); 0: only when someone presses Verify.",
    )
    blocked: list[str] = Field(
        default_factory=list,
        description="Domains that no team may claim, nor any host name under them (besides "
        "base_domain, the admin's own host and edge_cname, which are always refused).",
    )

    @field_validator("resolver")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        for item in value:
            _nameserver(item)
        return value

    @field_validator("edge_addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        try:
            return [str(ipaddress.ip_address(item.strip())) for item in value]
        except ValueError as exc:
            raise ValueError(f"edge_addresses holds IP addresses only: {exc}") from None

    @field_validator("edge_cname")
    @classmethod
    def _edge_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().rstrip(".").lower()
        return name or None

    def nameservers(self) -> list[tuple[str, int]]:
        """``resolver`` as (address, port) pairs."""
        return [_nameserver(item) for item in self.resolver]


class MastraAdminSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MASTRA_ADMIN_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(default=Path(".mastra-admin"), description="Where all state lives.")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(
        default=3000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("MASTRA_ADMIN_PORT", "ADMIN_PORT", "port"),
        description="Port of the API and UI.",
    )
    collector_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of a listener that serves only the collector (and `GET /health`); "
        "deployed servers are given its URL, so they reach the collector but not the rest "
        "of the API. Default: `port` + 1. 0: no separate listener, servers post to the API "
        "port, which a server in a network sandbox (only the ports the runner forwards are "
        "reachable) cannot reach. The collector also stays on the API port.",
    )
    public_url: str | None = Field(
        default=None,
        description="URL at which deployed servers reach the admin's collector, and the "
        "base of links sent by email (it must serve the API). Default: "
        "http://{host}:{collector port} for servers, http://{host}:{port} for links.",
    )
    collector: bool = Field(
        default=True,
        description="Give deployed servers the collector variables (MASTRA_CLOUD_*), so "
        "they post traces, logs and metrics to this installation's collector. Turn off when "
        "no HTTP server runs (MastraAdmin embedded without it): servers then write the "
        "files of the specification's file contract, which ingestion tails.",
    )
    base_domain: str = Field(
        default="localhost", description="Domain below which servers are routed."
    )
    licence_key: str | None = Field(
        default=None, description="Signed licence key; none = community."
    )
    licence_public_key: str | None = Field(
        default=None, description="Base64 Ed25519 public key that licence keys are checked with."
    )
    plugins_allow: list[str] | None = Field(
        default=None, description="Entry-point names of plugins to load; none = all installed."
    )
    plugins_deny: list[str] = Field(default_factory=list, description="Plugins never to load.")
    builds: BuildSettings = Field(default_factory=BuildSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    domains: DomainSettings = Field(default_factory=DomainSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    encryption: ProviderSection = _section("aes-gcm")
    file_storage: ProviderSection = _section("local")
    storage: ProviderSection = _section("pg")
    source: ProviderSection = _section("local")
    router: ProviderSection = _section("local")
    runner: ProviderSection = _section("local")
    observability: ProviderSection = _section("clickhouse")
    auth: ProviderSection = _section("none")
    email: ProviderSection = _section("console")
    billing: ProviderSection = _section("none")

    _config_file: Path | None = PrivateAttr(default=None)
    _explicit_keys: dict[str, frozenset[str]] | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        toml = _TOML_LAYER.get()
        if toml:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=toml))
        return tuple(sources)

    @model_validator(mode="before")
    @classmethod
    def _default_provider_names(cls, data: Any) -> Any:
        """A section that sets provider keys but not ``provider`` keeps the default
        provider (``MASTRA_ADMIN_STORAGE__URL`` alone still means storage ``pg``)."""
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for kind in provider_section_names():
            value = filled.get(kind)
            if isinstance(value, dict) and "provider" not in value:
                default = cls.model_fields[kind].get_default(call_default_factory=True)
                filled[kind] = {"provider": default.provider, **value}
        return filled

    @model_validator(mode="after")
    def _collector_port_fits(self) -> MastraAdminSettings:
        if self.collector_port is None and self.port == 65535:
            raise ValueError(
                "collector_port defaults to port + 1, above 65535: set collector_port "
                "(0: no separate collector listener)"
            )
        return self

    @property
    def admin_url(self) -> str:
        """The API and UI: ``public_url``, else ``http://{host}:{port}``."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def collector_listener_port(self) -> int | None:
        """Port of the listener that serves only the collector (``collector_port``,
        default ``port`` + 1); ``None`` when there is none (``collector_port`` is 0 or
        the API port itself)."""
        port = self.port + 1 if self.collector_port is None else self.collector_port
        return None if port in (0, self.port) else port

    @property
    def collector_base_url(self) -> str:
        """Where deployed servers post (the collector's paths are below it):
        ``public_url``, else the collector listener, else the API port."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.collector_listener_port or self.port}"

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from, if any."""
        return self._config_file

    def section(self, kind: str) -> ProviderSection:
        """The provider section of ``kind`` (``storage``, ``runner`` ...)."""
        value = getattr(self, kind, None)
        if not isinstance(value, ProviderSection):
            raise InvalidInput(f"no provider section named {kind!r}", details={"kind": kind})
        return value

    def explicit_section_keys(self, kind: str) -> frozenset[str] | None:
        """Keys of a provider section set by an override or a ``MASTRA_ADMIN_*``
        variable: these beat the specification's variable names (``DATABASE_URL``),
        which in turn beat the TOML file. ``None`` when the settings were not made
        by ``load_settings`` (then every key present counts as explicit)."""
        if self._explicit_keys is None:
            return None
        return self._explicit_keys.get(kind, frozenset())


def provider_section_names() -> list[str]:
    """The fields of ``MastraAdminSettings`` that are provider sections, in order."""
    return [
        name
        for name, info in MastraAdminSettings.model_fields.items()
        if info.annotation is ProviderSection
    ]


def describe_validation_error(
    exc: ValidationError, prefix: str = ""
) -> tuple[str, list[dict[str, str]]]:
    """``"port: Input should be ...; builds.workers: ..."`` and the same as a list of
    ``{"field", "message"}``. Input values are left out: they may be secrets."""
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        name = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(root)")
        errors.append({"field": name, "message": error["msg"]})
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors


def _config_path(config_file: Path | str | None) -> Path | None:
    if config_file is not None:
        path = Path(config_file)
    elif os.environ.get(CONFIG_ENV_VAR):
        path = Path(os.environ[CONFIG_ENV_VAR])
    else:
        return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
    if not path.is_file():
        raise InvalidInput(
            f"settings file {str(path)!r} does not exist", details={"config_file": str(path)}
        )
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(
            f"cannot read settings file {str(path)!r}: {exc}", details={"config_file": str(path)}
        ) from exc
    _refuse_unknown_keys(data, f"settings file {str(path)!r}", {"config_file": str(path)})
    return data


def _refuse_unknown_keys(data: dict[str, Any], where: str, details: dict[str, Any]) -> None:
    """Top-level keys must be settings: a misspelt one would otherwise be ignored."""
    known: set[str] = set()
    for name, info in MastraAdminSettings.model_fields.items():
        known.add(name)
        if isinstance(info.validation_alias, AliasChoices):
            known.update(c for c in info.validation_alias.choices if isinstance(c, str))
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(
                f"{where}: unknown setting {key!r}{hint}", details={**details, "field": key}
            )


def _explicit_section_keys(overrides: dict[str, Any]) -> dict[str, frozenset[str]]:
    env = EnvSettingsSource(MastraAdminSettings)()
    explicit: dict[str, frozenset[str]] = {}
    for kind in provider_section_names():
        keys: set[str] = set()
        for layer in (env.get(kind), overrides.get(kind)):
            if isinstance(layer, dict):
                keys.update(layer)
            elif isinstance(layer, ProviderSection):
                keys.update(layer.model_fields_set)
                keys.update(layer.provider_settings())
        explicit[kind] = frozenset(keys)
    return explicit


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> MastraAdminSettings:
    """Read the settings of this installation.

    Strongest first: ``overrides`` (field names, sections as dicts), ``MASTRA_ADMIN_*``
    variables (``MASTRA_ADMIN_STORAGE__URL``), the specification's variable names
    (``ADMIN_PORT`` here; ``DATABASE_URL`` and the like are declared by the provider
    that uses them and applied by the composition root), the TOML file
    (``config_file``, else ``$MASTRA_ADMIN_CONFIG``, else ``./mastra-admin.toml``
    when present), defaults.

    :raises InvalidInput: the file is missing or malformed, or a value is invalid;
        the message names the setting.
    """
    _refuse_unknown_keys(overrides, "load_settings", {})
    path = _config_path(config_file)
    toml = _read_toml(path) if path is not None else {}
    token = _TOML_LAYER.set(toml)
    try:
        settings = MastraAdminSettings(**overrides)
        explicit = _explicit_section_keys(overrides)
    except ValidationError as exc:
        message, errors = describe_validation_error(exc)
        raise InvalidInput(f"invalid settings: {message}", details={"errors": errors}) from exc
    except SettingsError as exc:
        raise InvalidInput(f"invalid settings: {exc}") from exc
    finally:
        _TOML_LAYER.reset(token)
    settings._config_file = path
    settings._explicit_keys = explicit
    return settings
