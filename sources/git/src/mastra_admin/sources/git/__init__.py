"""MastraAdmin's ``git`` project source (``GitProjectSource``, registered as the
``source`` provider ``git``) and the git layer under it: checks repository URLs,
fetches one ref at a time into a per-key bare cache, and writes a commit's files into
build folders.

    from mastra_admin.sources.git import GitCache, GitSourceSettings, check_repository_url

    settings = GitSourceSettings()
    url = check_repository_url("https://github.com/mastra-ai/template.git", settings)
    cache = GitCache(settings.resolved_cache_dir(data_dir), settings)
    commit = await cache.fetch(key, url, "main", HttpsToken(token=token))
    root = await cache.export(key, commit.sha, Path("/var/builds/b-1/src"))
"""

from mastra_admin.sources.git._archive import ExportStats
from mastra_admin.sources.git._credentials import Credential, HttpsToken, SshKey
from mastra_admin.sources.git._errors import (
    CommitNotFound,
    GitError,
    GitHostUnreachable,
    GitTimeout,
    RefNotFound,
    RepositoryTooLarge,
    RepositoryUnreadable,
    UnsafeTree,
)
from mastra_admin.sources.git._git import (
    Commit,
    GitCache,
    TreeEntry,
    check_cache_key,
    check_subdirectory,
)
from mastra_admin.sources.git._identity import (
    cache_key_for,
    repository_key_for,
    repository_key_from_text,
    source_id_for,
)
from mastra_admin.sources.git._provider import BUILD_EXCLUDES, GitProjectSource
from mastra_admin.sources.git._settings import GitSourceSettings
from mastra_admin.sources.git._url import (
    RepositoryUrl,
    Resolver,
    check_repository_url,
    is_public_address,
    redact_url,
    resolve_host,
)
from mastra_admin.sources.git._webhooks import parse_webhook, signature_matches
from mastra_admin.sources.git.version import __version__

__all__ = [
    "BUILD_EXCLUDES",
    "Commit",
    "CommitNotFound",
    "Credential",
    "ExportStats",
    "GitCache",
    "GitError",
    "GitHostUnreachable",
    "GitProjectSource",
    "GitSourceSettings",
    "GitTimeout",
    "HttpsToken",
    "RefNotFound",
    "RepositoryTooLarge",
    "RepositoryUnreadable",
    "RepositoryUrl",
    "Resolver",
    "SshKey",
    "TreeEntry",
    "UnsafeTree",
    "__version__",
    "cache_key_for",
    "check_cache_key",
    "check_repository_url",
    "check_subdirectory",
    "is_public_address",
    "parse_webhook",
    "redact_url",
    "repository_key_for",
    "repository_key_from_text",
    "resolve_host",
    "signature_matches",
    "source_id_for",
]
