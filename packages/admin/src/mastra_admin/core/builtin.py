"""The core's own providers, offered through the same hook as any third-party plugin.

``PluginManager`` registers this module as the plugin ``builtin``; deny it
(``plugins_deny = ["builtin"]``) to take every built-in provider away.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from mastra_admin.core.auth import AuthProvider, ExternalIdentity
from mastra_admin.core.billing import NoBillingProvider
from mastra_admin.core.email import ConsoleEmailProvider
from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.core.smtp_email import SmtpEmailProvider, SmtpEmailSettings

__all__ = [
    "AesGcmSettings",
    "ConsoleEmailSettings",
    "LocalFileStorageSettings",
    "NoAuthProvider",
    "NoSettings",
    "mastra_admin_providers",
]


class NoSettings(BaseModel):
    """A provider without settings: any key in its section is a mistake."""

    model_config = ConfigDict(extra="forbid")


class AesGcmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_file: Path | None = Field(
        default=None,
        description="JSON file holding the AES-256 keys; created with mode 0600 on first start.",
        json_schema_extra={"default_doc": "{data_dir}/encryption-keys.json"},
    )


class LocalFileStorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(
        default=None,
        description="Folder under which build logs and observability files are kept.",
        json_schema_extra={"env": ["FILE_STORAGE_PATH"], "default_doc": "{data_dir}/files"},
    )


class ConsoleEmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: int = Field(
        default=1000, ge=0, description="Messages kept in memory for reading back (newest)."
    )


class NoAuthProvider(AuthProvider):
    """Accepts no external credential: only MastraAdmin's own API tokens log in."""

    type: ClassVar[str] = "none"

    async def verify(self, credential: str) -> ExternalIdentity | None:
        return None


async def _aes_gcm(settings: AesGcmSettings, context: ProviderContext) -> AesGcmEncryption:
    path = settings.key_file or context.data_dir / "encryption-keys.json"
    # Reading (or creating and fsyncing) the key file is blocking disk work.
    return await asyncio.to_thread(AesGcmEncryption.from_key_file, path)


def _local_file_storage(
    settings: LocalFileStorageSettings, context: ProviderContext
) -> LocalFileStorage:
    return LocalFileStorage(settings.path or context.data_dir / "files")


def _console_email(
    settings: ConsoleEmailSettings, context: ProviderContext
) -> ConsoleEmailProvider:
    return ConsoleEmailProvider(keep=settings.keep)


async def _smtp_email(settings: SmtpEmailSettings, context: ProviderContext) -> SmtpEmailProvider:
    # The provider reads ca_file (if any) into its TLS context: blocking disk work.
    return await asyncio.to_thread(SmtpEmailProvider, settings)


def _no_billing(settings: NoSettings, context: ProviderContext) -> NoBillingProvider:
    return NoBillingProvider()


def _no_auth(settings: NoSettings, context: ProviderContext) -> NoAuthProvider:
    return NoAuthProvider()


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="encryption",
            name="aes-gcm",
            settings_model=AesGcmSettings,
            factory=_aes_gcm,
            description="AES-256-GCM with key ids, keys in a local file.",
        ),
        ProviderSpec(
            kind="file_storage",
            name="local",
            settings_model=LocalFileStorageSettings,
            factory=_local_file_storage,
            description="Files in a local folder, written atomically.",
        ),
        ProviderSpec(
            kind="email",
            name="console",
            settings_model=ConsoleEmailSettings,
            factory=_console_email,
            description="Logs every message instead of sending it.",
        ),
        ProviderSpec(
            kind="email",
            name="smtp",
            settings_model=SmtpEmailSettings,
            factory=_smtp_email,
            description="Sends plain-text UTF-8 mail through an SMTP server (STARTTLS or TLS).",
        ),
        ProviderSpec(
            kind="billing",
            name="none",
            settings_model=NoSettings,
            factory=_no_billing,
            description="Bills nothing and allows everything.",
        ),
        ProviderSpec(
            kind="auth",
            name="none",
            settings_model=NoSettings,
            factory=_no_auth,
            description="No external identity provider; API tokens only.",
        ),
    ]
