"""Renders every setting (the core's and each installed provider's) as ``docs/configuration.md``.

Regenerate the page after changing a settings model, with every distribution installed::

    python -m mastra_admin.core.settings_docs --write docs/configuration.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import structlog
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mastra_admin.core.plugins import PROVIDER_KINDS, PluginManager
from mastra_admin.core.settings import MastraAdminSettings, ProviderSection

__all__ = ["REGENERATE_COMMAND", "SettingRow", "render_configuration", "setting_rows"]

REGENERATE_COMMAND = "python -m mastra_admin.core.settings_docs --write docs/configuration.md"

ENV_PREFIX = "MASTRA_ADMIN_"

_INTRO = f"""# Configuration

<!-- Generated from the settings models by `{REGENERATE_COMMAND}`
     (with every distribution installed). Edit the models' descriptions, not this table. -->

MastraAdmin reads its settings from these sources, strongest first:

1. values given in code (`load_settings(port=8080)`, `build_admin(settings)`);
2. `MASTRA_ADMIN_*` environment variables, nested with `__`
   (`MASTRA_ADMIN_STORAGE__URL`, `MASTRA_ADMIN_BUILDS__WORKERS`);
3. the variable names of the specification (`ADMIN_PORT`, `DATABASE_URL`, `CLICKHOUSE_URL`,
   `PROJECTS_DIR`, `FILE_STORAGE_PATH`, `PROXY_PORT`), each honoured by the provider that
   declares it, only while that provider is selected;
4. the TOML file named by `MASTRA_ADMIN_CONFIG`, else `./mastra-admin.toml` when present;
5. the defaults below.

Each provider kind has a section. `provider` picks the implementation by name; every
other key of the section belongs to that provider and is checked by its own settings
model, so a misspelt key is an error that names the kind, the provider and the key.
Kinds other than `storage`, `file_storage` and `encryption` may be `none`.

```toml
data_dir = "/var/lib/mastra-admin"
port = 3000
plugins_deny = ["some-plugin"]

[builds]
workers = 4

[storage]
provider = "pg"
url = "postgresql://admin@db.internal/mastra_admin"

[runner]
provider = "local"
```

In the table, a name such as `storage.url` (pg) is the key `url` of the `[storage]` section,
read when the `pg` storage provider is selected.

"""

_HEADER = "| name | environment variables | default | description |\n|---|---|---|---|\n"


@dataclass(frozen=True)
class SettingRow:
    name: str
    env: tuple[str, ...]
    default: str
    description: str
    kind: str | None = None
    provider: str | None = None

    def render(self) -> str:
        label = f"`{self.name}`" + (f" ({self.provider})" if self.provider else "")
        env = ", ".join(f"`{e}`" for e in self.env)
        return f"| {label} | {env} | {_cell(self.default)} | {_cell(self.description)} |"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _default(info: FieldInfo) -> str:
    documented = _extra(info).get("default_doc")
    if isinstance(documented, str):
        return f"`{documented}`"
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def _core_env(name: str, info: FieldInfo) -> tuple[str, ...]:
    if isinstance(info.validation_alias, AliasChoices):
        return tuple(c for c in info.validation_alias.choices if isinstance(c, str) and c.isupper())
    return (f"{ENV_PREFIX}{name.upper()}",)


def _nested_model(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _model_rows(
    model: type[BaseModel],
    name: str,
    env: str,
    *,
    kind: str | None = None,
    provider: str | None = None,
) -> list[SettingRow]:
    """Rows for the fields of ``model`` (nested models expanded), below ``name``
    (``storage``) and the variable prefix ``env`` (``MASTRA_ADMIN_STORAGE``)."""
    rows: list[SettingRow] = []
    for field_name, info in model.model_fields.items():
        key = info.alias or field_name
        nested = _nested_model(info)
        if nested is not None:
            rows += _model_rows(
                nested, f"{name}.{key}", f"{env}__{key.upper()}", kind=kind, provider=provider
            )
            continue
        aliases = _extra(info).get("env")
        rows.append(
            SettingRow(
                name=f"{name}.{key}",
                env=(f"{env}__{key.upper()}", *(str(a) for a in aliases or ())),
                default=_default(info),
                description=info.description or "",
                kind=kind,
                provider=provider,
            )
        )
    return rows


def setting_rows(manager: PluginManager) -> list[SettingRow]:
    """One row per setting: the core's, then per kind its ``provider`` and the keys
    of every provider of that kind the manager knows."""
    rows: list[SettingRow] = []
    for name, info in MastraAdminSettings.model_fields.items():
        if info.annotation is ProviderSection:
            continue
        nested = _nested_model(info)
        if nested is not None:
            rows += _model_rows(nested, name, f"{ENV_PREFIX}{name.upper()}")
            continue
        rows.append(
            SettingRow(
                name=name,
                env=_core_env(name, info),
                default=_default(info),
                description=info.description or "",
            )
        )
    specs = manager.provider_specs()
    for kind in PROVIDER_KINDS:
        section = MastraAdminSettings.model_fields[kind].get_default(call_default_factory=True)
        optional = kind not in ("storage", "file_storage", "encryption")
        rows.append(
            SettingRow(
                name=f"{kind}.provider",
                env=(f"{ENV_PREFIX}{kind.upper()}__PROVIDER",),
                default=f"`{section.provider}`",
                description=f"The {kind.replace('_', ' ')} provider, by name"
                + (" (`none`: no provider)." if optional else "."),
                kind=kind,
            )
        )
        for (spec_kind, _), spec in sorted(specs.items()):
            if spec_kind == kind:
                rows += _model_rows(
                    spec.settings_model,
                    kind,
                    f"{ENV_PREFIX}{kind.upper()}",
                    kind=kind,
                    provider=spec.name,
                )
    return rows


def render_configuration(manager: PluginManager) -> str:
    """The whole ``docs/configuration.md`` page for the providers ``manager`` knows."""
    table = "\n".join(row.render() for row in setting_rows(manager))
    return f"{_INTRO}{_HEADER}{table}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", type=Path, help="write the page here instead of stdout")
    parser.add_argument(
        "--deny", action="append", default=[], help="leave this plugin out (repeatable)"
    )
    args = parser.parse_args(argv)
    # Log lines must not end up in the page when it is written to stdout.
    previous = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        manager = PluginManager()
        manager.load_entrypoints(deny=args.deny)
        page = render_configuration(manager)
    finally:
        structlog.configure(**previous)
    if args.write is None:
        sys.stdout.write(page)
    else:
        args.write.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
