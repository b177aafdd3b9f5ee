"""The signed-in user, their API tokens, users (platform admins), licence, plugins."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mastra_admin.core.inputs import CreateApiToken, CreateUser
from mastra_admin.core.licence import LicenceInfo
from mastra_admin.core.models import Page, User, UserApiToken
from mastra_admin.core.plugins import PluginInfo
from mastra_admin.server.oidc import OidcAuthProvider, OidcBrowserSignIn
from mastra_admin.server.routes._common import PageQuery
from mastra_admin.server.routing import Call, Endpoint

__all__ = ["endpoints"]


class CreatedUserToken(BaseModel):
    token: UserApiToken
    secret: str


class AuthConfig(BaseModel):
    """How a browser can sign in: always with an API token; through an identity
    provider when ``oidc`` is set."""

    api_tokens: bool = True
    oidc: OidcBrowserSignIn | None = None


async def auth_config(call: Call) -> AuthConfig:
    auth = call.admin.auth
    return AuthConfig(oidc=auth.browser_sign_in() if isinstance(auth, OidcAuthProvider) else None)


async def get_me(call: Call) -> User:
    return await call.admin.get_me(call.actor)


async def list_my_tokens(call: Call) -> list[UserApiToken]:
    return await call.admin.list_user_tokens(call.actor)


async def create_my_token(call: Call) -> CreatedUserToken:
    token, raw = await call.admin.create_user_token(call.actor, call.body)
    return CreatedUserToken(token=token, secret=raw)


async def revoke_my_token(call: Call) -> None:
    await call.admin.revoke_user_token(call.actor, call.params["token_id"])


async def list_users(call: Call) -> Page[User]:
    return await call.admin.list_users(call.actor, limit=call.query.limit, offset=call.query.offset)


async def get_user(call: Call) -> User:
    return await call.admin.get_user(call.actor, call.params["user_id"])


async def create_user(call: Call) -> User:
    return await call.admin.create_user(call.actor, call.body)


async def get_licence(call: Call) -> LicenceInfo:
    return call.admin.licence_info()


async def list_plugins(call: Call) -> list[PluginInfo]:
    return call.admin.plugins.list_plugins() if call.admin.plugins is not None else []


async def ingestion_status(call: Call) -> Any:
    await call.admin.authorizer.ensure_platform_admin(call.actor)
    worker = call.request.app.state.ingestion
    return worker.status() if worker is not None else {"running": False, "processing": False}


endpoints = [
    Endpoint(
        "GET",
        "/api/auth/config",
        auth_config,
        "How to sign in (API token; the OIDC provider's endpoints when configured)",
        "me",
        access="public",
        response=AuthConfig,
    ),
    Endpoint("GET", "/api/me", get_me, "The signed-in user", "me", access="user", response=User),
    Endpoint(
        "GET",
        "/api/me/tokens",
        list_my_tokens,
        "My API tokens",
        "me",
        access="user",
        response=list[UserApiToken],
    ),
    Endpoint(
        "POST",
        "/api/me/tokens",
        create_my_token,
        "Create an API token (shown once)",
        "me",
        access="user",
        body=CreateApiToken,
        response=CreatedUserToken,
        status_code=201,
    ),
    Endpoint(
        "DELETE",
        "/api/me/tokens/{token_id}",
        revoke_my_token,
        "Revoke one of my API tokens",
        "me",
        access="user",
        status_code=204,
    ),
    Endpoint(
        "GET",
        "/api/users",
        list_users,
        "All users (platform admins)",
        "users",
        access="platform",
        query=PageQuery,
        response=Page[User],
    ),
    Endpoint(
        "GET",
        "/api/users/{user_id}",
        get_user,
        "A user: yourself or someone you share a team with",
        "users",
        access="user",
        response=User,
    ),
    Endpoint(
        "POST",
        "/api/users",
        create_user,
        "Create a user (platform admins)",
        "users",
        access="platform",
        body=CreateUser,
        response=User,
        status_code=201,
        extra_responses={409: "a user has this email or external id"},
    ),
    Endpoint(
        "GET",
        "/api/licence",
        get_licence,
        "The licence tier, features and limits",
        "licence",
        access="user",
        response=LicenceInfo,
    ),
    Endpoint(
        "GET",
        "/api/plugins",
        list_plugins,
        "Loaded plugins with their versions and hooks",
        "plugins",
        access="user",
        response=list[PluginInfo],
    ),
    Endpoint(
        "GET",
        "/api/observability/ingestion",
        ingestion_status,
        "The in-process ingestion worker's status (platform admins)",
        "observability",
        access="platform",
    ),
]
