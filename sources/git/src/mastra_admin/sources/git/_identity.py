"""The names a git project is known by: its cache key, its source id, and the repository
key that webhook deliveries are matched with."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from urllib.parse import unquote, urlsplit

from mastra_admin.sources.git._url import RepositoryUrl

__all__ = [
    "cache_key_for",
    "repository_key_for",
    "repository_key_from_text",
    "repository_name",
    "source_id_for",
]

_SCP = re.compile(r"(?:[^@/\[\]]+@)?(?P<host>\[[^\]/]*\]|[^:/\[\]@]+):(?P<path>.*)", re.S)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def cache_key_for(team_id: str, url: RepositoryUrl) -> str:
    """32 hex digits of SHA-256(team id NUL canonical URL): one cached repository per
    team and repository, never shared between teams."""
    return _digest(team_id, url.url)


def source_id_for(team_id: str, url: RepositoryUrl, subdirectory: str | None) -> str:
    """32 hex digits of SHA-256(team id NUL canonical URL NUL subdirectory)."""
    return _digest(team_id, url.url, subdirectory or "")


def _host(text: str) -> str:
    host = text.strip("[]").lower().removesuffix(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _key(host: str, path: str) -> str:
    parts = [part for part in path.split("/") if part]
    joined = "/".join(parts).lower().removesuffix(".git").rstrip("/")
    return f"{_host(host)}/{joined}"


def repository_key_for(url: RepositoryUrl) -> str:
    """The repository's identity across URL forms: lower-case host and path without
    port, user, ``.git`` or slashes at the ends (``github.com/acme/agent`` for
    ``https://github.com/Acme/Agent.git``, ``git@github.com:acme/agent.git`` and
    ``ssh://git@github.com/acme/agent``); the real path for local repositories."""
    if url.is_local:
        return url.path
    path = unquote(url.path) if url.scheme in ("https", "http") else url.path
    return _key(url.host, path)


def repository_key_from_text(text: str) -> str | None:
    """``repository_key_for`` of a URL read from a webhook (not checked, never resolved);
    ``None`` when ``text`` names no repository."""
    if not text or len(text) > 2048 or any(ch.isspace() or not ch.isprintable() for ch in text):
        return None
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme.lower() == "file":
            return os.path.normpath(unquote(parts.path)) if parts.path.startswith("/") else None
        if not host or not parts.path.strip("/"):
            return None
        path = unquote(parts.path) if parts.scheme.lower() in ("https", "http") else parts.path
        return _key(host, path)
    if text.startswith("/"):
        return os.path.normpath(text)
    scp = _SCP.fullmatch(text)
    if scp is None or not scp.group("path").strip("/"):
        return None
    return _key(scp.group("host"), scp.group("path"))


def repository_name(url: RepositoryUrl) -> str:
    """The last part of the repository's path without ``.git`` (``agent``)."""
    last = [part for part in url.path.split("/") if part][-1:] or [url.host]
    name = last[0]
    return name[: -len(".git")] if name.lower().endswith(".git") and len(name) > 4 else name
