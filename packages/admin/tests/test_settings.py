"""Settings: overrides, MASTRA_ADMIN_* variables, the specification's names, TOML, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.settings import MastraAdminSettings, load_settings

pytestmark = pytest.mark.usefixtures("clean_env")


def _toml(folder: Path, text: str, name: str = "mastra-admin.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_defaults_work_on_a_laptop() -> None:
    settings = load_settings()

    assert settings.port == 3000
    assert settings.data_dir == Path(".mastra-admin")
    assert settings.storage.provider == "pg"
    assert settings.encryption.provider == "aes-gcm"
    assert settings.auth.provider == "none"
    assert settings.builds.workers == 2
    assert settings.config_file is None


def test_the_toml_file_beats_the_defaults(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
        port = 8080
        plugins_deny = ["noisy"]

        [builds]
        workers = 5

        [storage]
        provider = "memory"
        size = 3
        """,
    )

    settings = load_settings(path)

    assert settings.port == 8080
    assert settings.plugins_deny == ["noisy"]
    assert settings.builds.workers == 5
    assert settings.storage.provider == "memory"
    assert settings.storage.provider_settings() == {"size": 3}
    assert settings.config_file == path


def test_mastra_admin_variables_beat_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, 'port = 8080\n[builds]\nworkers = 5\n[storage]\nurl = "from-toml"\n')
    monkeypatch.setenv("MASTRA_ADMIN_PORT", "9090")
    monkeypatch.setenv("MASTRA_ADMIN_BUILDS__WORKERS", "7")
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__URL", "from-env")

    settings = load_settings(path)

    assert settings.port == 9090
    assert settings.builds.workers == 7
    assert settings.storage.provider_settings() == {"url": "from-env"}


def test_a_nested_variable_alone_keeps_the_default_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__URL", "postgresql://db/admin")
    monkeypatch.setenv("MASTRA_ADMIN_RUNNER__PROVIDER", "tiny")

    settings = load_settings()

    assert settings.storage.provider == "pg"
    assert settings.storage.provider_settings() == {"url": "postgresql://db/admin"}
    assert settings.runner.provider == "tiny"
    assert settings.explicit_section_keys("storage") == frozenset({"url"})
    assert settings.explicit_section_keys("runner") == frozenset({"provider"})


def test_the_specification_port_variable_sits_between_ours_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, "port = 8080\n")
    monkeypatch.setenv("ADMIN_PORT", "4000")

    assert load_settings(path).port == 4000

    monkeypatch.setenv("MASTRA_ADMIN_PORT", "5000")
    assert load_settings(path).port == 5000


def test_overrides_beat_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _toml(tmp_path, 'port = 8080\n[storage]\nurl = "from-toml"\n')
    monkeypatch.setenv("MASTRA_ADMIN_PORT", "9090")
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__URL", "from-env")

    settings = load_settings(path, port=1234, storage={"provider": "memory", "url": "given"})

    assert settings.port == 1234
    assert settings.storage.provider == "memory"
    assert settings.storage.provider_settings() == {"url": "given"}


def test_the_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, "port = 8181\n", name="elsewhere.toml")
    monkeypatch.setenv("MASTRA_ADMIN_CONFIG", str(path))

    settings = load_settings()

    assert settings.port == 8181
    assert settings.config_file == path


def test_mastra_admin_toml_in_the_working_directory_is_read(clean_env: Path) -> None:
    _toml(clean_env, 'base_domain = "apps.example.com"\n')

    settings = load_settings()

    assert settings.base_domain == "apps.example.com"
    assert settings.config_file == Path("mastra-admin.toml")


def test_constructing_the_model_directly_reads_no_file(clean_env: Path) -> None:
    _toml(clean_env, "port = 8080\n")

    assert MastraAdminSettings().port == 3000
    assert MastraAdminSettings().explicit_section_keys("storage") is None


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"settings file .*nope\.toml' does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_a_malformed_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = = 1\n")

    with pytest.raises(InvalidInput, match=r"cannot read settings file .*mastra-admin\.toml"):
        load_settings(path)


def test_an_unknown_key_in_the_file_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'data_dri = "/srv"\n')

    with pytest.raises(InvalidInput) as caught:
        load_settings(path)

    assert "unknown setting 'data_dri'; did you mean 'data_dir'?" in caught.value.message
    assert caught.value.details["field"] == "data_dri"


def test_an_invalid_value_names_the_setting_but_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASTRA_ADMIN_BUILDS__WORKERS", "999999")
    monkeypatch.setenv("MASTRA_ADMIN_LICENCE_KEY", "s3cr3t-licence")

    with pytest.raises(InvalidInput) as caught:
        load_settings(port=70000)

    fields = {error["field"] for error in caught.value.details["errors"]}
    assert fields == {"port", "builds.workers"}
    assert "s3cr3t" not in caught.value.message
    assert "999999" not in caught.value.message


def test_an_unknown_override_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="load_settings: unknown setting 'prot'; did you mean"):
        load_settings(prot=8080)


def test_servers_post_to_the_collector_listener_on_the_next_port_by_default() -> None:
    settings = load_settings(port=4000)

    assert settings.collector_listener_port == 4001
    assert settings.collector_base_url == "http://127.0.0.1:4001"
    assert settings.admin_url == "http://127.0.0.1:4000"


def test_collector_port_names_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTRA_ADMIN_COLLECTOR_PORT", "6006")

    settings = load_settings(port=4000)

    assert settings.collector_listener_port == 6006
    assert settings.collector_base_url == "http://127.0.0.1:6006"


@pytest.mark.parametrize("collector_port", [0, 4000])
def test_collector_port_0_or_the_api_port_means_servers_post_to_the_api_port(
    collector_port: int,
) -> None:
    settings = load_settings(port=4000, collector_port=collector_port)

    assert settings.collector_listener_port is None
    assert settings.collector_base_url == "http://127.0.0.1:4000"


def test_public_url_is_where_servers_post_whatever_the_collector_port() -> None:
    settings = load_settings(port=4000, collector_port=5000, public_url="https://admin.example/")

    assert settings.collector_base_url == "https://admin.example"
    assert settings.admin_url == "https://admin.example"
    assert settings.collector_listener_port == 5000, "the listener still runs"


def test_the_last_port_needs_an_explicit_collector_port() -> None:
    with pytest.raises(InvalidInput, match="set collector_port"):
        load_settings(port=65535)

    assert load_settings(port=65535, collector_port=0).collector_listener_port is None


def test_a_collector_port_out_of_range_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_settings(collector_port=70000)

    assert {e["field"] for e in caught.value.details["errors"]} == {"collector_port"}
