"""Webhooks from git hosts: a push deploys the deployments that follow the branch, a
pull request gets a preview deployment of its own, closing it removes the preview.

Nothing in a delivery is trusted until the source has checked its signature with the
secret of a project that follows the repository; a delivery id is acted on once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import structlog
from pydantic import BaseModel, Field

from mastra_admin.core.errors import Conflict, MastraAdminError, NotFound, Unauthenticated
from mastra_admin.core.inputs import CreateDeployment
from mastra_admin.core.models import (
    Build,
    BuildTrigger,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    Project,
    Team,
    utcnow,
)
from mastra_admin.core.services._service import Service
from mastra_admin.core.storage import DeploymentUpdate

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext
    from mastra_admin.core.services.deployments import DeploymentService
    from mastra_admin.core.source import PullRequest, RepositoryEvent

__all__ = [
    "DELIVERY_MEMORY",
    "ReplayedDelivery",
    "UnknownRepository",
    "UnverifiedDelivery",
    "WebhookOutcome",
    "WebhookService",
    "preview_branch",
]

_log = structlog.get_logger("mastra_admin.core.services.webhooks")

WEBHOOK_ACTOR = "webhook"
"""``Build.triggered_by`` of the builds a webhook queues."""

DELIVERY_MEMORY = timedelta(days=30)
"""How long delivery ids are remembered (a replay older than this is acted on again:
git hosts do not redeliver that late, and the signature would still have to match)."""

_PRUNE_EVERY_S = 3600.0


class UnknownRepository(NotFound):
    """No project follows the repository the delivery is about."""

    code = "webhook_unknown_repository"


class UnverifiedDelivery(Unauthenticated):
    """The signature matches the secret of no project that follows the repository."""

    code = "webhook_bad_signature"


class ReplayedDelivery(Conflict):
    """The delivery id was acted on before."""

    code = "webhook_replayed"


class WebhookOutcome(BaseModel):
    """What a delivery did."""

    outcome: Literal["queued", "removed", "ignored", "pong"]
    event: str
    delivery_id: str
    projects: list[str] = Field(default_factory=list, description="Projects it was verified for.")
    builds: list[str] = Field(default_factory=list, description="Builds it queued.")
    deployments: list[str] = Field(
        default_factory=list, description="Deployments it built, created or removed."
    )
    reason: str | None = None


def preview_branch(number: int) -> str:
    """The branch of a pull request's preview deployment: the ref git hosts keep the
    pull request's head under (``refs/pull/<n>/head``), also for pull requests from
    forks."""
    return f"pull/{number}/head"


class WebhookService(Service):
    """Receives webhook deliveries for the configured source."""

    def __init__(self, context: ServiceContext, deployments: DeploymentService) -> None:
        super().__init__(context)
        self.deployments = deployments
        self._pruned_at = 0.0

    async def receive(self, headers: Mapping[str, str], body: bytes) -> WebhookOutcome:
        """Check a delivery and act on it. ``headers`` are the request's, with
        lower-case names. Raises ``InvalidInput`` (malformed), ``UnknownRepository``,
        ``UnverifiedDelivery`` or ``ReplayedDelivery``; each is logged."""
        provider = self.context.require_source()
        event = provider.read_webhook(headers, body)
        if event is None:
            raise NotFound(f"the {provider.type!r} source takes no webhooks")
        log = _log.bind(
            delivery_id=event.delivery_id, event=event.event, repository=event.repository_key
        )
        projects = await self.storage.projects.find_by_source(
            provider.type, "repository_key", event.repository_key
        )
        if not projects:
            log.warning("webhook.unknown_repository")
            raise UnknownRepository(
                "no project follows this repository",
                details={"repository": event.repository_key},
            )
        verified = [p for p in projects if provider.verify_webhook(p, headers, body)]
        if not verified:
            log.warning("webhook.bad_signature", candidates=len(projects))
            raise UnverifiedDelivery(
                "the signature matches the webhook secret of no project that follows "
                "this repository",
                details={"repository": event.repository_key},
            )
        await self._prune()
        if not await self.storage.webhooks.remember(provider.type, event.delivery_id, utcnow()):
            log.warning("webhook.replayed")
            raise ReplayedDelivery(
                "this delivery was received before and is not acted on again",
                details={"delivery_id": event.delivery_id},
            )
        outcome = WebhookOutcome(
            outcome="ignored",
            event=event.event,
            delivery_id=event.delivery_id,
            projects=[p.id for p in verified],
        )
        if event.kind == "ping":
            outcome.outcome = "pong"
        elif event.kind == "push":
            await self._push(event, verified, outcome)
        elif event.kind == "pull_request" and event.pull_request is not None:
            await self._pull_request(event.pull_request, verified, outcome)
        else:
            outcome.reason = f"{event.event} events are not acted on"
        log.info(
            "webhook.received",
            outcome=outcome.outcome,
            projects=outcome.projects,
            builds=outcome.builds,
            deployments=outcome.deployments,
            reason=outcome.reason,
        )
        return outcome

    async def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = now
        dropped = await self.storage.webhooks.forget_before(utcnow() - DELIVERY_MEMORY)
        if dropped:
            _log.info("webhook.deliveries_forgotten", count=dropped)

    async def _team(self, project: Project) -> Team:
        team = await self.storage.teams.get(project.team_id)
        if team is None:
            raise NotFound("team not found", details={"team_id": project.team_id})
        return team

    async def _queue(
        self, team: Team, deployment: Deployment, sha: str, message: str | None
    ) -> Build:
        await self.deployments.check_billing(team)
        return await self.deployments.enqueue(
            Build(
                deployment_id=deployment.id,
                trigger=BuildTrigger.WEBHOOK,
                triggered_by=WEBHOOK_ACTOR,
                commit_sha=sha,
                commit_message=message,
            ),
            team,
        )

    async def _push(
        self, event: RepositoryEvent, projects: list[Project], outcome: WebhookOutcome
    ) -> None:
        if event.branch is None or event.sha is None:
            outcome.reason = "a tag or a deleted branch: nothing to deploy"
            return
        for project in projects:
            team = await self._team(project)
            for deployment in await self.storage.deployments.list_for_project(project.id):
                if deployment.branch != event.branch:
                    continue
                if deployment.status is DeploymentStatus.STOPPED:
                    _log.info("webhook.deployment_stopped", deployment_id=deployment.id)
                    continue
                build = await self._queue(team, deployment, event.sha, event.message)
                outcome.builds.append(build.id)
                outcome.deployments.append(deployment.id)
        if outcome.builds:
            outcome.outcome = "queued"
        else:
            outcome.reason = f"no running deployment follows branch {event.branch!r}"

    async def _pull_request(
        self, pull: PullRequest, projects: list[Project], outcome: WebhookOutcome
    ) -> None:
        branch = preview_branch(pull.number)
        for project in projects:
            existing = await self.storage.deployments.get_by_branch(
                project.id, DeploymentType.PREVIEW.value, branch
            )
            if pull.action == "closed":
                if existing is not None:
                    await self.deployments.teardown(existing)
                    await self.storage.deployments.delete(existing.id)
                    outcome.deployments.append(existing.id)
                    _log.info(
                        "webhook.preview_removed",
                        deployment_id=existing.id,
                        pull_request=pull.number,
                    )
                continue
            team = await self._team(project)
            withheld = pull.from_fork and not project.settings.fork_previews_get_secrets
            expires_at = utcnow() + timedelta(hours=team.settings.preview_ttl_hours)
            if existing is None:
                try:
                    deployment = await self.deployments.add_deployment(
                        team,
                        project,
                        CreateDeployment(type=DeploymentType.PREVIEW, branch=branch),
                        secrets_withheld=withheld,
                    )
                except MastraAdminError as exc:
                    _log.warning(
                        "webhook.preview_refused", project_id=project.id, error=exc.message
                    )
                    outcome.reason = exc.message
                    continue
            else:
                deployment = await self.storage.deployments.update(
                    existing.id, DeploymentUpdate(expires_at=expires_at, secrets_withheld=withheld)
                )
            message = f"#{pull.number} {pull.title}".strip()
            build = await self._queue(team, deployment, pull.head_sha, message)
            outcome.builds.append(build.id)
            outcome.deployments.append(deployment.id)
        if pull.action == "closed":
            outcome.outcome = "removed" if outcome.deployments else "ignored"
            if not outcome.deployments:
                outcome.reason = f"pull request #{pull.number} has no preview"
        elif outcome.builds:
            outcome.outcome = "queued"
