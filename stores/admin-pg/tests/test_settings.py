"""Settings: the schema name is an identifier, never SQL; connection parts; env aliases."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mastra_admin.core.compose import provider_settings
from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.settings import load_settings
from mastra_admin.stores.pg import PgAdminStorage, PgSettings, validate_identifier
from mastra_admin.stores.pg.plugin import PROVIDER

BAD_NAMES = [
    "x; drop table",
    'a"b',
    "1abc",
    "",
    "pg_catalog",
    "mastra-admin",
    "a" * 64,
    "schema name",
    "x'--",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_schema_injection_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        PgSettings.model_validate({"schema": name})
    assert info.value.details == {"field": "schema"}
    with pytest.raises(InvalidInput):
        PgAdminStorage("postgresql://localhost/db", schema=name)


@pytest.mark.parametrize("name", ["mastra_admin", "_x", "Tenant_42", "a" * 63])
def test_plain_identifiers_are_accepted(name: str) -> None:
    assert validate_identifier(name) == name
    assert PgSettings.model_validate({"schema": name}).schema_name == name


def test_connection_parts_make_a_conninfo_and_secrets_stay_hidden() -> None:
    settings = PgSettings(
        host="db.internal",
        port=6543,
        dbname="admin",
        user="svc",
        password="s3cret",
        sslmode="require",
    )
    conninfo = settings.conninfo()
    for part in (
        "host=db.internal",
        "port=6543",
        "dbname=admin",
        "user=svc",
        "password=s3cret",
        "sslmode=require",
        "application_name=mastra-admin",
    ):
        assert part in conninfo
    assert "s3cret" not in repr(settings)
    assert not settings.uses_embedded
    assert PgSettings().uses_embedded


def test_url_and_pool_are_exclusive_and_unknown_keys_refused() -> None:
    with pytest.raises(ValidationError):
        PgSettings.model_validate({"hots": "typo"})
    with pytest.raises(ValidationError):
        PgSettings.model_validate({"sslmode": "sometimes"})


def test_database_url_variable_sets_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@example.org/admin")
    monkeypatch.delenv("MASTRA_ADMIN_STORAGE__URL", raising=False)
    settings = provider_settings(PROVIDER, load_settings())
    assert isinstance(settings, PgSettings)
    assert settings.url is not None
    assert settings.url.get_secret_value() == "postgresql://u@example.org/admin"
    assert "u@example.org" in settings.conninfo() or "host=example.org" in settings.conninfo()


def test_schema_from_the_settings_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__SCHEMA", "tenant_a")
    settings = provider_settings(PROVIDER, load_settings())
    assert isinstance(settings, PgSettings)
    assert settings.schema_name == "tenant_a"
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__SCHEMA", "x; drop table")
    with pytest.raises(InvalidInput):
        provider_settings(PROVIDER, load_settings())
