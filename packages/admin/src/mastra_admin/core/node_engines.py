"""Whether the Node.js a runner builds with satisfies what a project asks for.

A project states it in ``package.json`` (``engines.node``); its dependencies state it
in their own, which npm copies into ``package-lock.json`` (``packages[…].engines``),
so both are known before anything is installed. Mastra 1.71 asks for Node ≥ 22.13: a
server built with an older Node fails in ways far from the cause, so runners print
what is not satisfied at the top of the build log, and ``mastra-admin doctor`` checks
the platform's own Node against ``MASTRA_NODE_RANGE``.

Ranges follow npm's semver grammar as far as ``engines`` use it: ``||`` alternatives,
space-separated comparators (``>=``, ``>``, ``<=``, ``<``, ``=``), ``^``, ``~``, x-ranges
(``22``, ``22.x``, ``*``) and hyphen ranges (``20 - 22``). A range this cannot read is
reported as unreadable, never as satisfied or refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["MASTRA_NODE_RANGE", "node_warnings", "parse_version", "satisfies"]

MASTRA_NODE_RANGE = ">=22.13.0"
"""What ``@mastra/core`` 1.71 states in ``engines.node``."""

Version = tuple[int, int, int]
_VERSION = re.compile(r"v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+][0-9A-Za-z.+-]*)?")
_COMPARATOR = re.compile(r"(<=|>=|<|>|=|\^|~>?)?\s*(v?[\dxX*][\w.+-]*)")
_MAX_RANGE = 256
_MAX_REPORTED = 5


def parse_version(text: str) -> Version | None:
    """``v22.13.1`` → (22, 13, 1); None when it is no version."""
    match = _VERSION.fullmatch(text.strip())
    if match is None or not match.group(2) or not match.group(3):
        return None
    if not (match.group(2).isdigit() and match.group(3).isdigit()):
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _partial(text: str) -> tuple[int, ...] | None:
    """The numbers of a possibly partial version (``22``, ``22.x``, ``*`` → ())."""
    if text in ("*", "x", "X", ""):
        return ()
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    parts: list[int] = []
    for group in match.groups():
        if group is None or not group.isdigit():
            break
        parts.append(int(group))
    return tuple(parts)


def _bounds(op: str, parts: tuple[int, ...]) -> list[tuple[str, Version]]:
    """One comparator as lower/upper bounds on full versions."""
    if not parts:
        return []
    major = parts[0]
    minor = parts[1] if len(parts) > 1 else 0
    patch = parts[2] if len(parts) > 2 else 0
    low: Version = (major, minor, patch)
    if len(parts) == 1:
        next_up: Version = (major + 1, 0, 0)
    elif len(parts) == 2:
        next_up = (major, minor + 1, 0)
    else:
        next_up = (major, minor, patch + 1)
    if op in ("", "="):
        return [(">=", low), ("<", next_up)]
    if op == "^":
        if major > 0 or len(parts) == 1:
            return [(">=", low), ("<", (major + 1, 0, 0))]
        if minor > 0 or len(parts) == 2:
            return [(">=", low), ("<", (0, minor + 1, 0))]
        return [(">=", low), ("<", (0, 0, patch + 1))]
    if op in ("~", "~>"):
        upper: Version = (major + 1, 0, 0) if len(parts) == 1 else (major, minor + 1, 0)
        return [(">=", low), ("<", upper)]
    if op == ">":
        return [(">=", next_up)]
    if op == "<=":
        return [("<", next_up)]
    return [(op, low)]  # >= and <


def _comparator_set(text: str) -> list[tuple[str, Version]] | None:
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen is not None:
        low, high = _partial(hyphen.group(1)), _partial(hyphen.group(2))
        if low is None or high is None:
            return None
        return _bounds(">=", low) + _bounds("<=", high)
    bounds: list[tuple[str, Version]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _COMPARATOR.match(text, position)
        if match is None:
            return None
        parts = _partial(match.group(2))
        if parts is None:
            return None
        bounds += _bounds(match.group(1) or "", parts)
        position = match.end()
        while position < len(text) and text[position] == " ":
            position += 1
    return bounds


def satisfies(version: Version, spec: str) -> bool | None:
    """Whether ``version`` is in the range ``spec``; None when ``spec`` is unreadable."""
    if len(spec) > _MAX_RANGE:
        return None
    sets = [_comparator_set(part) for part in spec.split("||")]
    if any(s is None for s in sets):
        return None
    for bounds in sets:
        assert bounds is not None
        if all(version >= v if op == ">=" else version < v for op, v in bounds):
            return True
    return False


def _engines(package: Any) -> str | None:
    if not isinstance(package, dict):
        return None
    engines = package.get("engines")
    if isinstance(engines, dict) and isinstance(engines.get("node"), str):
        return str(engines["node"])
    return None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def node_warnings(project_root: Path, node_version: str) -> list[str]:
    """Lines for the top of a build log: what in the project (its own ``engines``, its
    locked dependencies') this Node does not satisfy. Empty when all is well."""
    version = parse_version(node_version)
    if version is None:
        return [f"WARNING: cannot tell the Node.js version ({node_version!r})"]
    shown = ".".join(map(str, version))
    warnings: list[str] = []
    own = _engines(_read(project_root / "package.json"))
    if own is not None:
        verdict = satisfies(version, own)
        if verdict is False:
            warnings.append(
                f"WARNING: the project asks for Node.js {own} (package.json engines.node); "
                f"this runner builds with Node.js {shown}"
            )
        elif verdict is None:
            warnings.append(f"WARNING: package.json engines.node {own!r} is not a range")
    lock = _read(project_root / "package-lock.json")
    packages = lock.get("packages") if isinstance(lock, dict) else None
    refused: list[str] = []
    if isinstance(packages, dict):
        for path, package in packages.items():
            spec = _engines(package)
            if not path or spec is None or satisfies(version, spec) is not False:
                continue
            refused.append(f"{path.rsplit('node_modules/', 1)[-1]} ({spec})")
    if refused:
        more = len(refused) - _MAX_REPORTED
        listed = ", ".join(refused[:_MAX_REPORTED]) + (f" and {more} more" if more > 0 else "")
        warnings.append(
            f"WARNING: dependencies ask for another Node.js than this runner's {shown}: {listed}"
        )
    return warnings
