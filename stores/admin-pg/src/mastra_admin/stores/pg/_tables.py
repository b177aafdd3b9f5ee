"""How each model maps onto its table: insert and update statements, parameters with
JSON columns wrapped as ``jsonb``, and rows decoded back into models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import structlog
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from mastra_admin.core.errors import InvalidInput, MastraAdminError
from mastra_admin.core.storage import Patch

from ._db import Row

__all__ = ["Table"]

M = TypeVar("M", bound=BaseModel)

_log = structlog.get_logger("mastra_admin.stores.pg")


class Table(Generic[M]):
    """One table of the admin schema and the model stored in it."""

    def __init__(
        self,
        name: str,
        model: type[M],
        columns: str,
        *,
        json_columns: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.model = model
        self.columns = tuple(columns.split())
        missing = set(self.columns) - set(model.model_fields)
        if missing:
            raise TypeError(f"{model.__name__} has no field(s) {sorted(missing)}")
        self.json_columns = frozenset(json_columns)
        self.qualified = "{schema}." + name
        names = ", ".join(self.columns)
        values = ", ".join(f"%({c})s" for c in self.columns)
        self.insert_sql = f"INSERT INTO {self.qualified} ({names}) VALUES ({values}) RETURNING *"
        self._updates: dict[frozenset[str], str] = {}

    def params(self, entity: M) -> dict[str, Any]:
        data = entity.model_dump(include=set(self.columns))
        if self.json_columns:
            encoded = entity.model_dump(mode="json", include=set(self.json_columns))
            for column in self.json_columns:
                data[column] = Jsonb(encoded[column])
        return data

    def patch_params(self, patch: Patch) -> dict[str, Any]:
        changes = patch.changes()
        unknown = set(changes) - set(self.columns)
        if unknown:
            raise InvalidInput(
                f"{', '.join(sorted(unknown))} cannot be changed on {self.name}",
                details={"fields": sorted(unknown)},
            )
        json_changed = self.json_columns & set(changes)
        if json_changed:
            encoded = patch.model_dump(mode="json", include=set(json_changed))
            for column in json_changed:
                value = encoded[column]
                changes[column] = Jsonb(value if value is not None else _empty(self, column))
        return changes

    def update_sql(self, columns: Iterable[str]) -> str:
        """``UPDATE ... SET <columns> WHERE id = %(id)s RETURNING *``; with no columns a
        no-op write, so that ``updated_at`` still moves."""
        key = frozenset(columns)
        cached = self._updates.get(key)
        if cached is None:
            sets = ", ".join(f"{c} = %({c})s" for c in sorted(key)) or "id = id"
            cached = f"UPDATE {self.qualified} SET {sets} WHERE id = %(id)s RETURNING *"
            self._updates[key] = cached
        return cached

    def decode(self, row: Row) -> M:
        try:
            return self.model.model_validate(row)
        except ValidationError as exc:
            return self._repair(row, exc)

    def decode_all(self, rows: Iterable[Row]) -> list[M]:
        return [self.decode(row) for row in rows]

    def _repair(self, row: Row, exc: ValidationError) -> M:
        """A row whose JSON columns hold values of the wrong shape inside (a setting of
        the wrong type, say) is read with those columns emptied, and logged: a bad
        value written by hand must not make the entity unreadable."""
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        json_bad = bad & self.json_columns
        if not json_bad or bad - self.json_columns:
            raise MastraAdminError(
                f"a row of {self.name} cannot be read: {exc.error_count()} invalid value(s)",
                details={"table": self.name, "fields": sorted(bad)},
            ) from exc
        _log.warning(
            "pg.json_column_reset", table=self.name, id=row.get("id"), fields=sorted(json_bad)
        )
        fixed = {**row, **{column: _empty(self, column) for column in json_bad}}
        return self.model.model_validate(fixed)


def _empty(table: Table[Any], column: str) -> Any:
    """The empty JSON value of a column (a ``None`` patch clears to empty, never null)."""
    annotation = str(table.model.model_fields[column].annotation)
    return [] if annotation.startswith("list") else {}
