"""Glob matching for include/exclude settings and for workspace package patterns."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

__all__ = ["NamePatterns", "workspace_pattern_matches"]


class NamePatterns:
    """Shell-style globs matched against a name or a ``/``-separated relative path.

    ``matches("dist", "packages/web/dist")`` is true for the pattern ``dist`` (a name)
    and for ``packages/*/dist`` (a path). Compiled once into one regular expression.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip().strip("/") for p in patterns if p.strip().strip("/"))
        if self.patterns:
            joined = "|".join(fnmatch.translate(p) for p in self.patterns)
            self._regex: re.Pattern[str] | None = re.compile(joined)
        else:
            self._regex = None

    def __bool__(self) -> bool:
        return self._regex is not None

    def matches(self, name: str, relative: str) -> bool:
        if self._regex is None:
            return False
        return self._regex.match(name) is not None or self._regex.match(relative) is not None


def _workspace_regex(pattern: str) -> re.Pattern[str]:
    """npm/yarn/pnpm workspace globs: ``*`` is one path segment, ``**`` any number."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def workspace_pattern_matches(patterns: Iterable[str], relative: str) -> bool:
    """Whether a package at ``relative`` (``/``-separated, from the workspace root)
    belongs to a workspace declared with ``patterns``; ``!pattern`` excludes."""
    included = False
    for raw in patterns:
        pattern = raw.strip()
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip()
        while pattern.startswith("./"):
            pattern = pattern[2:]
        pattern = pattern.rstrip("/")
        if not pattern:
            continue
        if _workspace_regex(pattern).match(relative):
            included = not negate
    return included
