"""How git is run: argv only, a clean environment, a deadline that kills the whole process
group, and output that is capped and masked before anyone reads it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mastra_admin.core.build_steps import mask_secrets
from mastra_admin.core.errors import InvalidInput, MastraAdminError, Unavailable
from mastra_admin.sources.git._credentials import HttpsToken, SshKey
from mastra_admin.sources.git._errors import GitTimeout
from mastra_admin.sources.git._url import RepositoryUrl

__all__ = [
    "SAFE_CONFIG",
    "GitEnvironment",
    "GitResult",
    "Masker",
    "Watch",
    "find_git",
    "git_environment",
    "run_git",
]

SAFE_CONFIG: tuple[str, ...] = (
    "-c", "protocol.ext.allow=never",
    "-c", "protocol.fd.allow=never",
    "-c", "submodule.recurse=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "credential.helper=",
    "-c", "http.followRedirects=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
)  # fmt: skip
"""Configuration every git command gets. Redirects are off because a redirect could
send git (and the token) to a host that was never checked."""

_STDERR_TAIL = 64 * 1024
_WATCH_INTERVAL_S = 0.5
_AUTHORIZATION = re.compile(r"(?i)(authorization:\s*)\S+(\s+\S+)?")
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


class Masker:
    """Removes secrets (and anything shaped like an Authorization header or URL
    credentials) from text before it is logged or put in an error."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self._mask = mask_secrets(secrets)

    def __call__(self, text: str) -> str:
        text = _AUTHORIZATION.sub(r"\1***", self._mask(text))
        return _USERINFO.sub("***@", text)


@dataclass
class GitEnvironment:
    """What one git operation runs with: the environment, extra ``-c`` options, and the
    masker for its output."""

    env: dict[str, str]
    config: list[str] = field(default_factory=list)
    masker: Masker = field(default_factory=Masker)


def find_git(git_path: str | None) -> str:
    """The git executable to run, or ``Unavailable`` when there is none."""
    found = shutil.which(git_path or "git")
    if found is None:
        raise Unavailable(
            f"git is not installed (looked for {git_path or 'git'!r})",
            details={"git_path": git_path or "git"},
        )
    return found


def _protocols(url: RepositoryUrl | None) -> str:
    """GIT_ALLOW_PROTOCOL: only what this URL needs (``file`` for local ones only)."""
    if url is None:
        return "none"
    return url.scheme


@contextlib.contextmanager
def git_environment(
    url: RepositoryUrl | None = None, credential: HttpsToken | SshKey | None = None
) -> Iterator[GitEnvironment]:
    """A clean environment in a private temporary folder (0700) that is removed on exit:
    ``HOME`` is empty there, so no user configuration is read; an ssh key is written there
    (0600); the https token only ever lives in the environment."""
    if credential is not None and url is not None:
        kinds: dict[str, type[HttpsToken | SshKey]] = {
            "https": HttpsToken,
            "http": HttpsToken,
            "ssh": SshKey,
        }
        wanted = kinds.get(url.scheme)
        if not isinstance(credential, wanted or ()):
            raise InvalidInput(
                f"a {type(credential).__name__} cannot be used for a {url.scheme} repository",
                details={"url": url.display},
            )
    private = tempfile.mkdtemp(prefix="mastra-git-")
    try:
        home = os.path.join(private, "home")
        os.mkdir(home, 0o700)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": home,
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": _protocols(url),
            "GIT_NO_REPLACE_OBJECTS": "1",
        }
        prepared = GitEnvironment(env=env)
        if isinstance(credential, HttpsToken):
            env["GIT_CONFIG_COUNT"] = "1"
            env["GIT_CONFIG_KEY_0"] = "http.extraHeader"
            env["GIT_CONFIG_VALUE_0"] = f"Authorization: {credential.authorization()}"
            prepared.masker = Masker(credential.secrets())
        if url is not None and url.scheme in ("https", "http") and url.addresses:
            port = url.port or (443 if url.scheme == "https" else 80)
            pinned = ",".join(f"[{a}]" if ":" in a else a for a in url.addresses)
            prepared.config = ["-c", f"http.curloptResolve={url.host}:{port}:{pinned}"]
        if url is not None and url.scheme == "ssh":
            env["GIT_SSH_COMMAND"] = _ssh_command(private, url, credential)
            env["GIT_SSH_VARIANT"] = "ssh"
            if isinstance(credential, SshKey):
                prepared.masker = Masker(credential.secrets())
        yield prepared
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _ssh_command(private: str, url: RepositoryUrl, credential: HttpsToken | SshKey | None) -> str:
    """GIT_SSH_COMMAND (git runs it through ``sh``, hence the quoting)."""
    known_hosts = os.path.join(private, "known_hosts")
    pinned = isinstance(credential, SshKey) and credential.known_hosts is not None
    if isinstance(credential, SshKey) and credential.known_hosts is not None:
        fd = os.open(known_hosts, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(credential.known_hosts)
    parts = [
        "ssh",
        "-F", os.devnull,
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", f"StrictHostKeyChecking={'yes' if pinned else 'accept-new'}",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", f"GlobalKnownHostsFile={os.devnull}",
    ]  # fmt: skip
    if isinstance(credential, SshKey):
        key_dir = os.path.join(private, "ssh")
        os.mkdir(key_dir, 0o700)
        key_file = os.path.join(key_dir, "key")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(credential.key_file_text())
        parts += ["-i", key_file]
    else:
        parts += ["-o", "IdentityFile=none"]
    if url.addresses:
        # Connect to the address that was checked; host keys stay filed under the name.
        ipv4 = [a for a in url.addresses if ":" not in a]
        parts += ["-o", f"HostName={(ipv4 or list(url.addresses))[0]}"]
        parts += ["-o", f"HostKeyAlias={url.host}", "-o", "CheckHostIP=no"]
    return shlex.join(parts)


@dataclass
class GitResult:
    returncode: int
    stdout: bytes
    stderr: str
    """Masked, and only the last 64 KB."""


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    """The first ``limit`` bytes; the rest is read and dropped so git never blocks."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk
        if len(kept) > limit:
            del kept[: len(kept) - limit]
    return bytes(kept)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


Watch = Callable[[], Awaitable[MastraAdminError | None]]
"""Called every half second while git runs; an error it returns stops git and is raised."""


async def run_git(
    git: str,
    args: Sequence[str],
    *,
    environment: GitEnvironment,
    timeout_s: float,
    cwd: Path | None = None,
    stdout_fd: int | None = None,
    stdout_limit: int = 1024 * 1024,
    watch: Watch | None = None,
    what: str = "git",
) -> GitResult:
    """Run ``git *args`` in its own session and wait for it.

    ``stdout_fd``, when given, receives git's output and is closed here once git has
    started (or failed to). On timeout, on an error from ``watch`` and on cancellation the
    whole process group is killed and reaped before this returns or raises.
    """
    argv = [git, *environment.config, *args]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout_fd if stdout_fd is not None else asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment.env,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if stdout_fd is not None:
            os.close(stdout_fd)
    assert process.stderr is not None
    stdout_task = (
        asyncio.ensure_future(_read_capped(process.stdout, stdout_limit))
        if process.stdout is not None
        else None
    )
    stderr_task = asyncio.ensure_future(_read_tail(process.stderr, _STDERR_TAIL))
    waiting = asyncio.ensure_future(process.wait())
    try:
        async with asyncio.timeout(timeout_s):
            while not waiting.done():
                await asyncio.wait({waiting}, timeout=_WATCH_INTERVAL_S if watch else None)
                if watch is not None and not waiting.done():
                    problem = await watch()
                    if problem is not None:
                        raise problem
            stdout = await stdout_task if stdout_task is not None else b""
            stderr = await stderr_task
    except BaseException as exc:
        _kill_group(process.pid)
        with contextlib.suppress(BaseException):
            await asyncio.shield(waiting)
        for task in (stdout_task, stderr_task):
            if task is not None:
                task.cancel()
        if isinstance(exc, TimeoutError):
            raise GitTimeout(
                f"{what} took longer than {timeout_s:g} s and was stopped",
                details={"timeout_s": timeout_s},
            ) from None
        raise
    return GitResult(
        returncode=waiting.result(),
        stdout=stdout,
        stderr=environment.masker(stderr.decode("utf-8", errors="replace")),
    )
