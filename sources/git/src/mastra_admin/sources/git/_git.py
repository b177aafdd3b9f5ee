"""``GitCache``: one bare repository per cache key, shallow fetches of one ref at a time,
and exports of a commit's files into build folders."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from mastra_admin.core.errors import InvalidInput, MastraAdminError, PayloadTooLarge
from mastra_admin.sources.git._archive import (
    ExportStats,
    clear_target,
    prepare_target,
)
from mastra_admin.sources.git._credentials import HttpsToken, SshKey
from mastra_admin.sources.git._errors import (
    CommitNotFound,
    GitError,
    GitHostUnreachable,
    RefNotFound,
    RepositoryTooLarge,
    RepositoryUnreadable,
    UnsafeTree,
)
from mastra_admin.sources.git._export import (
    CHECKOUT_CONFIG,
    MAX_CHECKOUTS,
    ExportPlan,
    NameRecord,
    TreeItem,
    checkout_shares,
    finish_export,
    index_info,
    link_texts,
    make_folders,
    modes_need_fixing,
    parse_batch,
    parse_listing,
    parse_names,
    plan_export,
    run_git_input,
    sized_items,
)
from mastra_admin.sources.git._process import (
    SAFE_CONFIG,
    GitEnvironment,
    GitResult,
    Watch,
    find_git,
    git_environment,
    run_git,
)
from mastra_admin.sources.git._settings import GitSourceSettings
from mastra_admin.sources.git._spare import (
    Changes,
    Manifest,
    apply_changes,
    changes_between,
    wanted_blobs,
)
from mastra_admin.sources.git._url import RepositoryUrl, Resolver, check_repository_url

__all__ = ["Commit", "GitCache", "TreeEntry", "check_cache_key", "check_subdirectory"]

_log = structlog.get_logger("mastra_admin.sources.git")
_T = TypeVar("_T")

_KEY = re.compile(r"[a-f0-9]{16,64}")
_SHA = re.compile(r"[0-9a-fA-F]{40}")
_MAX_REF = 1024
_MAX_SUBDIRECTORY = 1024
_MAX_MESSAGE = 4096
_MAX_NAME = 256
_LOG_FORMAT = "%H%x00%an%x00%ae%x00%cI%x00%B"
_MAX_LISTING = 128 * 2**20
"""Largest ``git ls-tree -r`` listing an export reads (about a million paths)."""
_MAX_SPARE_READ = 64 * 2**20
"""Most bytes of changed files an export from a spare reads into memory at once; a
larger change is written by the full export, which streams."""
_MAX_REFS_KEPT = 1024
_STALE_HOME_S = 3600.0
# Byte-exact exports: attributes in the commit may not drop files (export-ignore),
# rewrite them (export-subst, eol, filters) or run anything.
_INFO_ATTRIBUTES = (
    "* -export-ignore -export-subst -text -eol -filter -ident -working-tree-encoding\n"
)

_UNREACHABLE = (
    "could not resolve host",
    "could not resolve hostname",
    "failed to connect",
    "connection refused",
    "connection timed out",
    "connection reset",
    "no route to host",
    "network is unreachable",
    "temporary failure in name resolution",
    "name or service not known",
    "operation timed out",
    "ssl connect error",
)
_UNREADABLE = (
    "not found",
    "repository not found",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied",
    "access denied",
    "does not appear to be a git repository",
    "could not read from remote repository",
    "returned error: 401",
    "returned error: 403",
    "returned error: 404",
    "invalid username or password",
    "host key verification failed",
)
_UNSAFE_MARKERS = (
    "invalid path",
    "Ignoring path",
    "beyond a symbolic link",
    "empty filename in tree entry",
)
_REDIRECT = re.compile(r"returned error: 30[0-9]")
_SERVER_ERROR = re.compile(r"returned error: 5[0-9][0-9]")
_MISSING_REF = ("couldn't find remote ref", "no such remote ref")
_MISSING_COMMIT = (
    "not our ref",
    "unadvertised object",
    "couldn't find remote ref",
    "no such remote ref",
    "bad object",
    "unable to read",
)


@dataclass(frozen=True)
class Commit:
    """A fetched commit. ``message`` is at most 4 KB (UTF-8), names at most 256 characters."""

    sha: str
    message: str
    author_name: str
    author_email: str
    committed_at: datetime


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a folder in a commit: ``kind`` is ``blob`` (files and symlinks),
    ``tree`` (folders) or ``commit`` (submodules); ``mode`` is git's octal text."""

    name: str
    mode: str
    kind: str
    oid: str

    @property
    def is_file(self) -> bool:
        """A regular file (not a symlink, folder or submodule)."""
        return self.kind == "blob" and self.mode in ("100644", "100755")


def check_cache_key(key: str) -> str:
    """``key`` when it is 16 to 64 lower-case hex digits, else ``InvalidInput``."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput(
            "a git cache key is 16 to 64 lower-case hex digits",
            details={"key": repr(key)[:100]},
        )
    return key


def _is_sha(ref: str) -> bool:
    return bool(_SHA.fullmatch(ref))


def check_subdirectory(subdirectory: str, *, what: str = "subdirectory") -> str:
    """A relative path inside a commit, normalised (no trailing ``/``); ``InvalidInput``
    for absolute paths, ``.``, ``..`` or empty parts, ``.git`` and control characters."""

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"{what} refused: {reason}", details={what: repr(subdirectory)[:300]})

    if not isinstance(subdirectory, str) or not subdirectory.strip("/"):
        raise refuse("it is empty")
    if len(subdirectory) > _MAX_SUBDIRECTORY:
        raise refuse(f"it is longer than {_MAX_SUBDIRECTORY} characters")
    if subdirectory.startswith("/"):
        raise refuse("it is an absolute path")
    if any(not ch.isprintable() for ch in subdirectory):
        raise refuse("it contains control characters")
    parts = subdirectory.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise refuse("it has empty, '.' or '..' parts")
    if any(part.lower() == ".git" for part in parts):
        raise refuse("it names a .git folder")
    return "/".join(parts)


def _cut_utf8(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes, never ending inside a UTF-8 character."""
    if len(data) <= limit:
        return data
    end = limit
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end]


def _disk_usage(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _remove_repository(path: Path) -> None:
    # Renamed first so that a half-removed repository is never taken for a good one.
    doomed = path.with_name(f".removed-{path.name}-{secrets.token_hex(4)}")
    with contextlib.suppress(FileNotFoundError):
        path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _is_real_folder(path: str) -> bool:
    return os.path.realpath(path) == path and os.path.isdir(path)


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)`` in a thread; cancelled, it still waits for the thread to end (a
    thread cannot be stopped) so that nothing is written after the caller cleans up."""
    running = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await running
        raise


def _check_folder(items: list[TreeItem], folder: str | None, sha: str) -> None:
    """``InvalidInput`` unless the app folder ``folder`` (when given) is a folder of the
    commit's listing ``items``."""
    if folder is not None and not any(
        item.path == os.fsencode(folder) and item.kind == b"tree" for item in items
    ):
        raise InvalidInput(
            f"subdirectory {folder!r} is not a folder in commit {sha}",
            details={"subdirectory": folder, "sha": sha},
        )


@dataclass(frozen=True)
class _Spare:
    """A spare: ``folder`` holds ``tree`` (a full export of ``sha`` without ``exclude``)
    and ``manifest`` (what that export planned)."""

    sha: str
    exclude: frozenset[str]
    folder: str

    @property
    def tree(self) -> str:
        return os.path.join(self.folder, "tree")

    @property
    def manifest(self) -> str:
        return os.path.join(self.folder, "manifest")


@dataclass
class _Preparation:
    """A spare being prepared. It is stopped by setting ``stop`` (it gives up at its
    next step), never by cancelling its task: Python 3.11's asyncio waits forever for a
    process whose start was cancelled while its pipes were being connected."""

    sha: str
    exclude: frozenset[str]
    task: asyncio.Future[None] | None = None
    stop: bool = False


class _Stopped(Exception):
    """A spare's preparation was stopped (closed cache, newer commit, removed key)."""


class _NotFromSpare(Exception):
    """This export cannot be made from the spare (not an error: the full export runs)."""


def _read_manifest(path: str) -> Manifest:
    with open(path, "rb") as handle:
        return Manifest.load(handle.read())


def _names_and_wanted(
    data: bytes, manifest: Manifest, excluded: frozenset[bytes]
) -> tuple[list[NameRecord], set[bytes]]:
    records = parse_names(data)
    return records, wanted_blobs(records, manifest, excluded)


def _apply_and_check(
    tree: str,
    changes: Changes,
    blobs: dict[bytes, bytes],
    plan: ExportPlan,
    links: list[tuple[str, str]],
) -> tuple[ExportStats, float]:
    """``apply_changes`` then ``finish_export`` (one thread for both); the figures and
    when the changes were written."""
    apply_changes(tree, changes, blobs)
    written = time.perf_counter()
    return finish_export(tree, plan, links), written


def _seal(folder: str, manifest: bytes) -> None:
    """Write the manifest last: a spare folder without one is never used."""
    fd = os.open(
        os.path.join(folder, "manifest"),
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
    )
    with os.fdopen(fd, "wb") as handle:
        handle.write(manifest)


def _new_target_beside(target_dir: Path, spare: str) -> str | None:
    """``target_dir`` made absolute when it does not exist yet and its nearest existing
    parent is on the file system of ``spare`` (a rename can move the spare there)."""
    target = os.path.abspath(target_dir)
    if os.path.lexists(target):
        return None
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    try:
        same = os.stat(parent).st_dev == os.stat(spare).st_dev
    except OSError:
        return None
    return target if same else None


def _rename_into(tree: str, target: str, forbidden: str) -> str:
    """Move the verified spare ``tree`` to ``target`` (checked and made as for any
    export, then replaced: its mode is kept) and return the real target. ``OSError``
    when the target was there already, or the rename is refused (``EXDEV``: another
    file system); the target is then removed again."""
    real, created = prepare_target(target, forbidden=forbidden)
    if not created:
        raise OSError(errno.EEXIST, "the export folder appeared meanwhile", target)
    try:
        os.chmod(tree, stat.S_IMODE(os.stat(real).st_mode))
        os.rename(tree, real)
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(real)
        raise
    return real


async def _rename_in_thread(tree: str, target: str, forbidden: str) -> str:
    """``_rename_into`` in a thread; cancelled, it waits for the thread and removes the
    target it filled, as any cancelled export leaves nothing."""
    renaming = asyncio.ensure_future(asyncio.to_thread(_rename_into, tree, target, forbidden))
    try:
        return await asyncio.shield(renaming)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            real = await renaming
            await asyncio.to_thread(clear_target, real, True)
        raise


def _make_spare_home(root: Path) -> tuple[str, int]:
    """A folder for this cache's spares, ``<root>/.spares/i-<random>``, locked (``flock``)
    for the life of the process; the folders of caches that are gone (their lock is
    free), and folders left half made an hour ago, are removed."""
    spares = root / ".spares"
    spares.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    making = spares / f".new-{token}"
    making.mkdir(mode=0o700)
    lock = os.open(making / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    home = spares / f"i-{token}"
    making.rename(home)
    for entry in os.scandir(spares):
        if entry.name == home.name:
            continue
        if entry.name.startswith("i-"):
            with contextlib.suppress(OSError):
                other = os.open(
                    os.path.join(entry.path, "lock"), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
                )
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(entry.path, ignore_errors=True)
                finally:
                    os.close(other)
        elif entry.name.startswith(".new-"):
            with contextlib.suppress(OSError):
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_HOME_S:
                    shutil.rmtree(entry.path, ignore_errors=True)
    return os.path.realpath(home), lock


def _drop_spare_home(home: str, lock: int | None) -> None:
    shutil.rmtree(home, ignore_errors=True)
    if lock is not None:
        os.close(lock)


def _export_failure(result: GitResult, sha: str, what: str) -> GitError:
    details = {"sha": sha, "stderr": result.stderr[-2000:]}
    if any(marker in result.stderr for marker in _UNSAFE_MARKERS):
        return UnsafeTree(
            f"commit {sha} names a path that cannot be written safely", details=details
        )
    return GitError(f"{what} failed (exit code {result.returncode})", details=details)


def _classify_fetch_failure(result: GitResult, url: RepositoryUrl, ref: str) -> MastraAdminError:
    """The error a failed ``git fetch`` stands for, judged from its stderr."""
    text = result.stderr.lower()
    stderr = result.stderr[-2000:]
    details = {"url": url.display, "ref": ref, "stderr": stderr}
    if _is_sha(ref) and any(marker in text for marker in _MISSING_COMMIT):
        return CommitNotFound(
            f"commit {ref} is not in the repository (the branch may have been force-pushed)",
            details=details,
        )
    if any(marker in text for marker in _MISSING_REF):
        return RefNotFound(f"there is no branch or tag {ref!r} in the repository", details=details)
    if _REDIRECT.search(text):
        return RepositoryUnreadable(
            "the server redirects this URL elsewhere and redirects are not followed: "
            "use the repository's current URL",
            details=details,
        )
    if _SERVER_ERROR.search(text):
        return GitHostUnreachable(
            f"the git host {url.host or url.display} answered with a server error",
            details=details,
        )
    if any(marker in text for marker in _UNREACHABLE):
        return GitHostUnreachable(
            f"the git host {url.host or url.display} cannot be reached", details=details
        )
    if any(marker in text for marker in _UNREADABLE):
        return RepositoryUnreadable(
            "the repository does not exist or the credential cannot read it", details=details
        )
    return GitError(f"git fetch failed (exit code {result.returncode})", details=details)


class GitCache:
    """Bare repositories under ``root``, one per key; keys never share objects.

    ``key`` is the caller's (a hash of the team and the URL, say): 16 to 64 lower-case
    hex digits. Fetches of one key wait for each other; different keys run in parallel.
    ``resolve`` replaces ``socket.getaddrinfo`` for checking hosts (tests).
    """

    def __init__(
        self,
        root: Path,
        settings: GitSourceSettings | None = None,
        *,
        resolve: Resolver | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.settings = settings or GitSourceSettings()
        self._resolve = resolve
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._refs: set[str] = set()
        # Spares (see ``_spare``): one per key at most, this cache's own, for its life.
        self._spares: dict[str, _Spare] = {}
        self._preparing: dict[str, _Preparation] = {}
        self._background: set[asyncio.Future[None]] = set()
        self._home: str | None = None
        self._home_lock: int | None = None
        self._closed = False

    # -- helpers ---------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """Where the bare repository of ``key`` lives (whether or not it exists yet)."""
        return self.root / check_cache_key(key)

    def _lock(self, key: str) -> asyncio.Lock:
        """The lock of ``key``; it lives while someone holds or waits for it."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    @property
    def _git(self) -> str:
        return find_git(self.settings.git_path)

    async def _run(
        self,
        args: list[str],
        environment: GitEnvironment,
        *,
        what: str,
        cwd: Path | None = None,
        watch: Watch | None = None,
        stdout_limit: int = 1024 * 1024,
    ) -> GitResult:
        return await run_git(
            self._git,
            [*SAFE_CONFIG, *args],
            environment=environment,
            timeout_s=self.settings.fetch_timeout_s,
            cwd=cwd,
            watch=watch,
            stdout_limit=stdout_limit,
            what=what,
        )

    async def _local(
        self, repository: Path, args: list[str], *, what: str, stdout_limit: int = 1024 * 1024
    ) -> GitResult:
        """A git command on the cached repository alone: no protocol is allowed."""
        with git_environment() as environment:
            return await self._run(
                ["--git-dir", str(repository), *args],
                environment,
                what=what,
                cwd=repository,
                stdout_limit=stdout_limit,
            )

    async def _check_ref(self, ref: str) -> str:
        if not isinstance(ref, str) or not ref or len(ref) > _MAX_REF:
            raise InvalidInput(
                f"a ref is a branch, a tag or a 40-digit commit id of at most {_MAX_REF} "
                "characters",
                details={"ref": repr(ref)[:100]},
            )
        if _is_sha(ref):
            return ref.lower()
        if ref.startswith(("-", "+")) or any(not ch.isprintable() for ch in ref):
            raise InvalidInput(
                "a branch or tag name may not start with '-' or '+' or hold control characters",
                details={"ref": ref[:200]},
            )
        if ref in self._refs:  # git said so before: one process less on every fetch
            return ref
        with git_environment() as environment:
            result = await self._run(
                ["check-ref-format", "--allow-onelevel", ref], environment, what="check-ref-format"
            )
        if result.returncode != 0:
            raise InvalidInput(
                f"{ref[:200]!r} is not a valid branch or tag name", details={"ref": ref[:200]}
            )
        if len(self._refs) >= _MAX_REFS_KEPT:
            self._refs.clear()
        self._refs.add(ref)
        return ref

    async def _ensure_repository(self, key: str) -> Path:
        """The bare repository of ``key``, made (atomically) when missing or broken."""
        path = self.path_for(key)
        if (path / "HEAD").is_file() and (path / "objects").is_dir():
            return path
        await asyncio.to_thread(self.root.mkdir, mode=0o700, parents=True, exist_ok=True)
        staging = self.root / f".init-{key}-{secrets.token_hex(4)}"
        try:
            with git_environment() as environment:
                result = await self._run(
                    ["init", "--bare", "--quiet", "--template=", str(staging)],
                    environment,
                    what="git init",
                )
            if result.returncode != 0:
                raise GitError(
                    f"cannot make a git repository in the cache: {result.stderr[-500:]}",
                    details={"key": key},
                )
            (staging / "info").mkdir(exist_ok=True)
            (staging / "info" / "attributes").write_text(_INFO_ATTRIBUTES)
            if path.exists():
                _log.warning("git.cache.repaired", key=key)
                await asyncio.to_thread(shutil.rmtree, path, True)
            staging.rename(path)
        finally:
            if staging.exists():
                await asyncio.to_thread(shutil.rmtree, staging, True)
        return path

    async def _remove(self, path: Path) -> None:
        await asyncio.to_thread(_remove_repository, path)

    # -- fetch -----------------------------------------------------------------

    async def fetch(
        self,
        key: str,
        url: RepositoryUrl,
        ref: str,
        credential: HttpsToken | SshKey | None = None,
    ) -> Commit:
        """Fetch one branch, tag or full commit id from ``url`` into the repository of
        ``key`` (shallow: the commit alone) and describe the commit.

        The URL is checked again first (hosts may resolve elsewhere since), and git
        connects only to the addresses checked. Raises ``RepositoryUnreadable``,
        ``RefNotFound``, ``CommitNotFound``, ``RepositoryTooLarge`` (the cached repository
        is removed), ``GitTimeout``, ``GitHostUnreachable``, ``InvalidInput`` for a bad
        key or ref, or ``GitError``.
        """
        check_cache_key(key)
        ref = await self._check_ref(ref)
        checked = await asyncio.to_thread(
            check_repository_url, url.url, self.settings, resolve=self._resolve
        )
        async with self._lock(key):
            repository = await self._ensure_repository(key)
            started = time.perf_counter()
            before = await asyncio.to_thread(_disk_usage, repository)
            if _is_sha(ref):
                refspec = f"+{ref}:refs/mastra/commit"
                local_ref = "refs/mastra/commit"
            else:
                local_ref = f"refs/mastra/ref-{hashlib.sha256(ref.encode()).hexdigest()[:16]}"
                refspec = f"+{ref}:{local_ref}"
            log = _log.bind(key=key, url=checked.display, ref=ref)
            log.info("git.fetch.started")
            limit = self.settings.max_repository_mb * 2**20

            async def watch_size() -> MastraAdminError | None:
                size = await asyncio.to_thread(_disk_usage, repository)
                return self._too_large(checked, limit) if size > limit else None

            try:
                with git_environment(checked, credential) as environment:
                    result = await self._run(
                        [
                            "--git-dir",
                            str(repository),
                            "fetch",
                            "--depth=1",
                            "--no-tags",
                            "--no-recurse-submodules",
                            "--no-write-fetch-head",
                            "--no-auto-gc",
                            "--end-of-options",
                            checked.url,
                            refspec,
                        ],
                        environment,
                        what="git fetch",
                        cwd=repository,
                        watch=watch_size,
                    )
                if result.returncode != 0:
                    raise _classify_fetch_failure(result, checked, ref)
                size = await asyncio.to_thread(_disk_usage, repository)
                if size > limit:
                    raise self._too_large(checked, limit)
                commit = await self._read_commit(repository, f"{local_ref}^{{commit}}", ref)
            except RepositoryTooLarge:
                self._forget_spare(key)
                await self._remove(repository)
                log.warning("git.fetch.failed", code=RepositoryTooLarge.code)
                raise
            except MastraAdminError as exc:
                log.warning("git.fetch.failed", code=exc.code, error=exc.message)
                raise
            if _is_sha(ref) and commit.sha != ref:
                raise CommitNotFound(  # pragma: no cover - git stores exactly what it fetched
                    f"commit {ref} is not in the repository", details={"ref": ref}
                )
            log.info(
                "git.fetch.finished",
                sha=commit.sha,
                seconds=round(time.perf_counter() - started, 3),
                added_bytes=max(size - before, 0),
                repository_bytes=size,
            )
            return commit

    def _too_large(self, url: RepositoryUrl, limit: int) -> RepositoryTooLarge:
        return RepositoryTooLarge(
            f"the repository is larger than {self.settings.max_repository_mb} MB",
            details={"url": url.display, "limit": limit},
        )

    async def _read_commit(self, repository: Path, revision: str, ref: str) -> Commit:
        result = await self._local(
            repository,
            ["log", "-1", "--no-show-signature", f"--format={_LOG_FORMAT}", revision, "--"],
            what="git log",
        )
        if result.returncode != 0:
            raise CommitNotFound(
                f"{ref} does not name a commit", details={"ref": ref, "stderr": result.stderr}
            )
        fields = result.stdout.split(b"\0", 4)
        if len(fields) != 5:
            raise GitError("git log gave an unexpected answer", details={"ref": ref})
        sha, name, email, date, message = fields
        try:
            committed_at = datetime.fromisoformat(date.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            _log.warning("git.commit.bad_date", ref=ref)
            committed_at = datetime.fromtimestamp(0, tz=UTC)
        return Commit(
            sha=sha.decode("ascii", errors="replace"),
            message=_cut_utf8(message.rstrip(b"\n"), _MAX_MESSAGE).decode(errors="replace"),
            author_name=name.decode(errors="replace")[:_MAX_NAME],
            author_email=email.decode(errors="replace")[:_MAX_NAME],
            committed_at=committed_at,
        )

    async def commit(self, key: str, sha: str) -> Commit:
        """The commit ``sha`` from the cache of ``key`` (``CommitNotFound`` when it was
        never fetched)."""
        repository = self._existing(key, sha)
        return await self._read_commit(repository, f"{sha}^{{commit}}", sha)

    def _existing(self, key: str, sha: str) -> Path:
        repository = self.path_for(key)
        if not isinstance(sha, str) or not _is_sha(sha):
            raise InvalidInput("a commit id is 40 hex digits", details={"sha": repr(sha)[:100]})
        if not (repository / "HEAD").is_file():
            raise CommitNotFound(
                f"commit {sha} has not been fetched into this cache", details={"sha": sha}
            )
        return repository

    # -- reading single files ----------------------------------------------------

    async def _ls_tree(self, key: str, sha: str, args: list[str]) -> list[TreeEntry] | None:
        """``git ls-tree -z <args>`` parsed; ``None`` when git names no such tree (and
        ``CommitNotFound`` when ``sha`` itself was never fetched)."""
        repository = self._existing(key, sha)
        listed = await self._local(repository, ["ls-tree", "-z", *args], what="git ls-tree")
        if listed.returncode != 0:
            check = await self._local(
                repository, ["cat-file", "-e", f"{sha.lower()}^{{commit}}"], what="git"
            )
            if check.returncode != 0:
                raise CommitNotFound(
                    f"commit {sha} has not been fetched into this cache", details={"sha": sha}
                )
            return None
        entries: list[TreeEntry] = []
        for record in listed.stdout.split(b"\0"):
            head, tab, name = record.partition(b"\t")
            fields = head.split(b" ")
            if not tab or len(fields) != 3:
                continue  # the empty tail, or a record cut at the output limit
            mode, kind, oid = (f.decode("ascii", errors="replace") for f in fields)
            entries.append(TreeEntry(name.decode(errors="replace"), mode, kind, oid))
        return entries

    async def list_folder(self, key: str, sha: str, folder: str | None = None) -> list[TreeEntry]:
        """The entries of ``folder`` (the root when ``None``) in commit ``sha``, fetched
        before; an empty list when there is no such folder in the commit."""
        path = check_subdirectory(folder, what="path") if folder is not None else None
        tree = f"{sha.lower()}:{path}" if path is not None else f"{sha.lower()}^{{tree}}"
        return await self._ls_tree(key, sha, [tree]) or []

    async def entries(self, key: str, sha: str, paths: Collection[str]) -> dict[str, TreeEntry]:
        """The entries (``name`` is the whole path) of those ``paths`` that exist in
        commit ``sha``, fetched before: one ``git ls-tree`` for all of them."""
        wanted = {check_subdirectory(path, what="path") for path in paths}
        if not wanted:
            return {}
        specs = [f":(literal){path}" for path in sorted(wanted)]
        found = await self._ls_tree(key, sha, ["-t", f"{sha.lower()}^{{tree}}", "--", *specs])
        return {entry.name: entry for entry in found or [] if entry.name in wanted}

    async def read_file(self, key: str, sha: str, path: str, max_bytes: int) -> bytes | None:
        """The content of the regular file ``path`` in commit ``sha`` (fetched before),
        read from the cache without an export; ``None`` when there is no such file (or
        it is a symlink, a folder or a submodule); ``PayloadTooLarge`` past ``max_bytes``."""
        relative = check_subdirectory(path, what="path")
        entry = (await self.entries(key, sha, [relative])).get(relative)
        return await self.read_entry(key, entry, max_bytes) if entry is not None else None

    async def read_entry(self, key: str, entry: TreeEntry, max_bytes: int) -> bytes | None:
        """The content of ``entry`` (from ``entries`` or ``list_folder``) when it is a
        regular file, else ``None``; ``PayloadTooLarge`` past ``max_bytes``."""
        if not entry.is_file or not _SHA.fullmatch(entry.oid):
            return None
        result = await self._local(
            self.path_for(key),
            ["cat-file", "blob", entry.oid],
            what="git",
            stdout_limit=max_bytes + 1,
        )
        if result.returncode != 0:
            raise GitError(f"cannot read {entry.name!r} from the cache", details={"oid": entry.oid})
        if len(result.stdout) > max_bytes:
            raise PayloadTooLarge(
                f"{entry.name} is larger than {max_bytes} bytes",
                details={"path": entry.name, "limit": max_bytes},
            )
        return result.stdout

    # -- export ----------------------------------------------------------------

    async def export(
        self,
        key: str,
        sha: str,
        target_dir: Path,
        subdirectory: str | None = None,
        *,
        exclude: Collection[str] = (),
        spare: bool = False,
    ) -> Path:
        """Write the files of commit ``sha`` (fetched before) into ``target_dir``, without
        ``.git``, and return ``target_dir`` or ``target_dir/<subdirectory>``.

        ``target_dir`` is made when missing; an existing one must be empty. Executable
        bits are kept; symlinks only when they stay inside; submodules are empty folders.
        Paths with a part named in ``exclude`` (exact names, at any depth) are left out.
        Hostile trees (``UnsafeTree``) and trees past ``max_export_mb``
        (``RepositoryTooLarge``) are refused before anything is written. On any failure or
        cancellation what was written is removed.

        ``spare``: builds export the same repository again and again, a few files apart.
        With it, an export into a ``target_dir`` that does not exist yet is made from the
        key's spare when there is one (see ``_spare``): the commit is listed and checked
        exactly as here, only the files that differ are written, and the result is
        verified and renamed into place; anything doubtful falls back to the full export.
        Then a spare of ``sha`` is prepared in the background (``wait_for_spares``).
        """
        repository = self._existing(key, sha)
        sha = sha.lower()
        folder = check_subdirectory(subdirectory) if subdirectory is not None else None
        excluded = frozenset(exclude)
        target = (
            await self._export_from_spare(key, repository, sha, target_dir, folder, excluded)
            if spare
            else None
        )
        created = True
        if target is None:
            target, created = await self._export_full(
                key, repository, sha, target_dir, folder, excluded
            )
        if folder is None:
            root = target
        else:
            root = os.path.join(target, folder)
            if not await asyncio.to_thread(_is_real_folder, root):
                await asyncio.to_thread(clear_target, target, created)
                raise InvalidInput(
                    f"subdirectory {folder!r} is not a folder in commit {sha}",
                    details={"subdirectory": folder, "sha": sha},
                )
        if spare:
            self._prepare_spare_later(key, sha, excluded)
        return Path(root)

    async def _export_full(
        self,
        key: str,
        repository: Path,
        sha: str,
        target_dir: Path,
        folder: str | None,
        excluded: frozenset[str],
    ) -> tuple[str, bool]:
        """The export of every file: the real target and whether it was made here."""
        started = time.perf_counter()
        plan, links, listed = await self._plan(repository, sha, folder, excluded)
        target, created = await asyncio.to_thread(
            prepare_target, str(target_dir), forbidden=str(self.root)
        )
        planned = time.perf_counter()
        stats, written = await self._write(repository, sha, target, created, plan, links)
        checked = time.perf_counter()
        _log.info(
            "git.export.finished",
            key=key,
            sha=sha,
            spare=False,
            files=stats.files,
            bytes=stats.bytes,
            symlinks=stats.symlinks,
            excluded=stats.excluded,
            skipped=len(stats.skipped),
            seconds=round(checked - started, 3),
            list_s=round(listed - started, 3),
            plan_s=round(planned - listed, 3),
            checkout_s=round(written - planned, 3),
            check_s=round(checked - written, 3),
        )
        return target, created

    async def _plan(
        self, repository: Path, sha: str, folder: str | None, excluded: frozenset[str]
    ) -> tuple[ExportPlan, list[tuple[str, str]], float]:
        """List and check commit ``sha`` (nothing is written): the plan, its symlinks'
        texts and when the listing was read."""
        items = await self._list_commit(repository, sha)
        listed = time.perf_counter()
        _check_folder(items, folder, sha)
        plan = await asyncio.to_thread(
            plan_export, items, exclude=excluded, max_bytes=self.settings.max_export_mb * 2**20
        )
        del items
        links = await self._link_texts(repository, plan) if plan.links else []
        return plan, links, listed

    async def _write(
        self,
        repository: Path,
        sha: str,
        target: str,
        created: bool,
        plan: ExportPlan,
        links: list[tuple[str, str]],
        *,
        checkouts: int = MAX_CHECKOUTS,
    ) -> tuple[ExportStats, float]:
        """Write ``plan`` into the empty folder ``target`` and check it; on any failure
        ``target`` is emptied (removed when ``created``). The figures, and when git was
        done writing."""
        attributes = repository / "info" / "attributes"
        if not attributes.is_file() or attributes.read_text() != _INFO_ATTRIBUTES:
            attributes.parent.mkdir(exist_ok=True)
            attributes.write_text(_INFO_ATTRIBUTES)
        # git writes with the process umask: when it is not 022, nobody else may enter the
        # target until every mode is set as umask 022 would have.
        fix_modes = modes_need_fixing()
        target_mode = stat.S_IMODE(os.stat(target).st_mode)
        try:
            if fix_modes:
                os.chmod(target, 0o700)
            await self._checkout(repository, sha, target, plan, checkouts)
            written = time.perf_counter()
            stats = await _in_thread(
                functools.partial(finish_export, fix_modes=fix_modes), target, plan, links
            )
        except OSError as exc:
            await asyncio.to_thread(clear_target, target, created)
            raise GitError(
                f"writing the commit's files failed: {exc.strerror or exc}",
                details={"target_dir": target},
            ) from exc
        except BaseException:
            await asyncio.to_thread(clear_target, target, created)
            raise
        finally:
            if fix_modes:
                with contextlib.suppress(OSError):  # gone when the export removed it
                    os.chmod(target, target_mode)
        return stats, written

    # -- spares ------------------------------------------------------------------

    async def _export_from_spare(
        self,
        key: str,
        repository: Path,
        sha: str,
        target_dir: Path,
        folder: str | None,
        excluded: frozenset[str],
    ) -> str | None:
        """The export of ``sha`` made from the key's spare, renamed into ``target_dir``
        (the real path returned); ``None`` when there is no spare to use or anything
        about it is doubtful: the caller then makes the full export, which also raises
        what this path ran into (a hostile tree, a commit never fetched...)."""
        # Taken before anything is awaited: another export of the key meanwhile does the
        # full export; a spare that does not fit is given back untouched.
        spare = self._spares.pop(key, None)
        if spare is None:
            return None
        try:
            wanted = (
                await asyncio.to_thread(_new_target_beside, target_dir, spare.folder)
                if spare.exclude == excluded
                else None
            )
        except BaseException:
            self._give_back(key, spare)
            raise
        if wanted is None:
            self._give_back(key, spare)
            return None
        log = _log.bind(key=key, sha=sha, spare_sha=spare.sha)
        started = time.perf_counter()
        target: str | None = None
        keep = False
        try:
            # One environment for both git commands; the manifest is read while git lists
            # the commit.
            with git_environment() as environment:
                reading = asyncio.ensure_future(asyncio.to_thread(_read_manifest, spare.manifest))
                try:
                    listed = await self._run(
                        [
                            "--git-dir",
                            str(repository),
                            "ls-tree",
                            "-r",
                            "-t",
                            "-z",
                            "--full-tree",
                            f"{sha}^{{commit}}",
                        ],
                        environment,
                        what="git ls-tree",
                        cwd=repository,
                        stdout_limit=_MAX_LISTING + 1,
                    )
                except BaseException:
                    reading.cancel()
                    await asyncio.wait([reading])  # the thread ends: nothing outlives this
                    raise
                manifest = await reading
                if listed.returncode != 0 or len(listed.stdout) > _MAX_LISTING:
                    keep = listed.returncode != 0  # a commit never fetched: the spare is intact
                    raise _NotFromSpare("the commit cannot be listed")
                excluded_names = frozenset(os.fsencode(name) for name in excluded)
                records, wanted_oids = await asyncio.to_thread(
                    _names_and_wanted, listed.stdout, manifest, excluded_names
                )
                was_listed = time.perf_counter()
                blobs = await self._read_blobs(repository, wanted_oids, environment)
            if blobs is None:
                keep = True
                raise _NotFromSpare("the commit's changes are too large to read at once")
            plan, changes, links = await asyncio.to_thread(
                self._plan_from_spare, records, manifest, blobs, folder, excluded, sha
            )
            planned = time.perf_counter()
            stats, written = await _in_thread(
                _apply_and_check, spare.tree, changes, blobs, plan, links
            )
            target = await _rename_in_thread(spare.tree, wanted, str(self.root))
        except BaseException as exc:
            if keep:
                self._give_back(key, spare)
            else:
                self._throw_away(spare)
            if isinstance(exc, Exception):
                log.info(
                    "git.spare.unused",
                    reason=exc.message if isinstance(exc, MastraAdminError) else str(exc)[:300],
                    error=type(exc).__name__,
                )
                return None
            raise
        self._throw_away(spare)  # what is left of it: its manifest
        checked = time.perf_counter()
        log.info(
            "git.export.finished",
            spare=True,
            files=stats.files,
            bytes=stats.bytes,
            symlinks=stats.symlinks,
            excluded=stats.excluded,
            skipped=len(stats.skipped),
            read=len(wanted_oids),
            written=len(changes.writes),
            removed=len(changes.files) + len(changes.folders),
            seconds=round(checked - started, 3),
            list_s=round(was_listed - started, 3),
            plan_s=round(planned - was_listed, 3),
            checkout_s=round(written - planned, 3),
            check_s=round(checked - written, 3),
        )
        return target

    def _plan_from_spare(
        self,
        records: list[NameRecord],
        manifest: Manifest,
        blobs: dict[bytes, bytes],
        folder: str | None,
        excluded: frozenset[str],
        sha: str,
    ) -> tuple[ExportPlan, Changes, list[tuple[str, str]]]:
        """The plan of the commit (``plan_export`` on its full listing, sizes from the
        manifest and from the blobs read), the changes from the spare, the symlinks."""
        sizes = manifest.sizes()
        sizes.update((oid, len(data)) for oid, data in blobs.items())
        items = sized_items(records, sizes)
        _check_folder(items, folder, sha)
        plan = plan_export(items, exclude=excluded, max_bytes=self.settings.max_export_mb * 2**20)
        if any(item.size < 0 for item in plan.files.values()) or any(
            item.size < 0 for item in plan.links
        ):  # pragma: no cover - wanted_blobs reads every size the plan keeps
            raise GitError("a size is missing from the plan")
        return plan, changes_between(manifest, plan), link_texts(plan, blobs)

    async def _read_blobs(
        self, repository: Path, oids: set[bytes], environment: GitEnvironment
    ) -> dict[bytes, bytes] | None:
        """The blobs ``oids`` (one ``git cat-file --batch``); ``None`` past
        ``_MAX_SPARE_READ`` bytes (the full export streams them instead)."""
        if not oids:
            return {}
        limit = _MAX_SPARE_READ + 100 * len(oids)
        result = await run_git_input(
            self._git,
            [*SAFE_CONFIG, "--git-dir", str(repository), "cat-file", "--batch"],
            environment=environment,
            timeout_s=self.settings.fetch_timeout_s,
            data=b"".join(oid + b"\n" for oid in oids),
            cwd=repository,
            stdout_limit=limit + 1,
            what="git cat-file",
        )
        if len(result.stdout) > limit:
            return None
        if result.returncode != 0:
            raise GitError(
                "cannot read the commit's changes from the cache",
                details={"stderr": result.stderr[-2000:]},
            )
        return parse_batch(result.stdout, len(oids))

    def _prepare_spare_later(self, key: str, sha: str, excluded: frozenset[str]) -> None:
        """Start preparing a spare of ``sha`` for ``key`` in the background, unless one
        is there or on its way; a preparation of another commit is told to stop."""
        if self._closed:
            return
        held = self._spares.get(key)
        if held is not None and (held.sha, held.exclude) == (sha, excluded):
            return
        running = self._preparing.get(key)
        if running is not None:
            if (running.sha, running.exclude) == (sha, excluded):
                return
            running.stop = True
        preparation = _Preparation(sha, excluded)
        preparation.task = asyncio.ensure_future(self._prepare_spare(key, preparation))
        self._preparing[key] = preparation
        self._track(preparation.task)

    def _track(self, task: asyncio.Future[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _prepare_spare(self, key: str, preparation: _Preparation) -> None:
        """A full export of the commit into a new spare folder of ``key`` (one
        ``checkout-index`` process: it runs beside a build), then its manifest; only then
        is it the key's spare. Failures are logged: the next export is simply a full one.
        """
        sha, excluded = preparation.sha, preparation.exclude
        started = time.perf_counter()
        folder: str | None = None

        def check() -> None:
            if preparation.stop or self._closed:
                raise _Stopped("stopped")

        try:
            home = await self._spare_home()
            check()
            repository = self._existing(key, sha)
            folder = os.path.join(home, f"{key}-{secrets.token_hex(6)}")
            tree = os.path.join(folder, "tree")
            await asyncio.to_thread(os.mkdir, folder, 0o700)
            plan, links, _ = await self._plan(repository, sha, None, excluded)
            check()
            await asyncio.to_thread(os.mkdir, tree, 0o700)
            await self._write(repository, sha, tree, True, plan, links, checkouts=1)
            check()
            await asyncio.to_thread(_seal, folder, Manifest.of(plan).dump())
            check()
        except (Exception, asyncio.CancelledError) as exc:
            if folder is not None:
                await asyncio.to_thread(shutil.rmtree, folder, True)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not isinstance(exc, _Stopped):
                _log.warning(
                    "git.spare.failed",
                    key=key,
                    sha=sha,
                    error=type(exc).__name__,
                    reason=exc.message if isinstance(exc, MastraAdminError) else str(exc)[:300],
                )
            return
        except BaseException:  # the task destroyed with its loop: nothing can be awaited
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            if self._preparing.get(key) is preparation:
                del self._preparing[key]
        made = _Spare(sha=sha, exclude=excluded, folder=folder)
        replaced = self._spares.get(key)
        self._spares[key] = made
        if replaced is not None:
            self._throw_away(replaced)
        _log.info(
            "git.spare.ready",
            key=key,
            sha=sha,
            files=plan.stats.files,
            seconds=round(time.perf_counter() - started, 3),
        )

    async def _spare_home(self) -> str:
        """This cache's folder of spares (made, and the folders of caches that are gone
        removed, on first use)."""
        if self._home is None:
            home, lock = await asyncio.to_thread(_make_spare_home, self.root)
            if self._home is None:
                self._home, self._home_lock = home, lock
            else:  # pragma: no cover - two first preparations at once
                await asyncio.to_thread(_drop_spare_home, home, lock)
        return self._home

    def _throw_away(self, spare: _Spare) -> None:
        """Remove a spare's folder: renamed at once (nothing can take it any more),
        removed in the background."""
        doomed = f"{spare.folder}.removed"
        try:
            os.rename(spare.folder, doomed)
        except OSError:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - a task destroyed with its loop
            shutil.rmtree(doomed, ignore_errors=True)
            return
        self._track(asyncio.ensure_future(asyncio.to_thread(shutil.rmtree, doomed, True)))

    def _give_back(self, key: str, spare: _Spare) -> None:
        """Make an untouched spare the key's spare again (unless a newer one is there)."""
        if self._closed or key in self._spares:
            self._throw_away(spare)
        else:
            self._spares[key] = spare

    def _forget_spare(self, key: str) -> None:
        running = self._preparing.pop(key, None)
        if running is not None:
            running.stop = True
        spare = self._spares.pop(key, None)
        if spare is not None:
            self._throw_away(spare)

    async def wait_for_spares(self) -> None:
        """Wait until no spare is being prepared or removed: builds are minutes apart,
        so in production the spare is ready by the next one; tests and benchmarks wait."""
        while self._background:
            await asyncio.wait(list(self._background))

    async def close(self) -> None:
        """Stop preparing spares (each stops at its next step) and remove them; exports
        still work, as full exports. Call it before the event loop ends."""
        self._closed = True
        for running in self._preparing.values():
            running.stop = True
        await self.wait_for_spares()
        for spare in list(self._spares.values()):
            self._throw_away(spare)
        self._spares.clear()
        await self.wait_for_spares()
        if self._home is not None:
            home, lock = self._home, self._home_lock
            self._home = self._home_lock = None
            await asyncio.to_thread(_drop_spare_home, home, lock)

    async def _list_commit(self, repository: Path, sha: str) -> list[TreeItem]:
        """Every path of commit ``sha`` (``git ls-tree -r -t -l``)."""
        listed = await self._local(
            repository,
            ["ls-tree", "-r", "-t", "-z", "-l", "--full-tree", f"{sha}^{{commit}}"],
            what="git ls-tree",
            stdout_limit=_MAX_LISTING + 1,
        )
        if listed.returncode != 0:
            check = await self._local(
                repository, ["cat-file", "-e", f"{sha}^{{commit}}"], what="git"
            )
            if check.returncode != 0:
                raise CommitNotFound(
                    f"commit {sha} has not been fetched into this cache", details={"sha": sha}
                )
            raise _export_failure(listed, sha, "git ls-tree")
        if len(listed.stdout) > _MAX_LISTING:
            raise RepositoryTooLarge(
                f"commit {sha} names too many files to export",
                details={"sha": sha, "limit": _MAX_LISTING},
            )
        return parse_listing(listed.stdout)

    async def _link_texts(self, repository: Path, plan: ExportPlan) -> list[tuple[str, str]]:
        """The texts of the symlinks of ``plan``: one ``git cat-file --batch``."""
        sizes = {item.oid: item.size for item in plan.links}
        with git_environment() as environment:
            result = await run_git_input(
                self._git,
                [*SAFE_CONFIG, "--git-dir", str(repository), "cat-file", "--batch"],
                environment=environment,
                timeout_s=self.settings.fetch_timeout_s,
                data=b"".join(oid + b"\n" for oid in sizes),
                cwd=repository,
                stdout_limit=sum(sizes.values()) + 200 * len(sizes),
                what="git cat-file",
            )
        if result.returncode != 0:
            raise GitError(
                "cannot read the commit's symlinks from the cache",
                details={"stderr": result.stderr[-2000:]},
            )
        return link_texts(plan, parse_batch(result.stdout, len(sizes)))

    async def _checkout(
        self, repository: Path, sha: str, target: str, plan: ExportPlan, checkouts: int
    ) -> None:
        """Make the folders of ``plan`` in ``target``, then git writes its files from a
        private index (removed here) with up to ``checkouts`` ``checkout-index``
        processes side by side."""
        await _in_thread(make_folders, target, plan)
        if plan.files:
            with (
                tempfile.TemporaryDirectory(prefix="mastra-git-index-") as private,
                git_environment() as environment,
            ):
                environment.env["GIT_INDEX_FILE"] = os.path.join(private, "index")
                base = [*SAFE_CONFIG, *CHECKOUT_CONFIG, "--git-dir", str(repository)]
                what = "git update-index"
                result = await run_git_input(
                    self._git,
                    [*base, "update-index", "-z", "--index-info"],
                    environment=environment,
                    timeout_s=self.settings.fetch_timeout_s,
                    data=index_info(plan),
                    cwd=repository,
                    what=what,
                )
                # update-index leaves out paths git would never write, with a warning.
                if result.returncode != 0 or "Ignoring path" in result.stderr:
                    raise _export_failure(result, sha, what)
                what = "git checkout-index"
                running = [
                    asyncio.ensure_future(
                        run_git_input(
                            self._git,
                            [*base, "--work-tree", target, "checkout-index", "-z", "--stdin"],
                            environment=environment,
                            timeout_s=self.settings.fetch_timeout_s,
                            data=share,
                            cwd=repository,
                            what=what,
                        )
                    )
                    for share in checkout_shares(plan, checkouts)
                ]
                try:
                    results = await asyncio.gather(*running)
                except BaseException:
                    # Every process is stopped and reaped before the target is cleared.
                    for checkout in running:
                        checkout.cancel()
                    await asyncio.gather(*running, return_exceptions=True)
                    raise
                for result in results:
                    if result.returncode != 0:
                        raise _export_failure(result, sha, what)

    async def remove(self, key: str) -> None:
        """Forget the cached repository of ``key`` and its spare (nothing happens when
        there is none)."""
        async with self._lock(key):
            self._forget_spare(key)
            await self._remove(self.path_for(key))
