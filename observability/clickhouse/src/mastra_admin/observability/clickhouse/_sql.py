"""Building SQL with typed parameters: one statement text for every transport.

Values never enter the SQL text: every filter is a ``{name:Type}`` placeholder and
the value travels beside it (the transport renders it for its protocol). The few
literals that must sit in a statement (``SETTINGS`` of an insert, DDL) go through
``quote``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "ParamValue",
    "Statement",
    "Where",
    "ch_datetime",
    "escape_param_text",
    "quote",
    "render_settings",
]

ParamValue = str | int | float | bool | list[str]
"""What a placeholder may carry (a list for ``Array(String)``); datetimes are given as
text (see ``ch_datetime``)."""

DATETIME_TYPE = "DateTime64(3, 'UTC')"


def ch_datetime(value: datetime) -> str:
    """A moment as ClickHouse reads a ``DateTime64(3, 'UTC')`` parameter, to the ms.

    Naive datetimes are taken as UTC. Text rather than a ``datetime`` object because
    clickhouse-driver drops the sub-second part of datetime parameters."""
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


_QUOTE_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def quote(value: str) -> str:
    """A ClickHouse string literal (single quotes, backslash escapes)."""
    return "'" + "".join(_QUOTE_ESCAPES.get(c, c) for c in value) + "'"


_TEXT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def escape_param_text(value: ParamValue) -> str:
    """A parameter value in the escaped text form the engine parses (chDB's ``params``).

    Strings are TSV-escaped (a backslash, tab, newline, carriage return and NUL are
    written as escape sequences, so ``\\N`` stays text instead of meaning NULL);
    booleans are ``true``/``false``; numbers are written plainly; a list is an array
    literal of quoted strings."""
    if isinstance(value, list):
        return "[" + ", ".join(quote(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return "".join(_TEXT_ESCAPES.get(c, c) for c in value)


def render_settings(settings: Mapping[str, ParamValue]) -> str:
    """``SETTINGS a = 1, b = 'x'`` (empty when there are none)."""
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a setting name: {name!r}")
        if isinstance(value, list):
            raise ValueError(f"setting {name!r} cannot be a list")
        if isinstance(value, bool):
            rendered = "1" if value else "0"
        elif isinstance(value, int | float):
            rendered = str(value)
        else:
            rendered = quote(value)
        parts.append(f"{name} = {rendered}")
    return "SETTINGS " + ", ".join(parts)


@dataclass
class Statement:
    """SQL text with ``{name:Type}`` placeholders and the values that fill them."""

    sql: str
    params: dict[str, ParamValue] = field(default_factory=dict)


class Where:
    """Conditions joined with AND, each with its own typed placeholders.

    >>> w = Where()
    >>> w.equals("project_id", "p1")
    >>> w.sql()
    'WHERE project_id = {p0:String}'
    """

    def __init__(self, prefix: str = "p") -> None:
        self.clauses: list[str] = []
        self.params: dict[str, ParamValue] = {}
        self._names = (f"{prefix}{i}" for i in itertools.count())

    def param(self, value: ParamValue, type_: str) -> str:
        """A new placeholder for ``value``; returns its ``{name:Type}`` text."""
        name = next(self._names)
        self.params[name] = value
        return f"{{{name}:{type_}}}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def equals(self, column: str, value: str | None) -> None:
        if value is not None:
            self.add(f"{column} = {self.param(value, 'String')}")

    def one_of(self, column: str, values: Iterable[str]) -> None:
        """``column IN (...)``: one scalar placeholder per value (never empty)."""
        items = list(values)
        if not items:
            self.add("0")
            return
        self.add(f"{column} IN ({', '.join(self.param(v, 'String') for v in items)})")

    def in_array(self, column: str, values: list[str]) -> None:
        """``column IN {p:Array(String)}``: one placeholder however many values."""
        self.add(f"{column} IN {self.param(list(values), 'Array(String)')}")

    def contains(self, column: str, text: str | None) -> None:
        """Case-insensitive substring (no pattern characters to escape)."""
        if text:
            self.add(f"positionCaseInsensitiveUTF8({column}, {self.param(text, 'String')}) > 0")

    def since(self, column: str, moment: datetime | None) -> None:
        if moment is not None:
            self.add(f"{column} >= {self.param(ch_datetime(moment), DATETIME_TYPE)}")

    def until(self, column: str, moment: datetime | None, *, inclusive: bool = True) -> None:
        if moment is not None:
            op = "<=" if inclusive else "<"
            self.add(f"{column} {op} {self.param(ch_datetime(moment), DATETIME_TYPE)}")

    def at_least(self, column: str, value: float | None) -> None:
        if value is not None:
            self.add(f"{column} >= {self.param(float(value), 'Float64')}")

    def at_most(self, column: str, value: float | None) -> None:
        if value is not None:
            self.add(f"{column} <= {self.param(float(value), 'Float64')}")

    def sql(self) -> str:
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""
