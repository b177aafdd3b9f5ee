"""Projects, their env vars and API tokens, their routes, and the sources to create them from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mastra_admin.core.inputs import CreateApiToken, CreateProject, SetEnvVar, UpdateProject
from mastra_admin.core.models import DeploymentType, Page, Project, ProjectApiToken, Route
from mastra_admin.core.source import ProjectSource, ProjectSourceProvider
from mastra_admin.core.views import EnvVarView
from mastra_admin.server.routes._common import PageQuery
from mastra_admin.server.routes.webhooks import WEBHOOK_PATH
from mastra_admin.server.routing import Call, Endpoint

__all__ = ["endpoints"]


class RevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[str] | None = Field(default=None, description="Only these keys (default: all).")
    deployment_type: DeploymentType | None = None


class EnvVarTypeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment_type: DeploymentType | None = None


class SourceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: str = Field(min_length=1)


class SourceInfo(BaseModel):
    """The configured project source: its type, whether projects are made from
    settings (``connects``: a repository URL) or picked from what it lists, and the
    path its webhooks are received at, if it takes any."""

    type: str | None
    connects: bool
    webhook_path: str | None = None


class CreatedProjectToken(BaseModel):
    token: ProjectApiToken
    secret: str


async def list_projects(call: Call) -> Page[Project]:
    q = call.query
    return await call.admin.list_projects(
        call.actor, call.params["team_id"], limit=q.limit, offset=q.offset
    )


async def create_project(call: Call) -> Project:
    return await call.admin.create_project(call.actor, call.params["team_id"], call.body)


async def get_project(call: Call) -> Project:
    return await call.admin.get_project(call.actor, call.params["project_id"])


async def update_project(call: Call) -> Project:
    return await call.admin.update_project(call.actor, call.params["project_id"], call.body)


async def delete_project(call: Call) -> None:
    await call.admin.delete_project(call.actor, call.params["project_id"])


async def list_env_vars(call: Call) -> list[EnvVarView]:
    return await call.admin.list_env_vars(call.actor, call.params["project_id"])


async def set_env_var(call: Call) -> EnvVarView:
    return await call.admin.set_env_var(call.actor, call.params["project_id"], call.body)


async def reveal_env_vars(call: Call) -> list[EnvVarView]:
    body: RevealRequest = call.body
    return await call.admin.reveal_env_vars(
        call.actor, call.params["project_id"], body.keys, deployment_type=body.deployment_type
    )


async def delete_env_var(call: Call) -> None:
    await call.admin.delete_env_var(
        call.actor, call.params["project_id"], call.params["key"], call.query.deployment_type
    )


async def list_project_tokens(call: Call) -> list[ProjectApiToken]:
    return await call.admin.list_project_tokens(call.actor, call.params["project_id"])


async def create_project_token(call: Call) -> CreatedProjectToken:
    token, raw = await call.admin.create_project_token(
        call.actor, call.params["project_id"], call.body
    )
    return CreatedProjectToken(token=token, secret=raw)


async def delete_project_token(call: Call) -> None:
    p = call.params
    await call.admin.delete_project_token(call.actor, p["project_id"], p["token_id"])


async def list_routes(call: Call) -> list[Route]:
    return await call.admin.list_routes(call.actor, call.params["project_id"])


def _takes_webhooks(source: ProjectSourceProvider) -> bool:
    return type(source).read_webhook is not ProjectSourceProvider.read_webhook


async def source_info(call: Call) -> SourceInfo:
    source = call.admin.source
    if source is None:
        return SourceInfo(type=None, connects=False)
    return SourceInfo(
        type=source.type,
        connects=source.connects,
        webhook_path=WEBHOOK_PATH if _takes_webhooks(source) else None,
    )


async def list_source_projects(call: Call) -> list[ProjectSource]:
    return await call.admin.list_source_projects(call.actor, call.query.team_id)


async def get_source_project(call: Call) -> ProjectSource:
    return await call.admin.get_source_project(
        call.actor, call.query.team_id, call.params["source_id"]
    )


P = "/api/projects/{project_id}"

endpoints = [
    Endpoint(
        "GET",
        "/api/teams/{team_id}/projects",
        list_projects,
        "A team's projects",
        "projects",
        permission="project:read",
        query=PageQuery,
        response=Page[Project],
        cache=True,
    ),
    Endpoint(
        "POST",
        "/api/teams/{team_id}/projects",
        create_project,
        "Create a project from a source project",
        "projects",
        permission="project:create",
        body=CreateProject,
        response=Project,
        status_code=201,
        extra_responses={409: "the team has a project with this slug"},
    ),
    Endpoint(
        "GET",
        P,
        get_project,
        "A project",
        "projects",
        permission="project:read",
        response=Project,
        cache=True,
    ),
    Endpoint(
        "PATCH",
        P,
        update_project,
        "Change a project",
        "projects",
        permission="project:update",
        body=UpdateProject,
        response=Project,
    ),
    Endpoint(
        "DELETE",
        P,
        delete_project,
        "Delete a project with its deployments",
        "projects",
        permission="project:delete",
        status_code=204,
    ),
    Endpoint(
        "GET",
        f"{P}/env",
        list_env_vars,
        "Env vars (values hidden)",
        "env",
        permission="env_var:read",
        response=list[EnvVarView],
    ),
    Endpoint(
        "PUT",
        f"{P}/env",
        set_env_var,
        "Set an env var (encrypted at rest)",
        "env",
        permission="env_var:write",
        body=SetEnvVar,
        response=EnvVarView,
    ),
    Endpoint(
        "POST",
        f"{P}/env/reveal",
        reveal_env_vars,
        "Env vars with values (recorded)",
        "env",
        permission="env_var:reveal",
        body=RevealRequest,
        response=list[EnvVarView],
    ),
    Endpoint(
        "DELETE",
        f"{P}/env/{{key}}",
        delete_env_var,
        "Delete an env var",
        "env",
        permission="env_var:write",
        query=EnvVarTypeQuery,
        status_code=204,
    ),
    Endpoint(
        "GET",
        f"{P}/tokens",
        list_project_tokens,
        "A project's API tokens",
        "tokens",
        permission="token:read",
        response=list[ProjectApiToken],
    ),
    Endpoint(
        "POST",
        f"{P}/tokens",
        create_project_token,
        "Create a project token (shown once)",
        "tokens",
        permission="token:write",
        body=CreateApiToken,
        response=CreatedProjectToken,
        status_code=201,
    ),
    Endpoint(
        "DELETE",
        f"{P}/tokens/{{token_id}}",
        delete_project_token,
        "Delete a project token",
        "tokens",
        permission="token:write",
        status_code=204,
    ),
    Endpoint(
        "GET",
        f"{P}/routes",
        list_routes,
        "A project's routes",
        "routes",
        permission="route:read",
        response=list[Route],
    ),
    Endpoint(
        "GET",
        "/api/sources",
        source_info,
        "The configured project source",
        "sources",
        access="user",
        response=SourceInfo,
        cache=True,
    ),
    Endpoint(
        "GET",
        "/api/sources/projects",
        list_source_projects,
        "Projects the team can create from (the source picker)",
        "sources",
        permission="project:create",
        query=SourceQuery,
        response=list[ProjectSource],
    ),
    Endpoint(
        "GET",
        "/api/sources/projects/{source_id}",
        get_source_project,
        "One source project",
        "sources",
        permission="project:create",
        query=SourceQuery,
        response=ProjectSource,
    ),
]
