"""Deployments and their builds: deploy, stop, restart, rollback, cancel, and the
servers and routes that serve them. Builds are run by the build orchestrator."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from mastra_admin.core import env_contract
from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    LicenceLimit,
    NotFound,
    Unavailable,
)
from mastra_admin.core.execution_rules import (
    changed_execution_env,
    changes_execution,
)
from mastra_admin.core.inputs import (
    CreateDeployment,
    DeployRequest,
    RollbackRequest,
    UpdateDeployment,
    slugify,
)
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    BuildTrigger,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    DomainStatus,
    EnvVarOverride,
    HealthStatus,
    Page,
    Project,
    Route,
    RouteStatus,
    RunningServer,
    Team,
    utcnow,
)
from mastra_admin.core.orchestrator import BuildOrchestrator
from mastra_admin.core.rbac import Actor, user_id_of
from mastra_admin.core.services._service import (
    Service,
    check_expiry,
)
from mastra_admin.core.storage import (
    BuildUpdate,
    DeploymentUpdate,
    RouteUpdate,
    RunningServerUpdate,
)

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext

__all__ = ["DeploymentService"]

_log = structlog.get_logger("mastra_admin.core.services.deployments")


class DeploymentService(Service):
    """Deployments, their builds, servers and routes.

    Deploying queues a build and wakes ``orchestrator`` (present when a runner is
    configured), whose workers build, start and route it. The orchestrator depends on
    this service (``BuildOrchestrator.deployments``), never on ``MastraAdmin``.
    """

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.orchestrator: BuildOrchestrator | None = (
            BuildOrchestrator(self) if context.runner is not None else None
        )

    @staticmethod
    def subdomain_for(team: Team, project: Project, deployment: Deployment) -> str:
        """``{project}-{branch}.{team}``; production on the default branch omits nothing,
        so every deployment has its own stable host name."""
        branch = slugify(deployment.branch) or "branch"
        label = f"{project.slug}-{branch}"[:63].strip("-")
        return f"{label}.{team.slug}"

    async def build_env(
        self, deployment: Deployment, project: Project
    ) -> tuple[dict[str, str], list[str]]:
        """The environment a deployed server is given (DESIGN §6) without the
        runner's own part (``PORT``, observability dirs), and the secret values that
        must be masked in logs.

        Precedence: project vars for every type < project vars for this deployment
        type < the deployment's overrides. A deployment with ``secrets_withheld`` (a
        preview of a pull request from a fork) gets no secret project vars.
        """
        encryption = self.context.require_encryption()
        env: dict[str, str] = {}
        secret: dict[str, bool] = {}
        env_vars = await self.storage.projects.list_env_vars(project.id)
        if deployment.secrets_withheld:
            env_vars = [var for var in env_vars if not var.is_secret]
        for wanted_type in (None, deployment.type):
            for var in env_vars:
                if var.deployment_type == wanted_type:
                    env[var.key] = encryption.decrypt(var.encrypted_value)
                    secret[var.key] = var.is_secret
        for override in deployment.env_var_overrides:
            env[override.key] = encryption.decrypt(override.encrypted_value)
            secret[override.key] = override.is_secret
        secrets = sorted({env[k] for k, is_secret in secret.items() if is_secret and env[k]})
        token: str | None = None
        endpoint: str | None = None
        if self.context.collector_enabled:
            token = self.context.collector_token(deployment.id)
            endpoint = self.context.collector_url(deployment.id)
            secrets.append(token)
        env.update(
            env_contract.core_env(
                project_id=project.id,
                deployment_id=deployment.id,
                collector_token=token,
                collector_endpoint=endpoint,
            )
        )
        return env, secrets

    @staticmethod
    def default_branch_for(project: Project, type: DeploymentType, branch: str | None) -> str:
        if branch:
            return branch
        if type is DeploymentType.PREVIEW:
            raise InvalidInput("a preview deployment needs a branch", details={"field": "branch"})
        return project.default_branch if type is DeploymentType.PRODUCTION else "staging"

    # --- deployments ------------------------------------------------------------------

    def _encrypt_overrides(self, overrides: Mapping[str, str]) -> list[EnvVarOverride]:
        encryption = self.context.require_encryption()
        return [
            EnvVarOverride(key=key, encrypted_value=encryption.encrypt(value))
            for key, value in overrides.items()
        ]

    def _execution_overrides(self, deployment: Deployment) -> dict[str, str]:
        """The deployment's overrides that ``changes_execution``, decrypted."""
        execution = [o for o in deployment.env_var_overrides if changes_execution(o.key)]
        if not execution:
            return {}
        encryption = self.context.require_encryption()
        return {o.key: encryption.decrypt(o.encrypted_value) for o in execution}

    async def create_deployment(
        self, actor: Actor, project_id: str, data: CreateDeployment
    ) -> Deployment:
        """A deployment of the project: production (default branch), staging, or a
        preview of a branch that expires (``ttl_hours``/``expires_at``, else the
        team's ``preview_ttl_hours``). Its public URL is known once it is routed.
        Overrides named as ``changes_execution`` also need ``project:commands:write``."""
        project = await self._project_for(actor, project_id, "deployment:create")
        await self._ensure_may_change_execution_env(
            actor,
            project,
            changed_execution_env({}, data.env_var_overrides),
            "env_var_overrides",
        )
        team = await self.storage.teams.get(project.team_id)
        if team is None:
            raise NotFound("team not found", details={"team_id": project.team_id})
        deployment = await self.add_deployment(team, project, data)
        _log.info(
            "deployment.created",
            project_id=project_id,
            deployment_id=deployment.id,
            type=deployment.type.value,
            actor_id=user_id_of(actor),
        )
        return deployment

    async def add_deployment(
        self,
        team: Team,
        project: Project,
        data: CreateDeployment,
        *,
        secrets_withheld: bool = False,
    ) -> Deployment:
        """Store a new deployment of ``project`` (no permission check: the caller's
        job); ``Conflict`` when its slug or host name is taken."""
        project_id = project.id
        branch = self.default_branch_for(project, data.type, data.branch)
        now = utcnow()
        expires_at: datetime | None = None
        if data.type is DeploymentType.PREVIEW:
            if data.expires_at is not None:
                expires_at = data.expires_at
            else:
                hours = data.ttl_hours or team.settings.preview_ttl_hours
                expires_at = now + timedelta(hours=hours)
            check_expiry(expires_at)
        slug = slugify(f"{data.type.value}-{branch}") or data.type.value
        candidate = Deployment(
            project_id=project_id,
            type=data.type,
            branch=branch,
            slug=slug,
            env_var_overrides=self._encrypt_overrides(data.env_var_overrides),
            auto_shutdown=data.auto_shutdown,
            expires_at=expires_at,
            secrets_withheld=secrets_withheld,
        )
        host = self.subdomain_for(team, project, candidate)
        for other in await self.storage.deployments.list_for_project(project_id):
            if other.slug == slug:
                raise Conflict(
                    f"the project already has a deployment {slug!r}", details={"field": "slug"}
                )
        # Host names are {project}-{branch}.{team}: project "a-b" on branch "c" and
        # project "a" on branch "b-c" would share one, so look across the team.
        for sibling in await self._team_projects(team.id):
            for other in await self.storage.deployments.list_for_project(sibling.id):
                if self.subdomain_for(team, sibling, other) == host:
                    raise Conflict(
                        f"the {other.type.value} deployment of branch {other.branch!r}"
                        + ("" if sibling.id == project.id else f" of project {sibling.slug!r}")
                        + f" already uses the host name {host!r}",
                        details={"field": "branch"},
                    )
        return await self.storage.deployments.create(candidate)

    async def get_deployment(self, actor: Actor, deployment_id: str) -> Deployment:
        deployment, _, _ = await self._deployment_for(actor, deployment_id, "deployment:read")
        return deployment

    async def list_deployments(self, actor: Actor, project_id: str) -> list[Deployment]:
        await self._project_for(actor, project_id, "deployment:read")
        return await self.storage.deployments.list_for_project(project_id)

    async def update_deployment(
        self, actor: Actor, deployment_id: str, data: UpdateDeployment
    ) -> Deployment:
        """Change overrides (replaced as a whole), auto-shutdown or a preview's
        expiry. Takes effect with the next deploy. Adding, changing or removing an
        override named as ``changes_execution`` also needs ``project:commands:write``."""
        deployment, project, _ = await self._deployment_for(
            actor, deployment_id, "deployment:update"
        )
        patch = DeploymentUpdate()
        if data.env_var_overrides is not None:
            await self._ensure_may_change_execution_env(
                actor,
                project,
                changed_execution_env(
                    self._execution_overrides(deployment), data.env_var_overrides
                ),
                "env_var_overrides",
            )
            patch.env_var_overrides = self._encrypt_overrides(data.env_var_overrides)
        if data.auto_shutdown is not None:
            patch.auto_shutdown = data.auto_shutdown
        if "expires_at" in data.model_fields_set:
            if deployment.type is not DeploymentType.PREVIEW and data.expires_at is not None:
                raise InvalidInput(
                    "only preview deployments expire", details={"field": "expires_at"}
                )
            if deployment.type is DeploymentType.PREVIEW and data.expires_at is None:
                raise InvalidInput(
                    "a preview deployment must expire", details={"field": "expires_at"}
                )
            check_expiry(data.expires_at)
            patch.expires_at = data.expires_at
        updated = await self.storage.deployments.update(deployment_id, patch)
        _log.info("deployment.updated", deployment_id=deployment_id, actor_id=user_id_of(actor))
        return updated

    async def delete_deployment(self, actor: Actor, deployment_id: str) -> None:
        """Cancel its builds, stop its servers, remove its route, then delete it."""
        deployment, _, _ = await self._deployment_for(actor, deployment_id, "deployment:delete")
        await self.teardown(deployment)
        await self.storage.deployments.delete(deployment_id)
        _log.info("deployment.deleted", deployment_id=deployment_id, actor_id=user_id_of(actor))

    async def _set_status(
        self,
        deployment: Deployment,
        status: DeploymentStatus,
        patch: DeploymentUpdate | None = None,
    ) -> Deployment:
        """Change a deployment's status and tell plugins when it changed."""
        update = patch or DeploymentUpdate()
        update.status = status
        updated = await self.storage.deployments.update(deployment.id, update)
        if deployment.status is not status:
            _log.info(
                "deployment.status_changed",
                deployment_id=deployment.id,
                previous=deployment.status.value,
                status=status.value,
            )
            await self.context.hooks.deployment_status_changed(
                deployment=updated, previous=deployment.status
            )
        return updated

    # --- deploy, stop, restart, rollback ------------------------------------------------

    async def check_billing(self, team: Team) -> None:
        self.context.require_provider_features("runner", "router", "source")
        if self.context.billing is not None and not await self.context.billing.can_use(
            team.id, "builds"
        ):
            raise LicenceLimit(
                "the team's billing plan allows no more builds now",
                details={"metric": "builds", "team_id": team.id},
            )

    async def enqueue(self, build: Build, team: Team) -> Build:
        """Queue a build; it supersedes the deployment's older queued builds (only
        older ones, so that two deploys racing leave the newest queued)."""
        created = await self.storage.builds.create(build)
        superseded: list[Build] = []
        for queued in await self.storage.builds.list_by_status([BuildStatus.QUEUED]):
            if queued.deployment_id != created.deployment_id or queued.id == created.id:
                continue
            # Whichever of two queued builds is older gives way. A newer one can be
            # here already when its deploy began later but inserted first; checking
            # both ways after every insert leaves exactly the newest queued.
            newer_here = (queued.queued_at, queued.id) > (created.queued_at, created.id)
            loser, winner = (created, queued) if newer_here else (queued, created)
            cancelled = await self.storage.builds.transition(
                loser.id,
                [BuildStatus.QUEUED],
                BuildUpdate(
                    status=BuildStatus.CANCELLED,
                    completed_at=utcnow(),
                    error_message=f"superseded by build {winner.id}",
                ),
            )
            if cancelled is not None:
                superseded.append(cancelled)
            if newer_here and cancelled is not None:
                created = cancelled
        _log.info(
            "build.queued",
            build_id=created.id,
            deployment_id=created.deployment_id,
            trigger=created.trigger.value,
            superseded=[b.id for b in superseded],
        )
        for old in superseded:
            await self._build_finished(old)
        if self.context.billing is not None:
            await self.context.billing.record_usage(team.id, "builds", 1)
        orchestrator = self.orchestrator
        if orchestrator is not None:
            orchestrator.wake()
        return created

    async def _build_finished(self, build: Build) -> None:
        try:
            deployment, project, _ = await self.load_deployment(build.deployment_id)
        except NotFound:
            return
        await self.context.hooks.build_finished(build=build, deployment=deployment, project=project)

    async def _deployment_to_build(
        self, actor: Actor, deployment_id: str
    ) -> tuple[Deployment, Team]:
        """Queueing a build of a deployment takes ``deployment:deploy`` and
        ``build:create``."""
        deployment, project, team = await self._deployment_for(
            actor, deployment_id, "deployment:deploy"
        )
        await self.authorizer.ensure(actor, "build:create", team.id, project.id)
        return deployment, team

    async def deploy(
        self, actor: Actor, deployment_id: str, request: DeployRequest | None = None
    ) -> Build:
        """Queue a build of the deployment; a worker builds and starts it."""
        deployment, team = await self._deployment_to_build(actor, deployment_id)
        request = request or DeployRequest()
        await self.check_billing(team)
        return await self.enqueue(
            Build(
                deployment_id=deployment.id,
                trigger=request.trigger,
                triggered_by=user_id_of(actor),
                ref=request.ref,
                commit_sha=request.commit_sha,
                commit_message=request.commit_message,
            ),
            team,
        )

    async def stop(self, actor: Actor, deployment_id: str) -> Deployment:
        """Stop the deployment: cancel its queued and running builds, stop its
        servers, mark its route stopped (the host answers 503)."""
        deployment, _, _ = await self._deployment_for(actor, deployment_id, "deployment:deploy")
        await self._cancel_builds(
            deployment.id, reason=f"deployment stopped by {user_id_of(actor)}"
        )
        await self._stop_servers(deployment.id)
        route = await self._route_of(deployment.id)
        if route is not None:
            if self.context.router is not None:
                await self.context.router.set_route_status(route.id, RouteStatus.STOPPED)
            else:
                await self.storage.routes.update(route.id, RouteUpdate(status=RouteStatus.STOPPED))
        current = await self.storage.deployments.get(deployment.id) or deployment
        stopped = await self._set_status(current, DeploymentStatus.STOPPED)
        _log.info("deployment.stopped", deployment_id=deployment_id, actor_id=user_id_of(actor))
        return stopped

    async def restart(self, actor: Actor, deployment_id: str) -> Build:
        """Start the current build again: from its kept output when the runner still
        has it, otherwise by rebuilding."""
        deployment, team = await self._deployment_to_build(actor, deployment_id)
        if deployment.current_build_id is None:
            raise Conflict(
                "the deployment has never been deployed: deploy it first",
                details={"field": "current_build_id"},
            )
        current = await self.storage.builds.get(deployment.current_build_id)
        artifact_id = (current.artifact_build_id or current.id) if current else None
        has_output = (
            artifact_id is not None
            and self.context.runner is not None
            and await self.context.runner.has_artifact(artifact_id) is not None
        )
        await self.check_billing(team)
        build = Build(
            deployment_id=deployment.id,
            trigger=BuildTrigger.ROLLBACK if has_output else BuildTrigger.MANUAL,
            triggered_by=user_id_of(actor),
            artifact_build_id=artifact_id if has_output else None,
            commit_sha=current.commit_sha if current else None,
            commit_message=f"restart of build {deployment.current_build_id}",
        )
        return await self.enqueue(build, team)

    async def _previous_healthy(self, deployment: Deployment) -> Build:
        """The newest succeeded build other than the current one (and not running the
        current one's output) whose output the runner still keeps."""
        current = (
            await self.storage.builds.get(deployment.current_build_id)
            if deployment.current_build_id
            else None
        )
        serving = {deployment.current_build_id}
        if current is not None and current.artifact_build_id:
            serving.add(current.artifact_build_id)
        runner = self.context.require_runner()
        recent = await self.storage.builds.list_for_deployment(deployment.id, limit=200)
        for build in recent:  # newest first
            if build.status is not BuildStatus.SUCCEEDED:
                continue
            output = build.artifact_build_id or build.id
            if build.id in serving or output in serving:
                continue
            if await runner.has_artifact(output) is not None:
                return build
        raise Conflict(
            "there is no earlier succeeded build whose output is still kept",
            details={"deployment_id": deployment.id},
        )

    async def rollback(
        self, actor: Actor, deployment_id: str, request: RollbackRequest | str
    ) -> Build:
        """Re-deploy an earlier succeeded build of this deployment from its kept
        output, without rebuilding; ``Conflict`` when the output is gone."""
        deployment, team = await self._deployment_to_build(actor, deployment_id)
        if isinstance(request, str):
            request = RollbackRequest(build_id=request)
        if request.commit_sha is not None:
            target = await self._build_of_commit(deployment.id, request.commit_sha)
            build_id = target.id
        elif request.build_id is None:
            target = await self._previous_healthy(deployment)
            build_id = target.id
        else:
            build_id = request.build_id or ""
            found = await self.storage.builds.get(build_id)
            if found is None or found.deployment_id != deployment.id:
                raise NotFound("build not found", details={"build_id": build_id})
            target = found
        if target.status is not BuildStatus.SUCCEEDED:
            raise Conflict(
                f"only a succeeded build can be rolled back to (this one {target.status.value})",
                details={"build_id": build_id, "status": target.status.value},
            )
        artifact_id = target.artifact_build_id or target.id
        if await self.context.require_runner().has_artifact(artifact_id) is None:
            raise Conflict(
                "the output of that build is no longer kept: deploy the commit again instead",
                details={"build_id": build_id},
            )
        await self.check_billing(team)
        build = Build(
            deployment_id=deployment.id,
            trigger=BuildTrigger.ROLLBACK,
            triggered_by=user_id_of(actor),
            artifact_build_id=artifact_id,
            ref=target.ref,
            commit_sha=target.commit_sha,
            commit_message=target.commit_message,
            commit_author=target.commit_author,
        )
        return await self.enqueue(build, team)

    async def _build_of_commit(self, deployment_id: str, commit_sha: str) -> Build:
        """The newest succeeded build of the deployment that built ``commit_sha`` (a
        full id or a prefix of at least 7 hex digits naming one commit)."""
        wanted = commit_sha.lower()
        matches: list[Build] = []
        offset = 0
        while True:
            page = await self.storage.builds.list_for_deployment(
                deployment_id, limit=200, offset=offset
            )
            matches += [
                b
                for b in page
                if b.status is BuildStatus.SUCCEEDED
                and b.commit_sha
                and b.commit_sha.lower().startswith(wanted)
            ]
            if len(page) < 200:
                break
            offset += 200
        commits = {b.commit_sha.lower() for b in matches if b.commit_sha}
        if not matches:
            raise NotFound(
                f"no succeeded build of commit {commit_sha} in this deployment",
                details={"commit_sha": commit_sha},
            )
        if len(commits) > 1:
            raise InvalidInput(
                f"{commit_sha} names more than one commit: give more digits",
                details={"field": "commit_sha", "commits": sorted(commits)},
            )
        return max(matches, key=lambda b: (b.completed_at or b.queued_at, b.id))

    # --- builds -----------------------------------------------------------------------

    async def _cancel(self, build: Build, reason: str) -> Build | None:
        """Cancel a queued or active build; ``None`` when it was already final."""
        for _ in range(3):
            if build.status.is_terminal:
                return None
            was_active = build.status.is_active
            cancelled = await self.storage.builds.transition(
                build.id,
                [build.status],
                BuildUpdate(
                    status=BuildStatus.CANCELLED, completed_at=utcnow(), error_message=reason
                ),
            )
            if cancelled is not None:
                if was_active:
                    # The worker holding it finishes the cancellation (stops what it
                    # started, fires build_finished): here at once, elsewhere when its
                    # lease loop sees the status.
                    orchestrator = self.orchestrator
                    if orchestrator is not None:
                        orchestrator.cancel_local(build.id)
                else:
                    await self._build_finished(cancelled)
                _log.info("build.cancelled", build_id=build.id, was_active=was_active)
                return cancelled
            refreshed = await self.storage.builds.get(build.id)
            if refreshed is None:
                return None
            build = refreshed
        return None

    async def _cancel_builds(self, deployment_id: str, *, reason: str) -> None:
        pending = await self.storage.builds.list_by_status(
            [BuildStatus.QUEUED, BuildStatus.BUILDING, BuildStatus.DEPLOYING]
        )
        for build in pending:
            if build.deployment_id == deployment_id:
                await self._cancel(build, reason)

    async def cancel_build(self, actor: Actor, build_id: str) -> Build:
        """Cancel a queued build, or a running one (its process tree is killed and
        the previous server keeps serving). ``Conflict`` when it is already final."""
        build, _, _, _ = await self._build_for(actor, build_id, "build:cancel")
        cancelled = await self._cancel(build, f"cancelled by {user_id_of(actor)}")
        if cancelled is None:
            current = await self.storage.builds.get(build_id) or build
            raise Conflict(
                f"the build has already {current.status.value}"
                if current.status is not BuildStatus.CANCELLED
                else "the build was already cancelled",
                details={"build_id": build_id, "status": current.status.value},
            )
        return cancelled

    async def get_build(self, actor: Actor, build_id: str) -> Build:
        build, _, _, _ = await self._build_for(actor, build_id, "build:read")
        return build

    async def list_builds(
        self, actor: Actor, deployment_id: str, *, limit: int = 50, offset: int = 0
    ) -> Page[Build]:
        """The deployment's builds, newest first."""
        await self._deployment_for(actor, deployment_id, "build:read")
        items = await self.storage.builds.list_for_deployment(
            deployment_id, limit=limit, offset=offset
        )
        total = await self.storage.builds.count_for_deployment(deployment_id)
        return Page(items=items, total=total, limit=limit, offset=offset)

    async def get_build_log(self, actor: Actor, build_id: str, *, offset: int = 0) -> str:
        """The build's log from byte ``offset`` (secrets already masked)."""
        await self._build_for(actor, build_id, "build:read")
        build_logs = self.context.build_logs
        if build_logs is None:
            raise Unavailable("build logs need file storage, and none is configured")
        return await build_logs.read(build_id, offset=offset)

    async def get_queue_position(self, actor: Actor, build_id: str) -> int | None:
        """1-based position of a queued build, ``None`` when it is not queued."""
        await self._build_for(actor, build_id, "build:read")
        return await self.storage.builds.queue_position(build_id)

    # --- servers and routes -------------------------------------------------------------

    async def list_servers(
        self, actor: Actor, deployment_id: str, *, include_stopped: bool = False
    ) -> list[RunningServer]:
        await self._deployment_for(actor, deployment_id, "server:read")
        if include_stopped:
            return await self.storage.servers.list_for_deployment(deployment_id)
        return await self.storage.servers.list_active(deployment_id)

    async def list_routes(self, actor: Actor, project_id: str) -> list[Route]:
        await self._project_for(actor, project_id, "route:read")
        return await self.storage.routes.list_for_project(project_id)

    async def get_route(self, actor: Actor, deployment_id: str) -> Route | None:
        await self._deployment_for(actor, deployment_id, "route:read")
        return await self._route_of(deployment_id)

    async def _route_of(self, deployment_id: str) -> Route | None:
        if self.context.router is not None:
            return await self.context.router.get_route(deployment_id)
        return await self.storage.routes.get_by_deployment(deployment_id)

    async def _stop_servers(self, deployment_id: str) -> None:
        for server in await self.storage.servers.list_active(deployment_id):
            if self.context.runner is not None:
                try:
                    await self.context.runner.stop(
                        server, grace_s=self.settings.builds.stop_grace_s
                    )
                except Exception:
                    _log.exception("server.stop_failed", server_id=server.id)
            else:
                _log.warning("server.stop_without_runner", server_id=server.id)
            await self.storage.servers.update(
                server.id,
                RunningServerUpdate(stopped_at=utcnow(), health_status=HealthStatus.STOPPED),
            )
            _log.info("server.stopped", server_id=server.id, deployment_id=deployment_id)

    async def teardown(self, deployment: Deployment) -> None:
        """Everything that runs for a deployment, gone: builds cancelled, servers
        stopped, custom domains no longer served, route removed (before the deployment
        itself is deleted, which deletes its domains with it)."""
        await self._cancel_builds(deployment.id, reason="deployment deleted")
        await self._stop_servers(deployment.id)
        await self._release_domains(deployment)
        route = await self._route_of(deployment.id)
        if route is not None:
            if self.context.router is not None:
                await self.context.router.remove_route(route.id)
            else:
                await self.storage.routes.delete(route.id)

    async def _release_domains(self, deployment: Deployment) -> None:
        """The router stops serving the deployment's verified custom domains. A stopped
        deployment keeps them: its route stays too and answers 503 at every host name."""
        router = self.context.router
        if router is None or not router.serves_custom_domains:
            return
        domains = await self.storage.domains.list_for_deployment(deployment.id)
        served = [d.hostname for d in domains if d.status is DomainStatus.VERIFIED]
        if served:
            await router.set_domains(deployment.id, [])
            _log.info("domains.released", deployment_id=deployment.id, hostnames=served)

    async def cleanup_expired_previews(self) -> list[str]:
        """Delete every preview deployment past its expiry (a system task, run by
        the build supervisor): servers stopped, routes removed. Returns their ids."""
        removed: list[str] = []
        for deployment in await self.storage.deployments.list_expired_previews(utcnow()):
            try:
                await self.teardown(deployment)
                await self.storage.deployments.delete(deployment.id)
            except Exception:
                _log.exception("deployment.expiry_failed", deployment_id=deployment.id)
                continue
            removed.append(deployment.id)
            _log.info(
                "deployment.expired",
                deployment_id=deployment.id,
                project_id=deployment.project_id,
                branch=deployment.branch,
            )
        return removed
