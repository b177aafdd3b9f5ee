"""OIDC sign-in: JWTs signed by a real key served from a real JWKS endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.server.oidc import OidcAuthProvider, OidcSettings

from .conftest import World


class IdentityProvider:
    """An RSA key whose public half is served as a JWKS over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}
        jwks = json.dumps(self.jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": "https://idp.example.com",
            "aud": "mastra-admin",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "k1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp(admin: MastraAdmin) -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    admin.auth = OidcAuthProvider(
        OidcSettings(
            jwks_url=provider.jwks_url, issuer="https://idp.example.com", audience="mastra-admin"
        )
    )
    try:
        yield provider
    finally:
        provider.close()


async def test_a_valid_jwt_signs_in_and_maps_to_a_user_by_external_id(
    client: httpx.AsyncClient, idp: IdentityProvider, world: World
) -> None:
    token = idp.token(sub="auth0|ada", email="ada@example.com", name="Ada")
    first = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200, first.text
    me = first.json()
    assert (me["email"], me["external_id"], me["name"]) == ("ada@example.com", "auth0|ada", "Ada")
    again = await client.get(
        "/api/me", headers={"Authorization": f"Bearer {idp.token(sub='auth0|ada')}"}
    )
    assert again.json()["id"] == me["id"]


async def test_an_existing_user_is_linked_by_email(
    client: httpx.AsyncClient, idp: IdentityProvider, world: World
) -> None:
    token = idp.token(sub="google|7", email=world.member.user.email)
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["id"] == world.member.user.id
    teams = await client.get("/api/teams", headers={"Authorization": f"Bearer {token}"})
    assert [t["id"] for t in teams.json()] == [world.team_id]


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "x", "exp": int(time.time()) - 3600},
        {"sub": "x", "aud": "someone-else"},
        {"sub": "x", "iss": "https://evil.example.com"},
        {"exp": int(time.time()) + 60},
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "no-subject"],
)
async def test_bad_jwts_are_401(
    client: httpx.AsyncClient, idp: IdentityProvider, claims: dict[str, Any]
) -> None:
    response = await client.get(
        "/api/me", headers={"Authorization": f"Bearer {idp.token(**claims)}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_a_jwt_signed_by_another_key_is_401(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {
            "sub": "x",
            "aud": "mastra-admin",
            "iss": "https://idp.example.com",
            "exp": int(time.time()) + 60,
        },
        forger,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
