"""The sandbox of a deployment: where its install, build steps and servers run.

Project code is hostile: a ``postinstall`` script, a build step, a changed build
command or ``NODE_OPTIONS`` run whatever their author wrote. So every process of a
build and every server runs in a sandbox of its deployment, made with bubblewrap
(``bwrap``: user, mount, pid, ipc, uts, cgroup and network namespaces) and given a
network by pasta (``passt``). Both are in Debian and most distributions.

- **Files**: the host's ``/usr`` (with the ``/bin``, ``/lib`` links), a short list of
  ``/etc`` entries (resolver, certificates, users), and the runner's
  ``sandbox_ro_paths``, read-only; read-write only the deployment's project copy,
  the observability dirs of the env contract and the deployment's own home. A
  private ``/tmp``, ``/proc`` and ``/dev``. The data dir and the builds dir are
  masked even where a bound path holds them.
- **Processes**: a pid namespace of its own; nothing of the platform or of another
  deployment can be seen, signalled or traced.
- **Who**: when the platform runs as root, a uid of the deployment's own (numbered
  from ``sandbox_uid_base``, recorded in ``{data_dir}/sandbox/uids.json``), never
  root; as an ordinary user, that user inside a user namespace, without
  capabilities on the host.
- **Network**: a namespace of its own. pasta connects it outward (the npm registry,
  a model provider) and forwards one port: the collector's, from the sandbox's
  loopback to the host's. The host's loopback services (the API, PostgreSQL,
  ClickHouse, other servers) are out of reach; the host's own addresses are the
  sandbox's own inside it. A server is reached the other way round: the runner opens
  its port on the host's ``127.0.0.1`` and hands the listening socket in
  (``MASTRA_LISTEN_FD``); ``_node/listen.cjs``, preloaded into node, makes the
  server's ``listen(PORT)`` take it. Connections then come straight from the host's
  kernel, with no proxy in between.

``isolation = "none"`` runs the same commands as plain child processes of the
platform, for one trusted developer on a laptop; it is never chosen silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import structlog

from mastra_admin.core.errors import BuildFailed
from mastra_admin.runners.local._settings import LocalRunnerSettings

__all__ = ["Sandbox", "SandboxSpec", "Sandboxed", "isolation_unavailable"]

_log = structlog.get_logger("mastra_admin.runners.local")

# ``/etc`` entries a sandbox sees (when they exist): name resolution, certificates,
# users and groups, time zone, the dynamic loader's cache, npm's global config.
ETC_ENTRIES: tuple[str, ...] = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "npmrc",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "pki",
    "resolv.conf",
    "ssl",
)
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace
_NETWORK_READY_S = 5.0
LISTEN_FD_VAR = "MASTRA_LISTEN_FD"
LISTEN_SHIM = "/run/mastra-admin/listen.cjs"
"""Where a sandboxed server finds the preload that makes it listen on its socket."""
_SHIM_SOURCE = Path(__file__).parent / "_node" / "listen.cjs"
# bwrap sets PWD for the command; the command's environment is exactly what it was given.
_WITHOUT_PWD = ("/usr/bin/env", "-u", "PWD")
_COMMAND_VISIBLE_S = 5.0


def isolation_unavailable(reason: str) -> BuildFailed:
    """The error of a runner that cannot make its sandbox: what is missing, and the
    setting that runs without one, with what that costs."""
    return BuildFailed(
        "isolation",
        f"project code cannot be sandboxed on this machine: {reason}. Install bubblewrap "
        "and passt (Debian and Ubuntu: apt-get install bubblewrap passt) or, for one "
        'trusted developer on a laptop only, set runner.isolation = "none": project '
        "code (install scripts, builds, servers) then runs as the platform's own user, "
        "and can read its data dir, keys and database and reach its services.",
        details={"setting": "runner.isolation"},
    )


@dataclass(frozen=True)
class SandboxSpec:
    """What one sandboxed command may touch.

    :param deployment_id: whose sandbox (its uid and home).
    :param workdir: the project copy, read-write; the command starts in ``cwd``.
    :param cwd: the working directory (``workdir`` or a folder inside it).
    :param writable: more read-write folders (the env contract's observability dirs).
    :param listen_fd: a server's listening socket, opened by the runner on the host.
    :param host_ports: ports of the host's loopback the sandbox may connect to (the
        collector's), at the same number on its own loopback.
    :param keep_with_parent: ``False`` for servers, which outlive a platform restart;
        build steps die with the process that runs them.
    """

    deployment_id: str
    workdir: Path
    cwd: Path
    writable: tuple[Path, ...] = ()
    listen_fd: int | None = None
    host_ports: tuple[int, ...] = ()
    keep_with_parent: bool = True


@dataclass
class Sandboxed:
    """A command started by ``Sandbox.spawn``.

    ``process`` is the launcher (bwrap, or the command itself without isolation); its
    pid is the process group of everything started. ``init`` is pid 1 of the
    sandbox's pid namespace: killing it ends every process of the sandbox. ``network``
    is the sandbox's pasta.
    """

    process: asyncio.subprocess.Process
    init: psutil.Process | None = None
    network: psutil.Process | None = None
    network_child: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def group(self) -> int:
        return self.process.pid

    async def command(self) -> psutil.Process:
        """The command's own process (the server), once it runs: the launcher
        without isolation, else the first child of the sandbox's init."""
        if self.init is None:
            return psutil.Process(self.process.pid)
        deadline = time.monotonic() + _COMMAND_VISIBLE_S
        while True:
            with contextlib.suppress(psutil.Error):
                children = self.init.children()
                if children:
                    return children[0]
            if self.process.returncode is not None or time.monotonic() > deadline:
                return self.init
            await asyncio.sleep(0.005)

    def record(self) -> dict[str, Any]:
        """What a later process of the platform needs to end this sandbox."""
        record: dict[str, Any] = {"group": self.group}
        for name, process in (("init", self.init), ("network", self.network)):
            if process is not None:
                with contextlib.suppress(psutil.Error):
                    record[f"{name}_pid"] = process.pid
                    record[f"{name}_started_at"] = process.create_time()
        return record

    async def close(self) -> None:
        """End the sandbox's network helper (it also ends by itself once the
        sandbox's network namespace is gone)."""
        await end_network(self.network_child, self.network)


async def end_network(
    child: asyncio.subprocess.Process | None, process: psutil.Process | None
) -> None:
    if child is not None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(child.wait()), 2)
        return
    if process is not None:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGKILL)


class Sandbox:
    """Starts commands in the sandbox of their deployment (or, with
    ``isolation = "none"``, as plain child processes)."""

    def __init__(self, settings: LocalRunnerSettings, *, data_dir: Path, builds_dir: Path) -> None:
        self.settings = settings
        self.enabled = settings.isolation == "sandbox"
        self.as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.state_dir = (settings.sandbox_dir or data_dir / "sandbox").expanduser().resolve()
        self.protected = tuple(
            dict.fromkeys(p.expanduser().resolve() for p in (data_dir, builds_dir))
        )
        self.ro_paths = [p.expanduser().resolve() for p in settings.sandbox_ro_paths]
        self._host_view: list[str] | None = None
        self._tools: tuple[str, str] | None = None
        self._checked = False
        if not self.enabled:
            _log.warning(
                "runner.isolation_off",
                message='runner.isolation = "none": project code runs as this user, '
                "with the platform's files and services in reach",
            )

    # --- per deployment ---------------------------------------------------------------

    def home(self, deployment_id: str) -> Path:
        """The deployment's own home (npm's cache lives there), kept across builds."""
        return self.state_dir / "homes" / deployment_id

    def uid(self, deployment_id: str) -> int | None:
        """The deployment's own uid when the platform runs as root (else ``None``)."""
        if not (self.enabled and self.as_root):
            return None
        return _allocate_uid(
            self.state_dir,
            deployment_id,
            self.settings.sandbox_uid_base,
            self.settings.sandbox_uid_count,
        )

    def environment(self, env: Mapping[str, str], spec: SandboxSpec) -> dict[str, str]:
        """``env`` as a sandboxed command sees it: its home is the deployment's, and a
        temporary dir named by the platform is the sandbox's own ``/tmp``."""
        result = dict(env)
        if self.enabled:
            result["HOME"] = str(self.home(spec.deployment_id))
            if "TMPDIR" in result:
                result["TMPDIR"] = "/tmp"
            if spec.listen_fd is not None:
                result[LISTEN_FD_VAR] = str(spec.listen_fd)
                own = result.get("NODE_OPTIONS")
                result["NODE_OPTIONS"] = f"--require={LISTEN_SHIM}" + (f" {own}" if own else "")
        return result

    def prepare(self, spec: SandboxSpec, *, recursive: bool) -> None:
        """Create the deployment's home and, as root, give the deployment's uid what it
        may write (``recursive``: the whole project copy, after the source copied it)."""
        if not self.enabled:
            return
        home = self.home(spec.deployment_id)
        home.mkdir(parents=True, exist_ok=True)
        uid = self.uid(spec.deployment_id)
        if uid is None:
            return
        os.chmod(self.state_dir, 0o711)
        for folder in (home, *spec.writable):
            _chown_one(folder, uid)
        if recursive:
            _chown_tree(spec.workdir, uid)
        else:
            _chown_one(spec.workdir, uid)
        home.chmod(0o700)

    # --- starting ---------------------------------------------------------------------

    async def check(self) -> None:
        """Make one sandbox and run ``true`` in it (once per runner): the tools are
        there, the kernel allows user namespaces, pasta can open ``/dev/net/tun``.
        ``BuildFailed`` (step ``isolation``) naming the setting otherwise."""
        if not self.enabled or self._checked:
            return
        reason = self._missing()
        if reason is None:
            probe_dir = self.state_dir / "probe"
            probe_dir.mkdir(parents=True, exist_ok=True)
            spec = SandboxSpec("probe", probe_dir, probe_dir)
            try:
                await asyncio.to_thread(self.prepare, spec, recursive=False)
                started = await self._spawn_sandboxed(
                    ["/bin/sh", "-c", "exit 0"],
                    spec,
                    env={"PATH": "/usr/bin:/bin"},
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
            except BuildFailed as exc:
                reason = exc.message
            else:
                try:
                    _, err = await asyncio.wait_for(started.process.communicate(), 30)
                finally:
                    await started.close()
                if started.process.returncode != 0:
                    reason = _clean(err.decode("utf-8", "replace")) or (
                        f"a sandbox exited with code {started.process.returncode}"
                    )
        if reason is not None:
            _log.error("runner.isolation_unavailable", reason=reason)
            raise isolation_unavailable(reason)
        self._checked = True

    def _missing(self) -> str | None:
        if not sys.platform.startswith("linux"):
            return f"sandboxes need Linux namespaces, and this is {sys.platform}"
        bwrap = self.settings.bwrap_path or shutil.which("bwrap")
        pasta = self.settings.pasta_path or shutil.which("pasta")
        if bwrap is None:
            return "bwrap (bubblewrap) is not on PATH"
        if pasta is None:
            return "pasta (passt) is not on PATH"
        for tool in (bwrap, pasta):
            if not os.access(tool, os.X_OK):
                return f"{tool} is not an executable file"
        self._tools = (bwrap, pasta)
        tun = Path("/dev/net/tun")
        try:
            mode = tun.stat().st_mode
        except OSError:
            return "/dev/net/tun does not exist (pasta needs the tun driver)"
        if self.as_root and mode & 0o006 != 0o006:
            return (
                "/dev/net/tun is not readable and writable by other users (pasta runs as "
                "the deployment's uid; most distributions make it 0666: chmod 0666 "
                "/dev/net/tun)"
            )
        if not self.as_root and not os.access(tun, os.R_OK | os.W_OK):
            return "/dev/net/tun is not readable and writable by this user"
        return None

    def visible(self, program: str, spec: SandboxSpec) -> bool:
        """Whether ``program`` (an absolute path) exists inside the sandbox."""
        if not self.enabled:
            return True
        real = Path(os.path.realpath(program))
        roots = [Path("/usr"), *self.ro_paths, spec.workdir]
        return any(real.is_relative_to(root) for root in roots)

    async def spawn(
        self,
        argv: Sequence[str],
        spec: SandboxSpec,
        *,
        env: Mapping[str, str],
        stdin: int,
        stdout: int,
        stderr: int,
    ) -> Sandboxed:
        """Start ``argv`` in ``spec``'s sandbox, in a session and process group of its
        own; ``OSError`` when it cannot be started, ``BuildFailed`` (step
        ``isolation``) when the sandbox cannot be made."""
        if not self.enabled:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=spec.cwd,
                env=dict(env),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
            return Sandboxed(process)
        await self.check()
        return await self._spawn_sandboxed(
            argv, spec, env=env, stdin=stdin, stdout=stdout, stderr=stderr
        )

    async def _spawn_sandboxed(
        self,
        argv: Sequence[str],
        spec: SandboxSpec,
        *,
        env: Mapping[str, str],
        stdin: int,
        stdout: int,
        stderr: int,
    ) -> Sandboxed:
        if self._tools is None:
            reason = self._missing()
            if reason is not None:
                raise isolation_unavailable(reason)
        assert self._tools is not None
        bwrap, pasta = self._tools
        uid = self.uid(spec.deployment_id)
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        shim_read = -1
        extra_fds: tuple[int, ...] = ()
        if spec.listen_fd is not None:
            shim_read, shim_write = os.pipe()
            with os.fdopen(shim_write, "wb") as shim:
                shim.write(_SHIM_SOURCE.read_bytes())
            extra_fds = (spec.listen_fd, shim_read)
        folders = (spec.workdir, *spec.writable, self.home(spec.deployment_id))
        process: asyncio.subprocess.Process | None = None
        try:
            if uid is None:
                launcher: list[str] = [bwrap]
                sources = {folder: folder for folder in folders}
            else:
                launcher, sources = self._as_uid(uid, folders, bwrap)
            args = self._bwrap_args(spec, info_write, block_read, sources, shim_read)
            process = await asyncio.create_subprocess_exec(
                *launcher,
                *args,
                "--",
                *_WITHOUT_PWD,
                *argv,
                env=dict(env),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                pass_fds=(info_write, block_read, *extra_fds),
                start_new_session=True,
            )
            for fd in (info_write, block_read, shim_read):
                if fd >= 0:
                    os.close(fd)
            info_write = block_read = shim_read = -1
            info = await asyncio.to_thread(_read_info, info_read)
            if info is None:
                code = await process.wait()
                raise BuildFailed(
                    "isolation", f"the sandbox could not be made (bwrap exited with code {code})"
                )
            init = psutil.Process(int(info["child-pid"]))
            # bwrap's child configures its loopback after it reported its pid; pasta's
            # netlink requests at the same time make that fail now and then.
            await _wait_for_loopback(init.pid)
            network, network_process = await self._connect(
                init, spec, _pasta_launcher(uid, pasta, die_with_parent=spec.keep_with_parent)
            )
            os.write(block_write, b"1")
            return Sandboxed(process, init, network_process, network)
        except BaseException:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(process.wait()), 5)
            raise
        finally:
            for fd in (info_read, info_write, block_read, block_write, shim_read):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    async def _connect(
        self,
        init: psutil.Process,
        spec: SandboxSpec,
        pasta: Sequence[str],
    ) -> tuple[asyncio.subprocess.Process, psutil.Process]:
        """Start pasta on the sandbox's network namespace; return once the namespace
        has its interface and routes."""
        net_fd = os.open(f"/proc/{init.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            user_fd = fcntl.ioctl(net_fd, _NS_GET_USERNS)
        except OSError:
            os.close(net_fd)
            raise
        try:
            outbound = ",".join(str(p) for p in spec.host_ports) or "none"
            child = await asyncio.create_subprocess_exec(
                *pasta,
                "--foreground",
                "--quiet",
                "--config-net",
                "--no-map-gw",
                "--tcp-ports",
                "none",
                "--udp-ports",
                "none",
                "--tcp-ns",
                outbound,
                "--udp-ns",
                "none",
                "--userns",
                f"/proc/self/fd/{user_fd}",
                "--netns",
                f"/proc/self/fd/{net_fd}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(net_fd, user_fd),
                start_new_session=True,
            )
        finally:
            os.close(net_fd)
            os.close(user_fd)
        deadline = time.monotonic() + _NETWORK_READY_S
        routes = Path(f"/proc/{init.pid}/net/route")
        while True:
            if child.returncode is not None or child.stderr is None:
                break
            table = _read_proc(routes)
            if table is None:
                break  # the sandbox is gone
            # A route below the header: pasta configured the interface. Its forwarded
            # ports (the collector's) listen inside a moment later: wait for them too,
            # or a server that posts at once is refused.
            if table.count("\n") > 1 and _listening(init.pid, spec.host_ports):
                return child, psutil.Process(child.pid)
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.wait()), 0.003)
        message = ""
        if child.returncode is None:
            child.kill()
        else:
            assert child.stderr is not None
            message = _clean((await child.stderr.read()).decode("utf-8", "replace"))
        await child.wait()
        raise BuildFailed(
            "isolation",
            "the sandbox's network could not be set up" + (f": {message}" if message else ""),
        )

    def _read_host_view(self) -> list[str]:
        """The read-only part of every sandbox of this runner: the host's ``/usr`` and
        its links, the ``ETC_ENTRIES`` that exist, ``sandbox_ro_paths``, the data and
        builds dirs masked where those hold them, and private ``/proc``, ``/dev``,
        ``/dev/shm`` and ``/tmp``. Read once: it is the same for every step."""
        args = ["--ro-bind", "/usr", "/usr"]
        for name in _ROOT_LINKS:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        for name in ETC_ENTRIES:
            path = Path("/etc") / name
            if path.exists():
                args += ["--ro-bind", str(path), str(path)]
        for path in self.ro_paths:
            if path.exists():
                args += ["--ro-bind", str(path), str(path)]
        # What the platform keeps is never visible, even under a bound path.
        shown = [Path("/usr"), Path("/etc"), *self.ro_paths]
        for path in self.protected:
            if any(path.is_relative_to(root) for root in shown):
                args += ["--tmpfs", str(path)]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
        return args

    def _as_uid(
        self, uid: int, folders: Sequence[Path], bwrap: str
    ) -> tuple[list[str], dict[Path, Path]]:
        """The launcher for a deployment's uid: as root, in a mount namespace of its
        own, bind each folder under a stage every uid can walk (bubblewrap, running
        as the deployment's uid, must reach what it binds, and the platform's folders
        may sit under one only root may walk, such as ``/root``), then drop to the
        uid and start bubblewrap."""
        stage = _stage_dir()
        sources = {folder: stage / str(index) for index, folder in enumerate(folders)}
        launcher = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            _STAGE_SCRIPT,
            "sh",
            str(stage),
            *(str(folder) for folder in folders),
            "--",
            *_setpriv(uid),
            bwrap,
        ]
        return launcher, sources

    def _bwrap_args(
        self,
        spec: SandboxSpec,
        info_fd: int,
        block_fd: int,
        sources: Mapping[Path, Path],
        shim_fd: int,
    ) -> list[str]:
        args = [
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--info-fd",
            str(info_fd),
            "--block-fd",
            str(block_fd),
        ]
        if spec.keep_with_parent:
            args.append("--die-with-parent")
        if self._host_view is None:
            self._host_view = self._read_host_view()
        args += self._host_view
        for folder, source in sources.items():
            args += ["--bind", str(source), str(folder)]
        if shim_fd >= 0:
            args += ["--ro-bind-data", str(shim_fd), LISTEN_SHIM]
        args += ["--chdir", str(spec.cwd)]
        return args


def _listening(pid: int, ports: Sequence[int]) -> bool:
    """Whether every port in ``ports`` has a listening TCP socket in the network
    namespace of ``pid`` (``/proc/<pid>/net/tcp`` and ``tcp6``)."""
    if not ports:
        return True
    listening: set[int] = set()
    for name in ("tcp", "tcp6"):
        for line in (_read_proc(Path(f"/proc/{pid}/net/{name}")) or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
                listening.add(int(fields[1].rsplit(":", 1)[1], 16))
    return all(port in listening for port in ports)


def _read_proc(path: Path) -> str | None:
    """A file of ``/proc/{pid}/net/`` (what the process's network namespace holds), or
    ``None`` when the process is gone. A read of procfs, not disk."""
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return None


def _read_info(fd: int) -> dict[str, Any] | None:
    """bwrap's ``--info-fd`` document (``{"child-pid": N}``), or ``None`` at EOF."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            value = json.loads(data)
        except ValueError:
            continue
        return value if isinstance(value, dict) and "child-pid" in value else None
    return None


# Run as root in a private mount namespace: a tmpfs on the stage, each folder bound
# to a numbered mount point on it, then the rest of the command line (setpriv, bwrap).
_STAGE_SCRIPT = """set -eu
stage=$1; shift
mount -t tmpfs -o mode=0711,size=64k mastra-sandbox "$stage"
i=0
while [ "$1" != "--" ]; do
  mkdir "$stage/$i"
  mount --bind "$1" "$stage/$i"
  i=$((i + 1))
  shift
done
shift
unset PWD OLDPWD
exec "$@"
"""


def _setpriv(uid: int) -> list[str]:
    """Run the rest of a command line as ``uid`` (and its group), no other groups,
    no capabilities, no way to gain privileges. (setpriv rather than Popen's
    ``user=``, which uvloop's ``subprocess_exec`` does not take.)"""
    return ["setpriv", *_as_uid_options(uid), "--"]


def _as_uid_options(uid: int) -> list[str]:
    return [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs"]


def _pasta_launcher(uid: int | None, pasta: str, *, die_with_parent: bool) -> list[str]:
    """pasta as the deployment's uid (as root); for a build step, killed when the
    platform process that runs the step dies, as the step itself is (bwrap's
    ``--die-with-parent``): pasta holds the sandbox's network namespace open and
    would otherwise outlive it. A server's pasta outlives a platform restart with the
    server, and is ended when the server is stopped."""
    options = _as_uid_options(uid) if uid is not None else []
    if die_with_parent:
        options += ["--pdeathsig", "KILL"]
    return ["setpriv", *options, "--", pasta] if options else [pasta]


async def _wait_for_loopback(pid: int, timeout_s: float = _NETWORK_READY_S) -> None:
    """Until bwrap's child has brought up the sandbox's loopback (``127.0.0.1`` in
    the namespace's local routes), or is gone."""
    deadline = time.monotonic() + timeout_s
    trie = Path(f"/proc/{pid}/net/fib_trie")
    while time.monotonic() < deadline:
        text = _read_proc(trie)
        if text is None or "127.0.0.1" in text:
            return
        await asyncio.sleep(0.002)


def _stage_dir() -> Path:
    """An empty folder every uid can walk, on which each root-launched sandbox mounts
    its own stage (in a mount namespace of its own: the host never sees it)."""
    for base in (Path("/run"), Path(tempfile.gettempdir())):
        stage = base / "mastra-admin-sandbox"
        try:
            stage.mkdir(mode=0o755, exist_ok=True)
        except OSError:
            continue
        return stage
    raise BuildFailed("isolation", "no folder for the sandbox's stage under /run or /tmp")


def _chown_one(path: Path, uid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, uid, uid, follow_symlinks=False)


def _chown_tree(root: Path, uid: int) -> None:
    _chown_one(root, uid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            _chown_one(Path(folder) / name, uid)


def _allocate_uid(state_dir: Path, deployment_id: str, base: int, count: int) -> int:
    """The deployment's uid: recorded once, never reused for another deployment
    (``uids.json`` under an exclusive lock, so several processes agree)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "uids.json"
    with open(state_dir / "uids.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            mapping: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            mapping = {}
        if deployment_id in mapping:
            return int(mapping[deployment_id])
        used = set(mapping.values())
        uid = next((base + i for i in range(count) if base + i not in used), None)
        if uid is None:
            raise BuildFailed(
                "isolation",
                f"all {count} sandbox uids from {base} are in use; raise runner.sandbox_uid_count",
            )
        mapping[deployment_id] = uid
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(mapping, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temp, path)
        return uid


def _clean(text: str) -> str:
    """pasta also complains that it cannot reach syslog: keep its real message."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("Failed to send")
    ]
    return "; ".join(lines)
