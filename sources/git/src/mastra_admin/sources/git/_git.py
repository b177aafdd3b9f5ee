"""``GitCache``: one bare repository per cache key, shallow fetches of one ref at a time,
and exports of a commit's files into build folders."""

from __future__ import annotations

import asyncio
import contextlib
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
from mastra_admin.sources.git._archive import clear_target, prepare_target
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
    ExportPlan,
    TreeItem,
    checkout_shares,
    finish_export,
    index_info,
    link_texts,
    make_folders,
    modes_need_fixing,
    parse_batch,
    parse_listing,
    plan_export,
    run_git_input,
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
        with git_environment() as environment:
            result = await self._run(
                ["check-ref-format", "--allow-onelevel", ref], environment, what="check-ref-format"
            )
        if result.returncode != 0:
            raise InvalidInput(
                f"{ref[:200]!r} is not a valid branch or tag name", details={"ref": ref[:200]}
            )
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
    ) -> Path:
        """Write the files of commit ``sha`` (fetched before) into ``target_dir``, without
        ``.git``, and return ``target_dir`` or ``target_dir/<subdirectory>``.

        ``target_dir`` is made when missing; an existing one must be empty. Executable
        bits are kept; symlinks only when they stay inside; submodules are empty folders.
        Paths with a part named in ``exclude`` (exact names, at any depth) are left out.
        Hostile trees (``UnsafeTree``) and trees past ``max_export_mb``
        (``RepositoryTooLarge``) are refused before anything is written. On any failure or
        cancellation what was written is removed.
        """
        repository = self._existing(key, sha)
        sha = sha.lower()
        folder = check_subdirectory(subdirectory) if subdirectory is not None else None
        started = time.perf_counter()
        items = await self._list_commit(repository, sha)
        listed = time.perf_counter()
        if folder is not None and not any(
            item.path == os.fsencode(folder) and item.kind == b"tree" for item in items
        ):
            raise InvalidInput(
                f"subdirectory {folder!r} is not a folder in commit {sha}",
                details={"subdirectory": folder, "sha": sha},
            )
        plan = await asyncio.to_thread(
            plan_export,
            items,
            exclude=frozenset(exclude),
            max_bytes=self.settings.max_export_mb * 2**20,
        )
        del items
        links = await self._link_texts(repository, plan) if plan.links else []
        attributes = repository / "info" / "attributes"
        if not attributes.is_file() or attributes.read_text() != _INFO_ATTRIBUTES:
            attributes.parent.mkdir(exist_ok=True)
            attributes.write_text(_INFO_ATTRIBUTES)
        target, created = await asyncio.to_thread(
            prepare_target, str(target_dir), forbidden=str(self.root)
        )
        # git writes with the process umask: when it is not 022, nobody else may enter the
        # target until every mode is set as umask 022 would have.
        fix_modes = modes_need_fixing()
        target_mode = stat.S_IMODE(os.stat(target).st_mode)
        try:
            if fix_modes:
                os.chmod(target, 0o700)
            planned = time.perf_counter()
            await self._checkout(repository, sha, target, plan)
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
        checked = time.perf_counter()
        _log.info(
            "git.export.finished",
            key=key,
            sha=sha,
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
        if folder is None:
            return Path(target)
        inside = os.path.join(target, folder)
        if not await asyncio.to_thread(_is_real_folder, inside):
            await asyncio.to_thread(clear_target, target, created)
            raise InvalidInput(
                f"subdirectory {folder!r} is not a folder in commit {sha}",
                details={"subdirectory": folder, "sha": sha},
            )
        return Path(inside)

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

    async def _checkout(self, repository: Path, sha: str, target: str, plan: ExportPlan) -> None:
        """Make the folders of ``plan`` in ``target``, then git writes its files from a
        private index (removed here) with ``checkout-index`` processes side by side."""
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
                checkouts = [
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
                    for share in checkout_shares(plan)
                ]
                try:
                    results = await asyncio.gather(*checkouts)
                except BaseException:
                    # Every process is stopped and reaped before the target is cleared.
                    for checkout in checkouts:
                        checkout.cancel()
                    await asyncio.gather(*checkouts, return_exceptions=True)
                    raise
                for result in results:
                    if result.returncode != 0:
                        raise _export_failure(result, sha, what)

    async def remove(self, key: str) -> None:
        """Forget the cached repository of ``key`` (nothing happens when there is none)."""
        async with self._lock(key):
            await self._remove(self.path_for(key))
