"""``GitProjectSource``: Mastra projects in git repositories, one project per repository
(and app folder) that a user connected, kept in the platform's storage."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import structlog

from mastra_admin.core.encryption import EncryptionProvider
from mastra_admin.core.errors import InvalidInput, MastraAdminError, NotFound
from mastra_admin.core.models import SOURCE_SECRETS_KEY, Project
from mastra_admin.core.source import (
    ProjectSource,
    ProjectSourceProvider,
    RepositoryEvent,
    Revision,
    SourceConnection,
)
from mastra_admin.core.storage import AdminStorage
from mastra_admin.sources.git._config import (
    GitConnectConfig,
    parse_connect_config,
    parse_stored_credential,
)
from mastra_admin.sources.git._credentials import HttpsToken, SshKey
from mastra_admin.sources.git._errors import CommitNotFound, GitError, RefNotFound
from mastra_admin.sources.git._git import Commit, GitCache
from mastra_admin.sources.git._identity import (
    cache_key_for,
    repository_key_for,
    repository_name,
    source_id_for,
)
from mastra_admin.sources.git._inspect import inspect_commit
from mastra_admin.sources.git._settings import GitSourceSettings
from mastra_admin.sources.git._url import RepositoryUrl, Resolver, check_repository_url
from mastra_admin.sources.git._webhooks import parse_webhook, signature_matches

__all__ = ["BUILD_EXCLUDES", "GitProjectSource"]

_log = structlog.get_logger("mastra_admin.sources.git.provider")

BUILD_EXCLUDES: tuple[str, ...] = ("node_modules", "dist", ".next", ".mastra")
"""Names left out of build copies at any depth, as the local source does (``.git`` is
never exported at all)."""

_SOURCE_ID = re.compile(r"[0-9a-f]{32}")
_SHA = re.compile(r"[0-9a-fA-F]{40}")
_PAGE = 200


def _not_found(source_id: object) -> NotFound:
    shown = source_id[:100] if isinstance(source_id, str) else repr(source_id)[:100]
    return NotFound(f"no git project with source id {shown!r}", details={"source_id": shown})


def _author(commit: Commit) -> str:
    return f"{commit.author_name} <{commit.author_email}>"


def _display_path(url: str, subdirectory: str | None) -> str:
    return f"{url}#{subdirectory}" if subdirectory else url


class GitProjectSource(ProjectSourceProvider):
    """Projects in git repositories (https, ssh, or local under ``file_base_paths``).

    A project is made by ``connect`` from a URL, an optional app folder, credential and
    webhook secret; what to keep is returned for the project's ``source_config``, with
    the secrets encrypted. Everything later (``pin``, copies, access checks) reads the
    repository, and decrypts the credential, from the stored project found by
    ``source_id``: a ``ProjectSource`` handed in never chooses the URL a credential
    is sent to.
    """

    type: ClassVar[str] = "git"
    connects: ClassVar[bool] = True

    def __init__(
        self,
        settings: GitSourceSettings,
        *,
        storage: AdminStorage,
        encryption: EncryptionProvider,
        cache_dir: Path,
        data_dir: Path | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.encryption = encryption
        self.cache = GitCache(cache_dir, settings, resolve=resolve)
        self._resolve = resolve
        # Local repositories are never read from the platform's own folders: the
        # cache holds every team's repositories, the data dir its keys and builds.
        self._private_roots = tuple(
            os.path.realpath(root) for root in (cache_dir, data_dir) if root is not None
        )

    # -- connecting ------------------------------------------------------------

    async def connect(
        self, team_id: str, config: Mapping[str, Any], *, default_branch: str
    ) -> SourceConnection:
        """Check the settings, fetch ``default_branch`` and judge the project in it."""
        if not isinstance(team_id, str) or not team_id:
            raise InvalidInput("a team id is needed", details={"field": "team_id"})
        given = parse_connect_config(config)
        if not isinstance(default_branch, str) or _SHA.fullmatch(default_branch):
            raise InvalidInput(
                "default_branch names a branch, not a commit id",
                details={"field": "default_branch"},
            )
        url = await self._check_url(given.url)
        credential = given.credential.credential() if given.credential is not None else None
        self._check_credential_kind(url, credential)
        cache_key = cache_key_for(team_id, url)
        commit = await self._fetch_for_connect(cache_key, url, default_branch, credential)
        folder = given.subdirectory
        if folder is not None and not await self._is_folder(cache_key, commit.sha, folder):
            raise InvalidInput(
                f"subdirectory {folder!r} is not a folder on {default_branch!r}",
                details={"field": "source.subdirectory"},
            )
        info = await inspect_commit(self.cache, cache_key, commit.sha, folder)
        source_id = source_id_for(team_id, url, folder)
        name = info.name or (folder.rsplit("/", 1)[-1] if folder else None) or repository_name(url)
        source = ProjectSource(
            id=source_id,
            name=name,
            type=self.type,
            path=_display_path(url.display, folder),
            default_branch=default_branch,
            metadata={
                **info.metadata(),
                "url": url.display,
                "subdirectory": folder,
                "commit_sha": commit.sha,
            },
        )
        stored: dict[str, Any] = {
            "url": url.display,
            "subdirectory": folder,
            "cache_key": cache_key,
            "repository_key": repository_key_for(url),
            "credential_type": given.credential.type if given.credential is not None else None,
        }
        secrets = self._encrypt_secrets(given)
        if secrets:
            stored[SOURCE_SECRETS_KEY] = secrets
        _log.info(
            "source.git.connected",
            team_id=team_id,
            url=url.display,
            source_id=source_id,
            sha=commit.sha,
            valid=info.valid,
        )
        return SourceConnection(source=source, config=stored)

    async def _is_folder(self, cache_key: str, sha: str, folder: str) -> bool:
        entry = (await self.cache.entries(cache_key, sha, [folder])).get(folder)
        return entry is not None and entry.kind == "tree"

    async def _check_url(self, text: str) -> RepositoryUrl:
        try:
            url = await asyncio.to_thread(
                check_repository_url, text, self.settings, resolve=self._resolve
            )
        except MastraAdminError as exc:
            exc.details.setdefault("field", "source.url")
            raise
        if url.is_local and any(
            url.path == root or url.path.startswith(root.rstrip("/") + "/")
            for root in self._private_roots
        ):
            raise InvalidInput(
                "repository URL refused: a local repository may not be inside the "
                "platform's data or git cache folder",
                details={"field": "source.url", "url": url.display},
            )
        return url

    @staticmethod
    def _check_credential_kind(url: RepositoryUrl, credential: HttpsToken | SshKey | None) -> None:
        if credential is None:
            return
        needs = {"https": "https_token", "http": "https_token", "ssh": "ssh_key"}.get(url.scheme)
        given = "https_token" if isinstance(credential, HttpsToken) else "ssh_key"
        if needs != given:
            raise InvalidInput(
                f"source.credential: a {url.scheme} repository takes "
                + (f"an {needs} credential" if needs else "no credential"),
                details={"field": "source.credential"},
            )

    async def _fetch_for_connect(
        self,
        cache_key: str,
        url: RepositoryUrl,
        branch: str,
        credential: HttpsToken | SshKey | None,
    ) -> Commit:
        try:
            return await self.cache.fetch(cache_key, url, branch, credential)
        except RefNotFound as exc:
            exc.details["field"] = "default_branch"
            raise
        except GitError as exc:
            exc.details.setdefault("field", "source.url")
            raise
        except InvalidInput as exc:
            exc.details.setdefault("field", "default_branch")  # not a branch name
            raise

    def _encrypt_secrets(self, given: GitConnectConfig) -> dict[str, str]:
        secrets: dict[str, str] = {}
        if given.credential is not None:
            secrets["credential"] = self.encryption.encrypt(json.dumps(given.credential.stored()))
        if given.webhook_secret is not None:
            secrets["webhook_secret"] = self.encryption.encrypt(
                given.webhook_secret.get_secret_value()
            )
        return secrets

    # -- projects from storage -------------------------------------------------------

    def _source_of(self, project: Project) -> ProjectSource:
        config = project.source_config
        url = str(config.get("url") or "")
        subdirectory = config.get("subdirectory") or None
        return ProjectSource(
            id=str(config.get("source_id") or ""),
            name=str(config.get("name") or project.name),
            type=self.type,
            path=str(config.get("path") or _display_path(url, subdirectory)),
            default_branch=project.default_branch,
            metadata={
                "url": url,
                "subdirectory": subdirectory,
                "package_manager": str(config.get("package_manager") or "npm"),
                "credential_type": config.get("credential_type"),
            },
        )

    async def source_for(self, project: Project) -> ProjectSource:
        """The project's source as its ``source_config`` describes it (no network)."""
        if project.source_type != self.type:
            raise InvalidInput(
                f"the git source cannot read a {project.source_type!r} project",
                details={"source_type": project.source_type},
            )
        return self._source_of(project)

    async def _stored(self, source_id: str) -> Project:
        """The stored project of ``source_id`` (of several, the one changed last: it
        holds the newest credential)."""
        if not isinstance(source_id, str) or not _SOURCE_ID.fullmatch(source_id):
            raise _not_found(source_id)
        projects = await self.storage.projects.find_by_source(self.type, "source_id", source_id)
        projects = [p for p in projects if p.source_type == self.type]
        if not projects:
            raise _not_found(source_id)
        return max(projects, key=lambda project: project.updated_at)

    async def _team_projects(self, team_id: str) -> list[Project]:
        found: list[Project] = []
        while True:
            page = await self.storage.projects.list_for_team(
                team_id, limit=_PAGE, offset=len(found)
            )
            found += page
            if len(page) < _PAGE:
                return found

    async def _team_ids(self) -> list[str]:
        ids: list[str] = []
        while True:
            page = await self.storage.teams.list_all(limit=_PAGE, offset=len(ids))
            ids += [team.id for team in page]
            if len(page) < _PAGE:
                return ids

    async def list_projects(self, team_id: str | None = None) -> list[ProjectSource]:
        """The git projects in storage, of one team or of every team; one per source id."""
        teams = [team_id] if team_id is not None else await self._team_ids()
        sources: dict[str, ProjectSource] = {}
        for team in teams:
            for project in await self._team_projects(team):
                if project.source_type != self.type or not project.source_id:
                    continue
                sources.setdefault(project.source_id, self._source_of(project))
        return list(sources.values())

    async def get_project(self, source_id: str) -> ProjectSource:
        return self._source_of(await self._stored(source_id))

    # -- reading the repository ------------------------------------------------------

    def _credential(self, project: Project) -> HttpsToken | SshKey | None:
        secrets = project.source_config.get(SOURCE_SECRETS_KEY)
        ciphertext = secrets.get("credential") if isinstance(secrets, dict) else None
        if not ciphertext:
            return None
        try:
            plaintext = self.encryption.decrypt(str(ciphertext))
        except MastraAdminError:
            raise InvalidInput(
                "the project's git credential cannot be decrypted (was the encryption key "
                "replaced?); set the credential again",
                details={"project_id": project.id},
            ) from None
        return parse_stored_credential(plaintext)

    async def _repository(
        self, source: ProjectSource
    ) -> tuple[Project, RepositoryUrl, HttpsToken | SshKey | None]:
        if source.type != self.type:
            raise InvalidInput(
                f"the git source cannot read a {source.type!r} project",
                details={"type": source.type},
            )
        project = await self._stored(source.id)
        url = await self._check_url(str(project.source_config.get("url") or ""))
        return project, url, self._credential(project)

    @staticmethod
    def _cache_key(project: Project) -> str:
        return str(project.source_config.get("cache_key") or "")

    async def pin(self, source: ProjectSource, ref: str) -> tuple[ProjectSource, Revision]:
        """Fetch ``ref`` (a branch, a tag, a full commit id, ``pull/7/head``) and pin the
        source to its commit."""
        project, url, credential = await self._repository(source)
        commit = await self.cache.fetch(self._cache_key(project), url, ref, credential)
        pinned = source.model_copy(
            update={"metadata": {**source.metadata, "commit_sha": commit.sha, "ref": ref}}
        )
        _log.info("source.git.pinned", source_id=source.id, ref=ref[:200], sha=commit.sha)
        return pinned, Revision(
            ref=ref, sha=commit.sha, message=commit.message, author=_author(commit)
        )

    async def get_project_path(self, source: ProjectSource, target_dir: Path) -> Path:
        """Export the pinned commit (unpinned: the default branch's tip, fetched now)
        into ``target_dir`` without ``.git`` and ``BUILD_EXCLUDES``; the app folder."""
        project, url, credential = await self._repository(source)
        key = self._cache_key(project)
        sha = source.metadata.get("commit_sha")
        if sha is None:
            sha = (await self.cache.fetch(key, url, project.default_branch, credential)).sha
        elif not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise InvalidInput(
                "metadata commit_sha is not a 40-digit commit id", details={"source_id": source.id}
            )
        subdirectory = project.source_config.get("subdirectory") or None
        try:
            root = await self._export(key, sha, target_dir, subdirectory)
        except CommitNotFound:
            # Pinned elsewhere (another worker) or the cache was emptied since: the export
            # finds out (it lists the commit first), so a build pinned here starts no
            # process to ask.
            await self.cache.fetch(key, url, sha, credential)
            root = await self._export(key, sha, target_dir, subdirectory)
        _log.info("source.git.exported", source_id=source.id, sha=sha, target=str(target_dir))
        return root

    async def _export(self, key: str, sha: str, target_dir: Path, subdirectory: str | None) -> Path:
        return await self.cache.export(
            key,
            sha,
            Path(target_dir),
            subdirectory,
            exclude=BUILD_EXCLUDES,
            spare=self.settings.spare_exports,
        )

    async def close(self) -> None:
        """Stop preparing spare exports and remove them (see ``GitCache.export``)."""
        await self.cache.close()

    async def validate_access(self, source: ProjectSource) -> bool:
        """Whether the default branch can be fetched now."""
        try:
            project, url, credential = await self._repository(source)
            await self.cache.fetch(
                self._cache_key(project), url, project.default_branch, credential
            )
        except MastraAdminError as exc:
            _log.info("source.git.access_denied", source_id=source.id, code=exc.code)
            return False
        return True

    # -- webhooks --------------------------------------------------------------------

    def read_webhook(self, headers: Mapping[str, str], body: bytes) -> RepositoryEvent:
        """A GitHub or Gitea delivery as a ``RepositoryEvent`` (not trusted yet)."""
        return parse_webhook(headers, body)

    def verify_webhook(self, project: Project, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether ``X-Hub-Signature-256`` is the body's HMAC under the project's secret;
        False without a secret, or when it cannot be decrypted."""
        if project.source_type != self.type:
            return False
        secrets = project.source_config.get(SOURCE_SECRETS_KEY)
        ciphertext = secrets.get("webhook_secret") if isinstance(secrets, dict) else None
        if not ciphertext:
            return False
        try:
            secret = self.encryption.decrypt(str(ciphertext))
        except Exception as exc:
            _log.warning(
                "source.git.webhook_secret_unreadable",
                project_id=project.id,
                error=type(exc).__name__,
            )
            return False
        return signature_matches(secret, headers, body)
