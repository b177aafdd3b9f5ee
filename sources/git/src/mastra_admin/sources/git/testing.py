"""Real git for tests: a smart-HTTP server backed by ``git http-backend`` and helpers that
write bare repositories, commits, tags and force-pushes.

    with GitHttpServer(tmp_path / "served", token="s3cret") as server:
        make_repository(server.root, "app", {"package.json": "{}", "run.sh": Executable("...")})
        url = server.url("app")    # http://127.0.0.1:<port>/app.git

The server is plain http on loopback: ``check_repository_url`` accepts it only with
``GitSourceSettings(allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True)``.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

__all__ = [
    "AUTHOR_EMAIL",
    "AUTHOR_NAME",
    "Executable",
    "FileContent",
    "GitHttpServer",
    "ServedRequest",
    "Symlink",
    "commit",
    "force_push",
    "make_repository",
    "tag",
]

AUTHOR_NAME = "Test"
AUTHOR_EMAIL = "test@example.com"


@dataclass(frozen=True)
class Executable:
    """File content committed with the executable bit (mode 100755)."""

    content: str | bytes


@dataclass(frozen=True)
class Symlink:
    """A symlink committed with ``target`` as its text (mode 120000)."""

    target: str


FileContent = str | bytes | Executable | Symlink


def _git_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        **extra,
    }


def _git(
    repo: Path, *args: str, data: bytes | None = None, env: Mapping[str, str] | None = None
) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repo), *args],
        input=data,
        capture_output=True,
        env=_git_env(**(env or {})),
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


def _quoted(path: str) -> bytes:
    """``path`` C-quoted as ``git fast-import`` reads it (any byte goes through)."""
    out = bytearray(b'"')
    for byte in path.encode():
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte >= 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def _data(content: bytes) -> bytes:
    return b"data %d\n" % len(content) + content + b"\n"


def _write_commit(
    repo: Path,
    files: Mapping[str, FileContent | None],
    message: str,
    parent: str | None,
) -> str:
    """A commit of ``parent``'s tree (or an empty one) with ``files`` written over it;
    ``None`` removes a path. One ``git fast-import`` for the whole commit."""
    signature = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {int(time.time())} +0000".encode()
    stream = bytearray(b"commit refs/mastra-testing/scratch\nmark :1\n")
    stream += b"author " + signature + b"\ncommitter " + signature + b"\n"
    stream += _data(message.encode())
    if parent is not None:
        stream += b"from " + parent.encode() + b"\n"
    for path, content in files.items():
        if content is None:
            stream += b"D " + _quoted(path) + b"\n"
            continue
        raw: str | bytes
        if isinstance(content, Symlink):
            mode, raw = b"120000", content.target
        elif isinstance(content, Executable):
            mode, raw = b"100755", content.content
        else:
            mode, raw = b"100644", content
        data = raw.encode() if isinstance(raw, str) else raw
        stream += b"M " + mode + b" inline " + _quoted(path) + b"\n" + _data(data)
    stream += b"\n"
    with tempfile.TemporaryDirectory(prefix="git-testing-") as scratch:
        marks = os.path.join(scratch, "marks")
        _git(
            repo, "fast-import", "--quiet", "--force", f"--export-marks={marks}", data=bytes(stream)
        )
        sha = Path(marks).read_text().split()[1]
    _git(repo, "update-ref", "-d", "refs/mastra-testing/scratch")
    return sha


def make_repository(
    root: Path, name: str, files: Mapping[str, FileContent], *, message: str = "first commit"
) -> Path:
    """A bare repository ``root/<name>.git`` whose ``main`` holds one commit of ``files``
    (author ``Test <test@example.com>``). Fetching any commit by id is allowed."""
    repo = root / f"{name}.git"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(repo)],
        env=_git_env(),
        check=True,
        timeout=60,
    )
    _git(repo, "config", "uploadpack.allowAnySHA1InWant", "true")
    _git(repo, "config", "http.receivepack", "false")
    sha = _write_commit(repo, files, message, parent=None)
    _git(repo, "update-ref", "refs/heads/main", sha)
    return repo


def commit(
    repo: Path,
    files: Mapping[str, FileContent | None],
    message: str = "a change",
    *,
    ref: str = "main",
) -> str:
    """Add a commit on branch ``ref`` (or a full ref: ``refs/pull/7/head``, as a host
    keeps pull requests) that writes ``files`` (``None`` removes one); its sha. A ref
    that does not exist yet starts from ``main``."""
    full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    try:
        parent = _git(repo, "rev-parse", "--verify", "--quiet", f"{full}^{{commit}}")
        old = parent
    except RuntimeError:
        parent, old = _git(repo, "rev-parse", "refs/heads/main"), ""
    sha = _write_commit(repo, files, message, parent=parent)
    _git(repo, "update-ref", full, sha, *([old] if old else []))
    return sha


def force_push(
    repo: Path, files: Mapping[str, FileContent], message: str = "rewritten history"
) -> str:
    """Replace ``main`` by a new root commit of ``files`` and drop every commit that is
    no longer reachable, as a host does after a force-push and a garbage collection."""
    sha = _write_commit(repo, files, message, parent=None)
    _git(repo, "update-ref", "refs/heads/main", sha)
    _git(repo, "reflog", "expire", "--expire=now", "--all")
    _git(repo, "gc", "--quiet", "--prune=now")
    return sha


def tag(
    repo: Path, name: str, target: str = "refs/heads/main", *, message: str | None = None
) -> str:
    """Tag ``target`` (annotated when ``message`` is given); the tagged commit's sha."""
    sha = _git(repo, "rev-parse", f"{target}^{{commit}}")
    if message is None:
        _git(repo, "update-ref", f"refs/tags/{name}", sha)
    else:
        _git(repo, "tag", "-a", "-m", message, name, sha)
    return sha


@dataclass(frozen=True)
class ServedRequest:
    """One request the server answered; ``bytes_sent`` counts the response body."""

    method: str
    path: str
    query: str
    status: int
    bytes_sent: int


class _Handler(BaseHTTPRequestHandler):
    server: _GitHttpd
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        return

    def _authorized(self, token: str) -> bool:
        expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        path, _, query = self.path.partition("?")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.server.owner.requests.append(
            ServedRequest(self.command, path, query, status, len(body))
        )

    def _serve(self) -> None:
        owner = self.server.owner
        if owner.delay_s and owner._stopping.wait(owner.delay_s):
            return
        if owner.token is not None and not self._authorized(owner.token):
            self._send(401, [("WWW-Authenticate", 'Basic realm="git"')], b"unauthorized\n")
            return
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if owner.token is not None:
            env["REMOTE_USER"] = "x-access-token"
        if protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = protocol
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        done = subprocess.run(
            [owner.git, "http-backend"],
            input=body,
            capture_output=True,
            env=env,
            check=False,
            timeout=120,
        )
        head, separator, payload = done.stdout.partition(b"\r\n\r\n")
        if not separator:
            head, separator, payload = done.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name and name.lower() != "content-length":
                headers.append((name.strip(), value.strip()))
        if not separator:
            status, payload = 500, done.stderr
        self._send(status, headers, payload)


class _GitHttpd(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: GitHttpServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class GitHttpServer:
    """Serves the bare repositories in ``root`` over smart HTTP on 127.0.0.1 (a free
    port), with the real ``git http-backend``. Use as a context manager.

    ``token``: when set, every request must carry
    ``Authorization: Basic base64(x-access-token:<token>)``, else 401. ``delay_s``: every
    request waits this long first (timeouts). ``requests`` lists what was answered.
    """

    def __init__(
        self,
        root: Path,
        *,
        token: str | None = None,
        delay_s: float = 0.0,
        git: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.token = token
        self.delay_s = delay_s
        found = git or shutil.which("git")
        if found is None:
            raise RuntimeError("git is not installed")
        self.git = found
        self.requests: list[ServedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _GitHttpd | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    def url(self, name: str) -> str:
        """``http://127.0.0.1:<port>/<name>.git``."""
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def pack_bytes(self) -> int:
        """Bytes of every ``git-upload-pack`` answer so far (the packs sent)."""
        return sum(r.bytes_sent for r in self.requests if r.path.endswith("/git-upload-pack"))

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._httpd = _GitHttpd(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="git-http-server",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = self._thread = None

    def __enter__(self) -> GitHttpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
