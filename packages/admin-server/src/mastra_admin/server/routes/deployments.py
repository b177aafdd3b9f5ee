"""Deployments (deploy, stop, restart, roll back), their builds, servers and route."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import PlainTextResponse, Response

from mastra_admin.core.inputs import (
    CreateDeployment,
    DeployRequest,
    RollbackRequest,
    UpdateDeployment,
)
from mastra_admin.core.models import Build, Page, Route, RunningServer
from mastra_admin.core.views import DeploymentView
from mastra_admin.server.routes._common import PageQuery
from mastra_admin.server.routing import Call, Endpoint
from mastra_admin.server.sse import build_log_stream

__all__ = ["endpoints"]


class ServersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_stopped: bool = False


class LogQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(default=0, ge=0)


class QueuePosition(BaseModel):
    position: int | None = Field(description="1-based; null when not queued.")


async def list_deployments(call: Call) -> list[DeploymentView]:
    found = await call.admin.list_deployments(call.actor, call.params["project_id"])
    return [DeploymentView.of(d) for d in found]


async def create_deployment(call: Call) -> DeploymentView:
    created = await call.admin.create_deployment(call.actor, call.params["project_id"], call.body)
    return DeploymentView.of(created)


async def get_deployment(call: Call) -> DeploymentView:
    return DeploymentView.of(
        await call.admin.get_deployment(call.actor, call.params["deployment_id"])
    )


async def update_deployment(call: Call) -> DeploymentView:
    deployment_id = call.params["deployment_id"]
    return DeploymentView.of(
        await call.admin.update_deployment(call.actor, deployment_id, call.body)
    )


async def delete_deployment(call: Call) -> None:
    await call.admin.delete_deployment(call.actor, call.params["deployment_id"])


async def deploy(call: Call) -> Build:
    return await call.admin.deploy(call.actor, call.params["deployment_id"], call.body)


async def stop(call: Call) -> DeploymentView:
    return DeploymentView.of(await call.admin.stop(call.actor, call.params["deployment_id"]))


async def restart(call: Call) -> Build:
    return await call.admin.restart(call.actor, call.params["deployment_id"])


async def rollback(call: Call) -> Build:
    return await call.admin.rollback(call.actor, call.params["deployment_id"], call.body)


async def list_builds(call: Call) -> Page[Build]:
    q = call.query
    return await call.admin.list_builds(
        call.actor, call.params["deployment_id"], limit=q.limit, offset=q.offset
    )


async def list_servers(call: Call) -> list[RunningServer]:
    return await call.admin.list_servers(
        call.actor, call.params["deployment_id"], include_stopped=call.query.include_stopped
    )


async def get_route(call: Call) -> Route | None:
    return await call.admin.get_route(call.actor, call.params["deployment_id"])


async def get_build(call: Call) -> Build:
    return await call.admin.get_build(call.actor, call.params["build_id"])


async def cancel_build(call: Call) -> Build:
    return await call.admin.cancel_build(call.actor, call.params["build_id"])


async def get_build_log(call: Call) -> Response:
    text = await call.admin.get_build_log(
        call.actor, call.params["build_id"], offset=call.query.offset
    )
    return PlainTextResponse(text)


async def stream_build_log(call: Call) -> Response:
    build = await call.admin.get_build(call.actor, call.params["build_id"])
    return build_log_stream(call.admin, build, call.request.headers.get("last-event-id"))


async def queue_position(call: Call) -> QueuePosition:
    position = await call.admin.get_queue_position(call.actor, call.params["build_id"])
    return QueuePosition(position=position)


D = "/api/deployments/{deployment_id}"
B = "/api/builds/{build_id}"

endpoints = [
    Endpoint(
        "GET",
        "/api/projects/{project_id}/deployments",
        list_deployments,
        "A project's deployments",
        "deployments",
        permission="deployment:read",
        response=list[DeploymentView],
    ),
    Endpoint(
        "POST",
        "/api/projects/{project_id}/deployments",
        create_deployment,
        "Create a production, staging or preview deployment",
        "deployments",
        permission="deployment:create",
        body=CreateDeployment,
        response=DeploymentView,
        status_code=201,
        extra_responses={409: "the project has this deployment already, or its host name is taken"},
    ),
    Endpoint(
        "GET",
        D,
        get_deployment,
        "A deployment",
        "deployments",
        permission="deployment:read",
        response=DeploymentView,
    ),
    Endpoint(
        "PATCH",
        D,
        update_deployment,
        "Change overrides or expiry",
        "deployments",
        permission="deployment:update",
        body=UpdateDeployment,
        response=DeploymentView,
    ),
    Endpoint(
        "DELETE",
        D,
        delete_deployment,
        "Stop and delete a deployment",
        "deployments",
        permission="deployment:delete",
        status_code=204,
    ),
    Endpoint(
        "POST",
        f"{D}/deploy",
        deploy,
        "Queue a build and deploy it",
        "deployments",
        permission="deployment:deploy",
        body=DeployRequest,
        response=Build,
        status_code=202,
    ),
    Endpoint(
        "POST",
        f"{D}/stop",
        stop,
        "Stop the deployment's server",
        "deployments",
        permission="deployment:deploy",
        response=DeploymentView,
    ),
    Endpoint(
        "POST",
        f"{D}/restart",
        restart,
        "Start the current build again",
        "deployments",
        permission="deployment:deploy",
        response=Build,
        status_code=202,
        extra_responses={409: "the deployment has never been deployed"},
    ),
    Endpoint(
        "POST",
        f"{D}/rollback",
        rollback,
        "Serve an earlier build again, unbuilt (with an empty body: the previous healthy build)",
        "deployments",
        permission="deployment:deploy",
        body=RollbackRequest,
        response=Build,
        status_code=202,
        extra_responses={409: "that build did not succeed, or its output is no longer kept"},
    ),
    Endpoint(
        "GET",
        f"{D}/builds",
        list_builds,
        "A deployment's builds, newest first",
        "builds",
        permission="build:read",
        query=PageQuery,
        response=Page[Build],
    ),
    Endpoint(
        "GET",
        f"{D}/servers",
        list_servers,
        "A deployment's servers",
        "servers",
        permission="server:read",
        query=ServersQuery,
        response=list[RunningServer],
    ),
    Endpoint(
        "GET",
        f"{D}/route",
        get_route,
        "A deployment's route (null when none)",
        "routes",
        permission="route:read",
        response=Route | None,
    ),
    Endpoint("GET", B, get_build, "A build", "builds", permission="build:read", response=Build),
    Endpoint(
        "POST",
        f"{B}/cancel",
        cancel_build,
        "Cancel a queued or running build",
        "builds",
        permission="build:cancel",
        response=Build,
        extra_responses={409: "the build has finished already"},
    ),
    Endpoint(
        "GET",
        f"{B}/logs",
        get_build_log,
        "The build log as text (from a byte offset)",
        "builds",
        permission="build:read",
        query=LogQuery,
    ),
    Endpoint(
        "GET",
        f"{B}/logs/stream",
        stream_build_log,
        "The build log over SSE: the log so far, live lines, then an end event",
        "builds",
        permission="build:read",
    ),
    Endpoint(
        "GET",
        f"{B}/queue-position",
        queue_position,
        "Place in the build queue",
        "builds",
        permission="build:read",
        response=QueuePosition,
    ),
]
