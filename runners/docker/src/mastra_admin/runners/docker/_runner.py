"""``DockerRunner``: builds in build containers, runs every server in a container.

A build copies the project (through the source) into ``{state}/{build_id}/src``, puts
it into a volume of the build, and runs the install and build steps each in a
container of the base image, as an unprivileged uid, with the project's package
manager cache in a volume of the project. The build output alone is then copied into
a fresh container of the base image and committed as the build's image
(``{image_repository}:{build_id}``, labelled with project, deployment, build and
commit). A server is one container of that image on its deployment's own network,
published on the host's loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import tarfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from mastra_admin.core import env_contract
from mastra_admin.core.build_steps import (
    START_COMMAND,
    allowed_environment,
    build_command,
    describe,
    detect_package_manager,
    install_command,
    install_with_dev,
    mask_secrets,
    probe,
)
from mastra_admin.core.errors import BuildFailed, Conflict, InvalidInput, MastraAdminError
from mastra_admin.core.models import HealthStatus, RunningServer, new_id, utcnow
from mastra_admin.core.runner import (
    BuildArtifact,
    BuildContext,
    LogSink,
    ProjectRunner,
    ServerExit,
    ServerStats,
)
from mastra_admin.core.source import ProjectSourceProvider
from mastra_admin.runners.docker._engine import DockerEngine, EngineError
from mastra_admin.runners.docker._files import (
    BuildFolder,
    RuntimeLog,
    check_id,
    read_json,
    tar_dirs,
    tar_file,
    tar_folder,
    write_json_atomic,
)
from mastra_admin.runners.docker._forward import Forwarder
from mastra_admin.runners.docker._settings import DockerRunnerSettings

__all__ = ["LABEL", "DockerRunner"]

_log = structlog.get_logger("mastra_admin.runners.docker")

LABEL = "io.mastra-admin"
"""Prefix of every label the runner puts on what it creates."""
_MANAGED = f"{LABEL}.managed"
_ROLE = f"{LABEL}.role"
_PROJECT = f"{LABEL}.project"
_DEPLOYMENT = f"{LABEL}.deployment"
_BUILD = f"{LABEL}.build"
_SERVER = f"{LABEL}.server"
_COMMIT = f"{LABEL}.commit"

APP_DIR = "/app"
PROJECT_DIR = f"{APP_DIR}/project"
CACHE_DIR = "/cache"
CA_PATH = "/etc/mastra-admin/ca.pem"
OBSERVABILITY_DIR = "/observability"
_LOG_TAIL_KEEP = 200
_MARKER = f"{PROJECT_DIR}/node_modules/.mastra-admin-install"


@dataclass
class _Server:
    id: str
    container: str
    deployment_id: str
    build_id: str
    folder: BuildFolder
    mask: Callable[[str], str]
    stopping: bool = False
    tail: list[str] = field(default_factory=list)
    follower: asyncio.Task[None] | None = None
    figures: dict[str, Any] | None = None
    """The engine's latest figures of the container (``_watch_stats``)."""
    stats_task: asyncio.Task[None] | None = None


class DockerRunner(ProjectRunner):
    """Builds and runs Mastra servers on one Docker Engine.

    :param source: copies a project into a build folder (``get_project_path``).
    :param settings: the engine, base image, limits; defaults suit a local engine.
    :param data_dir: the admin's data dir; the runner's files go to
        ``{data_dir}/docker`` unless ``settings.state_dir`` says otherwise.
    """

    type: ClassVar[str] = "docker"

    def __init__(
        self,
        source: ProjectSourceProvider,
        settings: DockerRunnerSettings | None = None,
        *,
        data_dir: str | Path = ".mastra-admin",
    ) -> None:
        self.source = source
        self.settings = settings or DockerRunnerSettings()
        self.state_dir = self.settings.resolved_state_dir(Path(data_dir))
        self.engine = DockerEngine(self.settings.engine_url)
        self.forwarder = Forwarder()
        self._servers: dict[str, _Server] = {}
        self._building: set[str] = set()
        self._starting: set[str] = set()
        self._events: asyncio.Task[None] | None = None
        self._modules_locks: dict[str, asyncio.Lock] = {}

    # --- names -----------------------------------------------------------------------

    def _folder(self, build_id: str) -> BuildFolder:
        try:
            return BuildFolder.of(self.state_dir, build_id)
        except ValueError as exc:
            raise InvalidInput(str(exc), details={"build_id": build_id}) from exc

    def image_of(self, build_id: str) -> str:
        return f"{self.settings.image_repository}:{check_id(build_id)}"

    @staticmethod
    def network_of(deployment_id: str) -> str:
        return f"mastra-admin-d-{check_id(deployment_id)}"

    @staticmethod
    def cache_volume_of(project_id: str) -> str:
        return f"mastra-admin-cache-{check_id(project_id)}"

    @staticmethod
    def modules_volume_of(deployment_id: str) -> str:
        return f"mastra-admin-modules-{check_id(deployment_id)}"

    def _labels(self, ctx: BuildContext, role: str, **more: str) -> dict[str, str]:
        labels = {
            _MANAGED: "1",
            _ROLE: role,
            _PROJECT: ctx.project.id,
            _DEPLOYMENT: ctx.deployment.id,
            _BUILD: ctx.build.id,
        }
        if ctx.build.commit_sha:
            labels[_COMMIT] = ctx.build.commit_sha
        labels.update(more)
        return labels

    # --- environment ------------------------------------------------------------------

    def build_env(self, ctx: BuildContext) -> dict[str, str]:
        """What install and build steps see: the allow-listed part of the admin's
        environment, the project's variables, and the runner's paths."""
        env = allowed_environment(self.settings.build_env_allow)
        env.update(ctx.env)
        env.update(
            {
                "HOME": "/tmp",
                "npm_config_cache": f"{CACHE_DIR}/npm",
                "npm_config_update_notifier": "false",
                "YARN_CACHE_FOLDER": f"{CACHE_DIR}/yarn",
                "npm_config_store_dir": f"{CACHE_DIR}/pnpm",
                "BUN_INSTALL_CACHE_DIR": f"{CACHE_DIR}/bun",
            }
        )
        if self._ca_bundle() is not None:
            env["NODE_EXTRA_CA_CERTS"] = CA_PATH
            env["npm_config_cafile"] = CA_PATH
        return env

    def server_env(self, ctx: BuildContext) -> dict[str, str]:
        """DESIGN §6 inside a container: the context's environment, ``PORT``,
        ``MASTRA_HOST=0.0.0.0``, the two observability dirs (mounted from this
        machine), ``HOME`` on the container's own ``/tmp`` and ``NODE_OPTIONS`` when
        configured."""
        env = dict(ctx.env)
        env[env_contract.PORT] = str(self.settings.container_port)
        env[env_contract.HOST] = "0.0.0.0"
        env[env_contract.TRACES_TARGET_DIR] = f"{OBSERVABILITY_DIR}/spans"
        env[env_contract.LOGS_TARGET_DIR] = f"{OBSERVABILITY_DIR}/logs"
        env["HOME"] = "/tmp"
        if ctx.project.settings.node_options:
            env["NODE_OPTIONS"] = ctx.project.settings.node_options
        return env

    def _ca_bundle(self) -> Path | None:
        """The CA bundle for build containers: the setting, else the platform's own
        ``NODE_EXTRA_CA_CERTS``; ``None`` when there is no such file."""
        bundle = self.settings.ca_bundle
        if bundle is None and os.environ.get("NODE_EXTRA_CA_CERTS"):
            bundle = Path(os.environ["NODE_EXTRA_CA_CERTS"])
        return bundle if bundle is not None and bundle.is_file() else None

    def _security(self) -> dict[str, Any]:
        return {
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "PidsLimit": self.settings.pids_limit,
            "Init": True,
            "RestartPolicy": {"Name": "no"},
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
        }

    # --- build -----------------------------------------------------------------------

    async def build(self, ctx: BuildContext, log: LogSink) -> BuildArtifact:
        build_id = ctx.build.id
        folder = self._folder(build_id)
        if build_id in self._building:
            raise Conflict(f"build {build_id} is already running", details={"build_id": build_id})
        self._building.add(build_id)
        try:
            return await self._build(ctx, folder, log)
        except EngineError as exc:
            raise BuildFailed(
                "build", f"the Docker engine refused: {exc.message}", details={"engine": True}
            ) from exc
        finally:
            self._building.discard(build_id)

    async def _build(self, ctx: BuildContext, folder: BuildFolder, log: LogSink) -> BuildArtifact:
        mask = mask_secrets(ctx.secrets)

        async def sink(line: str) -> None:
            await log(mask(line))

        started = time.monotonic()
        bound = _log.bind(build_id=ctx.build.id, deployment_id=ctx.deployment.id)
        bound.info("build.started", base_image=self.settings.base_image)
        await self._require_base_image()
        await asyncio.to_thread(
            folder.prepare,
            project_id=ctx.project.id,
            deployment_id=ctx.deployment.id,
            build_id=ctx.build.id,
            uid=self.settings.uid,
        )
        await sink(f"Copying {ctx.source.name} into the build")
        try:
            root = await self.source.get_project_path(ctx.source, folder.src)
        except MastraAdminError as exc:
            raise BuildFailed("copy", f"copying the project failed: {exc.message}") from exc
        except OSError as exc:
            raise BuildFailed("copy", f"copying the project failed: {exc}") from exc
        root = await asyncio.to_thread(_project_root, Path(root), folder, ctx.source.path)

        settings = ctx.project.settings
        manager = detect_package_manager(root, ctx.source.metadata.get("package_manager"))
        steps: list[tuple[str, list[str], float]] = [
            (
                "install",
                settings.install_command or install_with_dev(install_command(root, manager)),
                settings.install_timeout_s or self.settings.install_timeout_s,
            ),
            (
                "build",
                settings.build_command or build_command(manager),
                settings.build_timeout_s or self.settings.build_timeout_s,
            ),
        ]
        volume = f"mastra-admin-build-{check_id(ctx.build.id)}"
        cache = self.cache_volume_of(ctx.project.id)
        labels = self._labels(ctx, "build")
        # npm keeps the folder node_modules itself (it empties it), so it may be a
        # volume of the deployment: an unchanged lock file then installs nothing.
        modules = (
            self.modules_volume_of(ctx.deployment.id)
            if manager == "npm" and not settings.install_command
            else None
        )
        install_key = await asyncio.to_thread(_install_key, root, steps[0][1], self.settings)
        await self.engine.create_volume(volume, labels)
        await self.engine.create_volume(
            cache, {_MANAGED: "1", _ROLE: "cache", _PROJECT: ctx.project.id}
        )
        if modules is not None:
            await self.engine.create_volume(
                modules, {_MANAGED: "1", _ROLE: "modules", _DEPLOYMENT: ctx.deployment.id}
            )
        containers: list[str] = []
        installed = False
        lock = self._modules_locks.setdefault(ctx.deployment.id, asyncio.Lock())
        try:
            async with lock if modules is not None else contextlib.nullcontext():
                env = self.build_env(ctx)
                for index, (step, argv, timeout_s) in enumerate(steps):
                    name = f"mastra-admin-build-{ctx.build.id}-{step}"
                    await self.engine.remove(name)  # a retried build's leftover
                    container = await self.engine.create_container(
                        name, self._build_container(argv, env, volume, cache, modules, labels)
                    )
                    containers.append(container)
                    if index == 0:
                        await self._fill(container, root, folder, modules is not None)
                        if modules is not None and await self._installed(container) == install_key:
                            await sink(
                                "install skipped: node_modules of this deployment's last build "
                                "came from the same lock file"
                            )
                            continue
                    elif installed:
                        await self._mark_installed(container, install_key)
                    await sink(f"$ {describe(argv)}")
                    bound.info("build.step_started", step=step, command=describe(argv))
                    step_started = time.monotonic()
                    await self._run_step(step, container, argv, timeout_s, sink)
                    installed = modules is not None and step == "install"
                    took = time.monotonic() - step_started
                    await sink(f"{step} finished in {took:.1f} s")
                    bound.info("build.step_finished", step=step, duration_s=round(took, 3))
                image = await self._commit_image(ctx, containers[-1], bound)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._remove_all(containers, volume))
        created = datetime.now(UTC)
        await asyncio.to_thread(
            write_json_atomic,
            folder.artifact_file,
            {
                "build_id": ctx.build.id,
                "deployment_id": ctx.deployment.id,
                "project_id": ctx.project.id,
                "image": image,
                "package_manager": manager,
                "created_at": created.isoformat(),
            },
        )
        duration = time.monotonic() - started
        await sink(f"Build finished in {duration:.1f} s: image {self.image_of(ctx.build.id)}")
        bound.info("build.finished", duration_s=round(duration, 3))
        return BuildArtifact(
            build_id=ctx.build.id, path=self.image_of(ctx.build.id), created_at=created
        )

    async def _fill(self, container: str, root: Path, folder: BuildFolder, modules: bool) -> None:
        """Put the project copy (owned by ``uid``) and the cache folders into the build's
        volumes, through the first step's container; the copy on disk goes."""
        uid = self.settings.uid
        await self.engine.put_archive(container, "/", tar_dirs("app/", uid=uid))
        await self.engine.put_archive(container, APP_DIR, tar_folder(root, "project", uid=uid))
        if modules:  # the volume's root is the engine's: give it to uid
            await self.engine.put_archive(
                container, PROJECT_DIR, tar_dirs("node_modules/", uid=uid)
            )
        await self.engine.put_archive(
            container, CACHE_DIR, tar_dirs("npm/", "yarn/", "pnpm/", "bun/", uid=uid)
        )
        await asyncio.to_thread(shutil.rmtree, folder.src, True)

    async def _installed(self, container: str) -> str | None:
        """The install key the deployment's node_modules was made with, if any."""
        try:
            data = b"".join([c async for c in self.engine.get_archive(container, _MARKER)])
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return await asyncio.to_thread(_read_tar_member, data)

    async def _mark_installed(self, container: str, key: str | None) -> None:
        """Record, after a successful install, what node_modules was made from."""
        if key is not None:
            await self.engine.put_archive(
                container,
                f"{PROJECT_DIR}/node_modules",
                tar_file(_MARKER.rsplit("/", 1)[1], key.encode(), uid=self.settings.uid),
            )

    async def _remove_all(self, containers: Sequence[str], volume: str | None) -> None:
        for container in containers:
            await self.engine.remove(container)
        if volume is not None:
            await self.engine.remove_volume(volume)

    async def _require_base_image(self) -> None:
        if await self.engine.image(self.settings.base_image) is None:
            raise BuildFailed(
                "install",
                f"the base image {self.settings.base_image} is not on the Docker engine: "
                "pull or build it there, or set runner.base_image",
                details={"setting": "runner.base_image"},
            )

    def _build_container(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        volume: str,
        cache: str,
        modules: str | None,
        labels: Mapping[str, str],
    ) -> dict[str, Any]:
        mounts: list[dict[str, Any]] = [
            {"Type": "volume", "Source": volume, "Target": APP_DIR},
            {"Type": "volume", "Source": cache, "Target": CACHE_DIR},
        ]
        if modules is not None:
            mounts.append(
                {"Type": "volume", "Source": modules, "Target": f"{PROJECT_DIR}/node_modules"}
            )
        bundle = self._ca_bundle()
        if bundle is not None:
            mounts.append(
                {"Type": "bind", "Source": str(bundle), "Target": CA_PATH, "ReadOnly": True}
            )
        memory = self.settings.build_memory_limit_mb * 1024 * 1024
        return {
            "Image": self.settings.base_image,
            "Cmd": list(argv),
            "Entrypoint": [],
            "WorkingDir": PROJECT_DIR,
            "User": f"{self.settings.uid}:{self.settings.uid}",
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Labels": dict(labels),
            "AttachStdout": False,
            "AttachStderr": False,
            "HostConfig": {
                **self._security(),
                "Mounts": mounts,
                "Memory": memory,
                "MemorySwap": memory,
                "NanoCpus": int(self.settings.build_cpu_limit * 1e9),
                "NetworkMode": "bridge",
            },
        }

    async def _run_step(
        self,
        step: str,
        container: str,
        argv: Sequence[str],
        timeout_s: float,
        sink: LogSink,
    ) -> None:
        tail: list[str] = []

        async def relay() -> None:
            async for line in _lines(self.engine.logs(container, follow=True, timestamps=False)):
                tail.append(line)
                del tail[: -self.settings.log_tail_lines]
                await sink(line)

        await self.engine.start(container)
        follower = asyncio.create_task(relay())
        try:
            async with asyncio.timeout(timeout_s):
                code = await self.engine.wait(container)
        except TimeoutError:
            await self.engine.kill(container)
            raise BuildFailed(
                step,
                f"{describe(argv)} did not finish within {timeout_s:g} s",
                details={"timeout_s": timeout_s},
            ) from None
        except BaseException:
            await asyncio.shield(self.engine.remove(container))
            raise
        finally:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(follower), 5.0)
            follower.cancel()
        if code != 0:
            quoted = ("\n" + "\n".join(tail)) if tail else ""
            raise BuildFailed(
                step,
                f"{describe(argv)} failed with exit code {code}{quoted}",
                details={"exit_code": code},
            )

    async def _commit_image(self, ctx: BuildContext, container: str, bound: Any) -> str:
        """The build's image: the base image and the build output, nothing else (the
        whole project when the project starts itself with a command of its own)."""
        custom_start = ctx.project.settings.start_command
        dirs: tuple[str, ...]
        if custom_start:
            source_path, target, dirs = PROJECT_DIR, APP_DIR, ("app/",)
        else:
            source_path = f"{PROJECT_DIR}/.mastra/output"
            target = f"{PROJECT_DIR}/.mastra"
            dirs = ("app/", "app/project/", "app/project/.mastra/")
        if await self._missing(container, f"{PROJECT_DIR}/{START_COMMAND[1]}") and not custom_start:
            raise BuildFailed(
                "build", f"the build finished but wrote no {START_COMMAND[1]} in the project"
            )
        labels = self._labels(ctx, "image")
        maker = await self.engine.create_container(
            f"mastra-admin-image-{ctx.build.id}",
            {
                "Image": self.settings.base_image,
                "Cmd": ["true"],
                "Labels": labels,
                "HostConfig": {"NetworkMode": "none"},
            },
        )
        try:
            await self.engine.put_archive(maker, "/", tar_dirs(*dirs))
            await self.engine.put_archive(
                maker, target, self.engine.get_archive(container, source_path)
            )
            image = await self.engine.commit(
                maker,
                repo=self.settings.image_repository,
                tag=check_id(ctx.build.id),
                config={
                    "Cmd": list(custom_start or START_COMMAND),
                    "Entrypoint": [],
                    "WorkingDir": PROJECT_DIR,
                    "User": f"{self.settings.uid}:{self.settings.uid}",
                    "Labels": labels,
                    "ExposedPorts": {f"{self.settings.container_port}/tcp": {}},
                },
            )
        finally:
            await asyncio.shield(self.engine.remove(maker))
        bound.info("build.image_committed", image=image)
        return str(image)

    async def _missing(self, container: str, path: str) -> bool:
        try:
            async for _ in self.engine.get_archive(container, path):
                break
        except EngineError as exc:
            if exc.status == 404:
                return True
            raise
        return False

    # --- artifacts -------------------------------------------------------------------

    async def has_artifact(self, build_id: str) -> BuildArtifact | None:
        try:
            reference = self.image_of(build_id)
        except ValueError:
            return None
        image = await self.engine.image(reference)
        if image is None or (image.get("Config") or {}).get("Labels", {}).get(_MANAGED) != "1":
            return None
        created = _parse_time(str(image.get("Created", ""))) or datetime.now(UTC)
        return BuildArtifact(build_id=build_id, path=reference, created_at=created)

    async def abandon_build(self, build_id: str) -> None:
        """Recovery: remove the containers and volume of a build whose worker is gone
        (they run on the engine, not as the worker's children); servers stay."""
        if build_id in self._building:
            return
        containers = await self.engine.containers({_MANAGED: "1", _BUILD: build_id})
        doomed = [
            str(c["Id"])
            for c in containers
            if (c.get("Labels") or {}).get(_ROLE) in ("build", "image")
        ]
        await self._remove_all(doomed, f"mastra-admin-build-{check_id(build_id)}")
        if doomed:
            _log.warning("build.leftovers_removed", build_id=build_id, containers=len(doomed))

    def artifact_roots(self) -> list[str]:
        """Each build's ``observability/``: spans and logs its servers wrote through the
        mounted dirs, and their output as the engine streamed it."""
        return [str(self.state_dir)]

    async def prune_artifacts(self, keep: Sequence[str]) -> list[str]:
        keep_ids = set(keep)
        in_use = {server.build_id for server in self._servers.values()}
        for container in await self.engine.containers({_MANAGED: "1", _ROLE: "server"}):
            in_use.add(str((container.get("Labels") or {}).get(f"{_LABEL_ARTIFACT}", "")))
        removed: list[str] = []
        for image in await self.engine.images({_MANAGED: "1", _ROLE: "image"}):
            build_id = str((image.get("Labels") or {}).get(_BUILD, ""))
            if (
                not build_id
                or build_id in keep_ids
                or build_id in in_use
                or build_id in self._building
                or build_id in self._starting
            ):
                continue
            with contextlib.suppress(ValueError):
                await self.engine.remove_image(self.image_of(build_id))
                removed.append(build_id)
                folder = BuildFolder.of(self.state_dir, build_id)
                if not any(s.folder == folder for s in self._servers.values()):
                    await asyncio.to_thread(_remove_build_files, folder)
        await self._prune_modules()
        if removed:
            _log.info("artifacts.pruned", removed=len(removed), kept=len(keep_ids))
        return removed

    async def _prune_modules(self) -> None:
        """node_modules volumes of deployments that have no image left (deleted, or
        never built successfully) and no build running here."""
        alive = {
            str((image.get("Labels") or {}).get(_DEPLOYMENT, ""))
            for image in await self.engine.images({_MANAGED: "1", _ROLE: "image"})
        }
        for volume in await self.engine.volumes({_MANAGED: "1", _ROLE: "modules"}):
            deployment = str((volume.get("Labels") or {}).get(_DEPLOYMENT, ""))
            lock = self._modules_locks.get(deployment)
            if deployment in alive or (lock is not None and lock.locked()):
                continue
            with contextlib.suppress(EngineError):  # in use by a build of another process
                await self.engine.remove_volume(str(volume["Name"]))

    # --- start -----------------------------------------------------------------------

    async def start(
        self, ctx: BuildContext, artifact: BuildArtifact, log: LogSink
    ) -> RunningServer:
        reference = self.image_of(artifact.build_id)
        folder = self._folder(artifact.build_id)
        self._starting.add(artifact.build_id)
        try:
            if await self.engine.image(reference) is None:
                raise BuildFailed(
                    "start",
                    f"the image of build {artifact.build_id} is gone ({reference})",
                    details={"artifact_build_id": artifact.build_id},
                )
            return await self._start(ctx, artifact, folder, reference, log)
        except EngineError as exc:
            raise BuildFailed(
                "start", f"the Docker engine refused: {exc.message}", details={"engine": True}
            ) from exc
        finally:
            self._starting.discard(artifact.build_id)

    async def _start(
        self,
        ctx: BuildContext,
        artifact: BuildArtifact,
        folder: BuildFolder,
        reference: str,
        log: LogSink,
    ) -> RunningServer:
        if not folder.observability.is_dir():
            await asyncio.to_thread(
                folder.prepare,
                project_id=ctx.project.id,
                deployment_id=ctx.deployment.id,
                build_id=artifact.build_id,
                uid=self.settings.uid,
            )
        mask = mask_secrets(ctx.secrets)
        settings = ctx.project.settings
        health_path = settings.health_path or "/health"
        timeout_s = settings.health_timeout_s or self.settings.health_timeout_s
        server_id = new_id()
        network = self.network_of(ctx.deployment.id)
        net = await self.engine.create_network(
            network, {_MANAGED: "1", _ROLE: "network", _DEPLOYMENT: ctx.deployment.id}
        )
        env = await self._reachable_collector(self.server_env(ctx), net, server_id)
        name = f"mastra-admin-{server_id}"
        labels = self._labels(
            ctx, "server", **{_SERVER: server_id, _LABEL_ARTIFACT: artifact.build_id}
        )
        server = _Server(server_id, name, ctx.deployment.id, ctx.build.id, folder, mask)
        try:
            container = await self.engine.create_container(
                name,
                self._server_container(ctx, reference, env, network, folder, labels, health_path),
            )
            server.container = container
            await log(f"$ docker run {reference}  (container {name})")
            started = time.monotonic()
            await self.engine.start(container)
            info = await self.engine.inspect(container) or {}
            port = _published_port(info, self.settings.container_port)
            if port is None:
                raise BuildFailed("start", "the engine published no port for the server")
            self._follow(server, since=0.0)
            outcome = await self._wait_healthy(container, port, health_path, timeout_s)
        except BaseException:
            await asyncio.shield(self._discard(server))
            raise
        host = self.settings.publish_host
        url = f"http://{host}:{port}{health_path}"
        if outcome == "healthy":
            elapsed = time.monotonic() - started
            for line in server.tail[-20:]:
                await log(line)
            await log(f"Server healthy at {url} (container {name}) after {elapsed:.1f} s")
            _log.info(
                "server.healthy", server_id=server_id, port=port, duration_s=round(elapsed, 3)
            )
            self._servers[server_id] = server
            self._watch_stats(server)
            state = info.get("State") or {}
            write_json_atomic(folder.server_file(server_id), {"container": container})
            self._watch_events()
            return RunningServer(
                id=server_id,
                deployment_id=ctx.deployment.id,
                build_id=ctx.build.id,
                container_id=container,
                host=host,
                port=port,
                health_status=HealthStatus.HEALTHY,
                last_health_check=utcnow(),
                metadata={
                    "artifact_build_id": artifact.build_id,
                    "image": reference,
                    "container_name": name,
                    "container_started_at": state.get("StartedAt"),
                    "network": network,
                    "health_path": health_path,
                },
            )
        await self._settle_logs(server)
        tail = list(server.tail[-self.settings.log_tail_lines :])
        await self._discard(server)
        for line in tail:
            await log(line)
        if isinstance(outcome, tuple):
            code, oom = outcome
            why = "was killed: over its memory limit" if oom else f"exited with code {code}"
            quoted = (":\n" + "\n".join(tail)) if tail else ""
            raise BuildFailed(
                "start",
                f"server {why} before becoming healthy{quoted}",
                details={"exit_code": code},
            )
        answer = f"it answered HTTP {outcome}" if outcome != "silent" else "it never answered"
        raise BuildFailed(
            "health",
            f"not healthy after {timeout_s:g} s at {url} ({answer})",
            details={"url": url, "timeout_s": timeout_s},
        )

    def _server_container(
        self,
        ctx: BuildContext,
        reference: str,
        env: Mapping[str, str],
        network: str,
        folder: BuildFolder,
        labels: Mapping[str, str],
        health_path: str,
    ) -> dict[str, Any]:
        settings = ctx.project.settings
        memory_mb = _int_setting(settings, "memory_limit_mb") or self.settings.memory_limit_mb
        cpus = _float_setting(settings, "cpu_limit") or self.settings.cpu_limit
        memory = memory_mb * 1024 * 1024
        port = self.settings.container_port
        probe_js = (
            "fetch('http://127.0.0.1:'+process.env.PORT+process.argv[1])"
            ".then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
        )
        host_config: dict[str, Any] = {
            **self._security(),
            "NetworkMode": network,
            "PortBindings": {
                f"{port}/tcp": [{"HostIp": self.settings.publish_host, "HostPort": ""}]
            },
            "Memory": memory,
            "MemorySwap": memory,
            "NanoCpus": int(cpus * 1e9),
            "ReadonlyRootfs": self.settings.read_only_root,
            "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={self.settings.tmpfs_mb}m"},
            "Mounts": [
                {
                    "Type": "bind",
                    "Source": str(folder.spans),
                    "Target": f"{OBSERVABILITY_DIR}/spans",
                },
                {"Type": "bind", "Source": str(folder.logs), "Target": f"{OBSERVABILITY_DIR}/logs"},
            ],
        }
        return {
            "Image": reference,
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Labels": dict(labels),
            "ExposedPorts": {f"{port}/tcp": {}},
            "StopSignal": "SIGTERM",
            "Healthcheck": {
                "Test": ["CMD", "node", "-e", probe_js, health_path],
                "Interval": 10_000_000_000,
                "Timeout": 3_000_000_000,
                "Retries": 3,
                "StartPeriod": int(self.settings.health_timeout_s * 1e9),
            },
            "HostConfig": host_config,
        }

    async def _reachable_collector(
        self, env: dict[str, str], network: Mapping[str, Any], server_id: str
    ) -> dict[str, str]:
        """The collector URLs as the container must use them: one on the platform's
        loopback becomes the network gateway's, where the runner forwards it."""
        if not self.settings.collector_forward:
            return env
        gateway = _gateway(network)
        for name in env_contract.COLLECTOR_ENDPOINT_VARS:
            value = env.get(name)
            if not value or gateway is None:
                continue
            parts = urlsplit(value)
            if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
                continue
            port = parts.port or 80
            await self.forwarder.open(gateway, port, server_id)
            env[name] = urlunsplit(parts._replace(netloc=f"{gateway}:{port}"))
        return env

    async def _wait_healthy(
        self, container: str, port: int, path: str, timeout_s: float
    ) -> str | tuple[int, bool]:
        """``healthy``; ``(exit code, out of memory)`` when it stopped; else the last
        answer (``silent``, or an HTTP status) when the time ran out."""
        deadline = time.monotonic() + timeout_s
        last = "silent"
        host = self.settings.publish_host
        while True:
            status = await probe(host, port, path, timeout_s=self.settings.health_probe_timeout_s)
            if status is not None and 200 <= status < 300:
                return "healthy"
            if status is not None:
                last = str(status)
            info = await self.engine.inspect(container)
            state = (info or {}).get("State") or {}
            if info is None or not state.get("Running", False):
                return int(state.get("ExitCode", -1)), bool(state.get("OOMKilled", False))
            if time.monotonic() >= deadline:
                return last
            await asyncio.sleep(self.settings.health_poll_interval_s)

    # --- runtime output --------------------------------------------------------------

    def _follow(self, server: _Server, *, since: float) -> None:
        """Copy the container's output into the build's ``runtime/`` files (masked), as
        the local runner's relay does, keeping the last lines for messages."""
        writer = RuntimeLog(
            server.folder.runtime,
            max_bytes=self.settings.runtime_log_max_bytes,
            keep=self.settings.runtime_log_keep,
        )

        async def follow() -> None:
            last = since
            try:
                stream = self.engine.logs(
                    server.container, follow=True, since=since, timestamps=True
                )
                async for kind, line in _lines_with_stream(stream):
                    stamp, _, text = line.partition(" ")
                    text = server.mask(text)
                    server.tail.append(text)
                    del server.tail[:-_LOG_TAIL_KEEP]
                    await asyncio.to_thread(writer.write, kind, text)
                    parsed = _parse_time(stamp)
                    if parsed is not None:
                        last = parsed.timestamp()
            except EngineError as exc:
                _log.debug("server.logs_ended", server_id=server.id, error=exc.message)
            finally:
                writer.close()
                if server.id in self._servers:
                    with contextlib.suppress(OSError, ValueError):
                        write_json_atomic(
                            server.folder.server_file(server.id),
                            {"container": server.container, "logs_until": last},
                        )

        server.follower = asyncio.create_task(follow(), name=f"docker-logs-{server.id}")

    def _watch_stats(self, server: _Server) -> None:
        """Keep the engine's latest figures of the server at hand: a single request
        for them waits one to two seconds for the engine's next sample, which a health
        round over many servers cannot afford."""

        async def watch() -> None:
            with contextlib.suppress(EngineError):
                async for figures in self.engine.stats_stream(server.container):
                    server.figures = figures

        server.stats_task = asyncio.create_task(watch(), name=f"docker-stats-{server.id}")

    async def _settle_logs(self, server: _Server) -> None:
        if server.follower is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(server.follower), 2.0)

    # --- stop, liveness, stats ---------------------------------------------------------

    async def _discard(self, server: _Server) -> None:
        server.stopping = True
        if server.stats_task is not None:
            server.stats_task.cancel()
        await self.engine.remove(server.container)
        if server.follower is not None:
            server.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await server.follower
        await self.forwarder.release(server.id)
        self._servers.pop(server.id, None)
        server.folder.server_file(server.id).unlink(missing_ok=True)
        await self._remove_network_if_unused(server.deployment_id)

    async def _remove_network_if_unused(self, deployment_id: str) -> None:
        left = await self.engine.containers(
            {_MANAGED: "1", _DEPLOYMENT: deployment_id, _ROLE: "server"}
        )
        if not left:
            await self.engine.remove_network(self.network_of(deployment_id))

    async def _own(self, server: RunningServer) -> dict[str, Any] | None:
        """The container of this exact server (its labels say so), or ``None``."""
        if not server.container_id:
            return None
        info = await self.engine.inspect(server.container_id)
        if info is None:
            return None
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(_SERVER) != server.id or labels.get(_MANAGED) != "1":
            return None
        started = server.metadata.get("container_started_at")
        if started and (info.get("State") or {}).get("StartedAt") != started:
            return None  # restarted by someone else: not the server that was recorded
        return info

    async def stop(self, server: RunningServer, *, grace_s: float = 10.0) -> None:
        info = await self._own(server)
        known = self._servers.get(server.id)
        if known is not None:
            known.stopping = True
        if info is None:
            if known is not None:
                await self._discard(known)
            return
        container = str(info["Id"])
        await self.engine.stop(container, math.ceil(grace_s))
        if known is None:
            folder = self._folder(server.metadata.get("artifact_build_id", server.build_id))
            known = _Server(
                server.id, container, server.deployment_id, server.build_id, folder, str
            )
        await self._discard(known)
        _log.info("server.stopped", server_id=server.id)

    async def is_alive(self, server: RunningServer) -> bool:
        info = await self._own(server)
        return info is not None and bool((info.get("State") or {}).get("Running"))

    async def stats(self, server: RunningServer) -> ServerStats:
        info = await self._own(server)
        if info is None or not (info.get("State") or {}).get("Running"):
            return ServerStats(alive=False, healthy=False)
        status = await probe(
            server.host,
            server.port,
            str(server.metadata.get("health_path") or "/health"),
            timeout_s=self.settings.health_probe_timeout_s,
        )
        memory_mb: float | None = None
        cpu: float | None = None
        known = self._servers.get(server.id)
        with contextlib.suppress(EngineError, KeyError, TypeError, ZeroDivisionError):
            figures = known.figures if known is not None and known.figures else None
            if figures is None:  # not followed here (yet): ask, and wait for it
                figures = await self.engine.stats(str(info["Id"]))
            memory = figures.get("memory_stats") or {}
            usage = float(memory.get("usage", 0)) - float(
                (memory.get("stats") or {}).get("cache", 0)
            )
            memory_mb = round(usage / (1024 * 1024), 2)
            cpu = _cpu_percent(figures)
        return ServerStats(
            alive=True,
            healthy=status is not None and 200 <= status < 300,
            memory_usage_mb=memory_mb,
            cpu_percent=cpu,
        )

    async def attach(self, server: RunningServer) -> bool:
        if server.id in self._servers:
            return await self.is_alive(server)
        info = await self._own(server)
        if info is None or not (info.get("State") or {}).get("Running"):
            return False
        labels = (info.get("Config") or {}).get("Labels") or {}
        artifact = str(labels.get(_LABEL_ARTIFACT) or server.build_id)
        folder = self._folder(artifact)
        record = read_json(folder.server_file(server.id)) or {}
        since = float(record.get("logs_until") or 0.0)
        adopted = _Server(
            server.id, str(info["Id"]), server.deployment_id, server.build_id, folder, str
        )
        self._servers[server.id] = adopted
        self._watch_stats(adopted)
        network = await self.engine.network(self.network_of(server.deployment_id))
        env = dict(
            item.split("=", 1)
            for item in (info.get("Config") or {}).get("Env") or []
            if "=" in item
        )
        gateway = _gateway(network or {})
        for name in env_contract.COLLECTOR_ENDPOINT_VARS:
            parts = urlsplit(env.get(name, ""))
            if (
                gateway is not None
                and parts.hostname == gateway
                and self.settings.collector_forward
            ):
                await self.forwarder.open(gateway, parts.port or 80, server.id)
        self._follow(adopted, since=since + 1e-6 if since else time.time())
        self._watch_events()
        return True

    # --- exits, as they happen --------------------------------------------------------

    def _watch_events(self) -> None:
        if self._events is None or self._events.done():
            self._events = asyncio.create_task(self._events_loop(), name="docker-runner-events")

    async def _events_loop(self) -> None:
        since = time.time() - 1.0  # an exit between the start and the subscription
        while self._servers:
            try:
                labels = {_MANAGED: "1", _ROLE: "server"}
                async for event in self.engine.events(labels, since=since):
                    since = float(event.get("time") or since)
                    if event.get("Action") == "die":
                        await self._died(event)
                    if not self._servers:
                        return
            except EngineError as exc:
                _log.warning("docker.events_lost", error=exc.message)
                await asyncio.sleep(1.0)

    async def _died(self, event: Mapping[str, Any]) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        server = self._servers.get(str(attributes.get(_SERVER, "")))
        if server is None or server.stopping:
            return
        info = await self.engine.inspect(server.container) or {}
        state = info.get("State") or {}
        code = state.get("ExitCode")
        oom = bool(state.get("OOMKilled"))
        await self._settle_logs(server)
        reason = "killed: over its memory limit" if oom else f"exited with code {code}"
        exit = ServerExit(
            server_id=server.id,
            deployment_id=server.deployment_id,
            build_id=server.build_id,
            exit_code=int(code) if isinstance(code, int) else None,
            reason=reason,
            out_of_memory=oom,
            log_tail=list(server.tail[-self.settings.log_tail_lines :]),
            at=utcnow(),
        )
        _log.warning("server.exited", server_id=server.id, reason=reason)
        await self._discard(server)  # its output is in runtime/ already
        await self.report_exit(exit)

    async def close(self) -> None:
        """Stop following servers; they keep running (``attach`` adopts them again)."""
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
        for server in list(self._servers.values()):
            if server.stats_task is not None:
                server.stats_task.cancel()
            if server.follower is not None:
                server.follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await server.follower
        self._servers.clear()
        await self.forwarder.close()
        await self.engine.close()


_LABEL_ARTIFACT = f"{LABEL}.artifact"


def _project_root(root: Path, folder: BuildFolder, source_path: str) -> Path:
    resolved = root.resolve()
    if not resolved.is_relative_to(folder.root.resolve()):
        raise BuildFailed("copy", f"the source returned {resolved}, outside the build folder")
    if not (resolved / "package.json").is_file():
        raise BuildFailed("copy", f"the copied project has no package.json ({source_path})")
    return resolved


def _install_key(root: Path, argv: Sequence[str], settings: DockerRunnerSettings) -> str | None:
    """What an install depends on: the lock file, package.json, the command and the
    base image. ``None`` without a lock file (an install is not reproducible then)."""
    lock = root / "package-lock.json"
    if not lock.is_file():
        lock = root / "npm-shrinkwrap.json"
        if not lock.is_file():
            return None
    digest = hashlib.sha256()
    for part in (lock.read_bytes(), (root / "package.json").read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    digest.update(json.dumps([list(argv), settings.base_image, settings.uid]).encode())
    return digest.hexdigest()


def _read_tar_member(data: bytes) -> str | None:
    """The text of the one small file in a tar the engine sent, if it is one."""
    with (
        contextlib.suppress(tarfile.TarError, UnicodeDecodeError),
        tarfile.open(fileobj=io.BytesIO(data)) as tar,
    ):
        for member in tar:
            if member.isfile() and member.size <= 256:
                handle = tar.extractfile(member)
                if handle is not None:
                    return handle.read().decode("ascii").strip()
    return None


def _remove_build_files(folder: BuildFolder) -> None:
    shutil.rmtree(folder.root, ignore_errors=True)


def _gateway(network: Mapping[str, Any]) -> str | None:
    for config in (network.get("IPAM") or {}).get("Config") or []:
        gateway = config.get("Gateway")
        if gateway and ":" not in gateway:
            return str(gateway)
    return None


def _published_port(info: Mapping[str, Any], container_port: int) -> int | None:
    ports = ((info.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{container_port}/tcp")
    for binding in ports or []:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return int(binding["HostPort"])
    return None


def _parse_time(value: str) -> datetime | None:
    """An RFC 3339 time of the engine (nanoseconds cut to microseconds)."""
    if not value:
        return None
    text = value.rstrip("Z")
    main, _, fraction = text.partition(".")
    try:
        parsed = datetime.fromisoformat(main + (("." + fraction[:6]) if fraction else ""))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _cpu_percent(figures: Mapping[str, Any]) -> float | None:
    now, before = figures["cpu_stats"], figures["precpu_stats"]
    delta = now["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
    system = now.get("system_cpu_usage", 0) - before.get("system_cpu_usage", 0)
    if system <= 0 or delta < 0:
        return None
    cpus = now.get("online_cpus") or len(now["cpu_usage"].get("percpu_usage") or []) or 1
    return round(float(delta) / float(system) * float(cpus) * 100.0, 2)


def _int_setting(settings: Any, name: str) -> int | None:
    value = getattr(settings, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _float_setting(settings: Any, name: str) -> float | None:
    value = getattr(settings, name, None)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


async def _lines_with_stream(
    chunks: AsyncIterator[tuple[str, bytes]],
) -> AsyncIterator[tuple[str, str]]:
    """Whole lines per stream from the engine's frames (a frame may hold part of a
    line, or several)."""
    pending: dict[str, bytes] = {}
    async for kind, data in chunks:
        buffer = pending.get(kind, b"") + data
        *lines, rest = buffer.split(b"\n")
        pending[kind] = rest
        for line in lines:
            yield kind, line.rstrip(b"\r").decode("utf-8", "replace")
    for kind, rest in pending.items():
        if rest:
            yield kind, rest.decode("utf-8", "replace")


async def _lines(chunks: AsyncIterator[tuple[str, bytes]]) -> AsyncIterator[str]:
    async for _, line in _lines_with_stream(chunks):
        yield line
