"""The composition root picks one provider per kind by name and validates its settings."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.billing import NoBillingProvider
from mastra_admin.core.builtin import NoAuthProvider
from mastra_admin.core.compose import (
    INGESTION_KINDS,
    STORAGE_KINDS,
    build_admin,
    build_ingestion_worker,
    build_providers,
    load_collector_secret,
)
from mastra_admin.core.email import ConsoleEmailProvider
from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.errors import BuildFailed, InvalidInput
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.licence import LicenceValidator
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import RunningServer
from mastra_admin.core.observability import (
    IngestionStatus,
    IngestionWorker,
    ObservabilityBackend,
    ProcessingResult,
)
from mastra_admin.core.plugins import PluginError, PluginManager, ProviderContext, ProviderSpec
from mastra_admin.core.runner import (
    BuildArtifact,
    BuildContext,
    LogSink,
    ProjectRunner,
    ServerStats,
)
from mastra_admin.core.settings import MastraAdminSettings, load_settings
from mastra_admin.core.testing.memory import InMemoryAdminStorage

pytestmark = pytest.mark.usefixtures("clean_env")


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="memory", description="A name for log lines.")
    database_url: str | None = Field(default=None, json_schema_extra={"env": ["DATABASE_URL"]})


class TrackedStorage(InMemoryAdminStorage):
    def __init__(self, settings: MemorySettings) -> None:
        super().__init__()
        self.settings = settings
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()


class IdleRunner(ProjectRunner):
    """A runner that builds nothing; enough to show which one was picked."""

    type: ClassVar[str] = "idle"

    def __init__(self, context: ProviderContext, slots: int) -> None:
        self.context = context
        self.slots = slots

    async def build(self, ctx: BuildContext, log: LogSink) -> BuildArtifact:
        raise BuildFailed("build", "the idle runner does not build")

    async def start(
        self, ctx: BuildContext, artifact: BuildArtifact, log: LogSink
    ) -> RunningServer:
        raise BuildFailed("start", "the idle runner does not start servers")

    async def stop(self, server: RunningServer, *, grace_s: float = 10.0) -> None:
        return None

    async def is_alive(self, server: RunningServer) -> bool:
        return False

    async def stats(self, server: RunningServer) -> ServerStats:
        return ServerStats(alive=False, healthy=False)

    async def attach(self, server: RunningServer) -> bool:
        return False

    async def has_artifact(self, build_id: str) -> BuildArtifact | None:
        return None

    async def prune_artifacts(self, keep: Sequence[str]) -> list[str]:
        return []


class IdleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slots: int = Field(default=1, ge=1)


async def _idle_runner(settings: IdleSettings, context: ProviderContext) -> IdleRunner:
    return IdleRunner(context, settings.slots)  # an async factory is awaited


class AdapterPlugin:
    """A plugin offering a storage and two runners, as an adapter distribution would."""

    def __init__(self) -> None:
        self.storages: list[TrackedStorage] = []

    def _storage(self, settings: MemorySettings, context: ProviderContext) -> TrackedStorage:
        storage = TrackedStorage(settings)
        self.storages.append(storage)
        return storage

    @hookimpl
    def mastra_admin_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec("storage", "memory", MemorySettings, self._storage),
            ProviderSpec("runner", "idle", IdleSettings, _idle_runner),
            ProviderSpec("runner", "broken", IdleSettings, _broken_runner),
            ProviderSpec("runner", "wrong-type", IdleSettings, lambda s, c: object()),
        ]


def _broken_runner(settings: IdleSettings, context: ProviderContext) -> IdleRunner:
    raise OSError("no such device")


def _settings(tmp_path: Path, **sections: Any) -> MastraAdminSettings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "plugins_allow": [],  # entry points of this environment stay out of these tests
        "storage": {"provider": "memory"},
        "source": {"provider": "none"},
        "router": {"provider": "none"},
        "runner": {"provider": "none"},
        "observability": {"provider": "none"},
    }
    values.update(sections)
    return load_settings(**values)


@pytest.fixture
def providers() -> AdapterPlugin:
    return AdapterPlugin()


async def test_build_admin_picks_every_provider_by_name(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, runner={"provider": "idle", "slots": 3})

    admin = await build_admin(settings, plugins=[providers])

    assert isinstance(admin, MastraAdmin)
    assert admin.storage is providers.storages[0]
    assert isinstance(admin.runner, IdleRunner)
    assert admin.runner.slots == 3
    assert admin.router is None
    assert admin.source is None
    assert admin.observability is None
    assert isinstance(admin.encryption, AesGcmEncryption)
    assert isinstance(admin.file_storage, LocalFileStorage)
    assert isinstance(admin.email, ConsoleEmailProvider)
    assert isinstance(admin.billing, NoBillingProvider)
    assert isinstance(admin.auth, NoAuthProvider)
    assert await admin.auth.verify("any.jwt.value") is None
    assert isinstance(admin.licence, LicenceValidator)
    assert admin.settings is settings
    assert isinstance(admin.plugins, PluginManager)


async def test_the_defaults_put_every_file_in_the_data_dir(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    admin = await build_admin(_settings(tmp_path), plugins=[providers])
    data_dir = (tmp_path / "data").resolve()

    key_file = data_dir / "encryption-keys.json"
    secret_file = data_dir / "collector-secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_bytes()) == 32
    assert admin.file_storage is not None
    await admin.file_storage.write("logs/b1.log", "line\n")
    assert (data_dir / "files" / "logs" / "b1.log").read_text() == "line\n"


async def test_a_second_start_reuses_the_keys_and_the_collector_secret(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    first = await build_admin(_settings(tmp_path), plugins=[providers])
    assert first.encryption is not None
    ciphertext = first.encryption.encrypt("hunter2")

    second = await build_admin(_settings(tmp_path), plugins=[AdapterPlugin()])

    assert second.encryption is not None
    assert second.encryption.decrypt(ciphertext) == "hunter2"
    assert second.collector_token("dep_1") == first.collector_token("dep_1")


async def test_factories_see_the_providers_built_before_them(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    admin = await build_admin(_settings(tmp_path, runner={"provider": "idle"}), plugins=[providers])

    assert isinstance(admin.runner, IdleRunner)
    context = admin.runner.context
    assert context.storage is admin.storage
    assert context.encryption is admin.encryption
    assert context.file_storage is admin.file_storage
    assert context.extras["storage"] is admin.storage
    assert context.data_dir == (tmp_path / "data").resolve()


async def test_provider_settings_are_validated_naming_kind_provider_and_field(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, runner={"provider": "idle", "slots": 0})

    with pytest.raises(InvalidInput) as caught:
        await build_admin(settings, plugins=[providers])

    message = caught.value.message
    assert message.startswith("invalid settings for runner provider 'idle': runner.slots:")
    assert "MASTRA_ADMIN_RUNNER__SLOTS" in message
    assert caught.value.details["kind"] == "runner"
    assert caught.value.details["provider"] == "idle"
    assert caught.value.details["errors"][0]["field"] == "runner.slots"
    assert providers.storages[0].closed  # what was built before is closed again


async def test_a_misspelt_provider_key_is_an_error(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, email={"provider": "console", "kep": 5})

    with pytest.raises(InvalidInput, match=r"email provider 'console': email\.kep: Extra inputs"):
        await build_admin(settings, plugins=[providers])


async def test_specification_variables_are_honoured_for_the_selected_provider(
    tmp_path: Path, providers: AdapterPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://spec/db")
    monkeypatch.setenv("FILE_STORAGE_PATH", str(tmp_path / "spec-files"))
    config = tmp_path / "mastra-admin.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nplugins_allow = []\n'
        '[storage]\nprovider = "memory"\ndatabase_url = "postgresql://toml/db"\n'
        f'[file_storage]\npath = "{tmp_path / "toml-files"}"\n'
        "[runner]\nprovider = 'none'\n[router]\nprovider = 'none'\n"
        "[source]\nprovider = 'none'\n[observability]\nprovider = 'none'\n"
    )

    admin = await build_admin(load_settings(config), plugins=[providers])

    assert providers.storages[0].settings.database_url == "postgresql://spec/db"  # beats TOML
    assert admin.file_storage is not None
    await admin.file_storage.write("a.txt", "x")
    assert (tmp_path / "spec-files" / "a.txt").exists()


async def test_our_variables_beat_the_specification_variables(
    tmp_path: Path, providers: AdapterPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://spec/db")
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__DATABASE_URL", "postgresql://ours/db")

    await build_admin(_settings(tmp_path), plugins=[providers])

    assert providers.storages[0].settings.database_url == "postgresql://ours/db"


async def test_a_missing_optional_provider_may_be_none_but_storage_may_not(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, storage={"provider": "none"})

    with pytest.raises(InvalidInput, match=r"storage is required: set storage\.provider to one of"):
        await build_admin(settings, plugins=[providers])


async def test_an_unknown_provider_name_lists_the_installed_ones(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, runner={"provider": "docker"})

    with pytest.raises(PluginError) as caught:
        await build_admin(settings, plugins=[providers])

    assert caught.value.message.startswith(
        "no runner provider named 'docker' is installed (available: 'broken', 'idle', 'wrong-type')"
    )


async def test_a_failing_factory_names_the_provider_and_its_plugin(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    manager = PluginManager()
    manager.register(providers, "acme", distribution="acme-adapters", version="1.0")
    settings = _settings(tmp_path, runner={"provider": "broken"})

    with pytest.raises(PluginError) as caught:
        await build_admin(settings, plugins=manager)

    assert caught.value.message == (
        "runner provider 'broken' of plugin 'acme' (distribution acme-adapters 1.0) "
        "failed to start: OSError: no such device"
    )
    assert providers.storages[0].closed


async def test_a_provider_of_the_wrong_type_is_refused(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, runner={"provider": "wrong-type"})

    with pytest.raises(PluginError, match="returned object, which is not a ProjectRunner"):
        await build_admin(settings, plugins=[providers])


async def test_overrides_supply_ready_providers(tmp_path: Path) -> None:
    storage = InMemoryAdminStorage()
    settings = _settings(tmp_path, storage={"provider": "not-installed"})

    admin = await build_admin(settings, overrides={"storage": storage, "email": None})

    assert admin.storage is storage
    assert admin.email is None
    with pytest.raises(InvalidInput, match="storage is required"):
        await build_admin(settings, overrides={"storage": None})
    with pytest.raises(InvalidInput, match="unknown provider kinds \\['queue'\\]"):
        await build_admin(settings, overrides={"storage": storage, "queue": object()})


async def test_denying_the_builtin_plugin_leaves_no_encryption(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, plugins_deny=["builtin"])

    with pytest.raises(PluginError, match="no encryption provider named 'aes-gcm'"):
        await build_admin(settings, plugins=[providers])


def test_a_truncated_collector_secret_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "collector-secret").write_bytes(b"short")

    with pytest.raises(InvalidInput, match="holds 5 bytes, a collector secret needs 32"):
        load_collector_secret(tmp_path)


async def test_a_partial_composition_constructs_only_the_kinds_asked_for(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    # The runner's factory would fail: a storage-only command never calls it.
    settings = _settings(tmp_path, runner={"provider": "broken"})

    admin = await build_admin(settings, plugins=[providers], only=STORAGE_KINDS)

    assert admin.storage is providers.storages[0]
    assert isinstance(admin.encryption, AesGcmEncryption)
    assert isinstance(admin.file_storage, LocalFileStorage)
    assert (admin.runner, admin.router, admin.observability, admin.email) == (None,) * 4
    with pytest.raises(PluginError, match="runner provider 'broken'"):
        await build_admin(settings, plugins=[providers])


async def test_build_providers_leaves_the_other_kinds_out(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path, runner={"provider": "idle", "slots": 2})

    made = await build_providers(settings, plugins=[providers], kinds={"file_storage", "runner"})

    assert isinstance(made.file_storage, LocalFileStorage)
    assert isinstance(made.runner, IdleRunner)
    assert made.runner.context.storage is None  # storage was not composed
    assert made.storage is None
    assert made.observability is None
    assert providers.storages == []
    assert made.data_dir == (tmp_path / "data").resolve()
    await made.close()
    with pytest.raises(InvalidInput, match="unknown provider kinds \\['queue'\\]"):
        await build_providers(settings, plugins=[providers], kinds=["queue"])  # type: ignore[list-item]


class BuildsRunner(IdleRunner):
    def artifact_roots(self) -> list[str]:
        return [str(self.context.data_dir / "builds")]


class NoWork(IngestionWorker):
    def __init__(self, build_dirs: list[str]) -> None:
        self.build_dirs = build_dirs

    async def start(self) -> None:
        return None

    async def stop(self, *, drain: bool = True) -> None:
        return None

    async def process_once(self) -> ProcessingResult:
        return ProcessingResult()

    def status(self) -> IngestionStatus:
        raise NotImplementedError


class RecordingBackend(ObservabilityBackend):
    type: ClassVar[str] = "recording"

    async def init(self) -> None:
        return None

    def ingestion_worker(
        self, file_storage: FileStorageProvider, *, build_dirs: list[str] | None = None
    ) -> IngestionWorker:
        return NoWork(list(build_dirs or []))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_the_ingestion_worker_reads_where_the_runner_says_its_builds_write(
    tmp_path: Path, providers: AdapterPlugin
) -> None:
    settings = _settings(tmp_path)
    context = ProviderContext(settings=settings, data_dir=tmp_path / "data")
    runner = BuildsRunner(context, 1)
    admin = await build_admin(
        settings,
        plugins=[providers],
        overrides={"runner": runner, "observability": RecordingBackend()},
    )

    worker = build_ingestion_worker(admin)

    assert isinstance(worker, NoWork)
    assert worker.build_dirs == [str(tmp_path / "data" / "builds")]
    chosen = build_ingestion_worker(admin, build_dirs=["/srv/builds"])
    assert isinstance(chosen, NoWork)
    assert chosen.build_dirs == ["/srv/builds"]
    parts = await build_providers(
        settings,
        plugins=[providers],
        kinds=INGESTION_KINDS,
        overrides={"runner": runner, "observability": RecordingBackend()},
    )
    from_parts = build_ingestion_worker(parts)
    assert isinstance(from_parts, NoWork)
    assert from_parts.build_dirs == worker.build_dirs
    assert build_ingestion_worker(await build_admin(settings, plugins=[providers])) is None
