"""Signing in to the UI through an OIDC identity provider: the authorization-code flow
with PKCE, in real Chromium, against a small identity provider on a real socket
(authorize, token and JWKS endpoints) and the real app."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.async_api import Browser, async_playwright

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.server.oidc import OidcAuthProvider, OidcSettings

from .conftest import CHROMIUM, CHROMIUM_ARGS

CLIENT_ID = "mastra-admin-ui"


class IdentityProvider:
    """Authorize (redirects straight back with a code, as after a successful login),
    token (checks the PKCE verifier, answers with a signed ID token, allows CORS)
    and JWKS endpoints."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}
        self.codes: dict[str, dict[str, str]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/jwks.json":
                    self._json(200, idp.jwks)
                    return
                if url.path == "/authorize":
                    params = {k: v[0] for k, v in parse_qs(url.query).items()}
                    idp.authorize_requests.append(params)
                    code = secrets.token_urlsafe(16)
                    idp.codes[code] = params
                    target = f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}"
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._json(404, {"error": "not_found"})

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                self._cors()
                self.send_header("Access-Control-Allow-Headers", "Content-Type, Accept")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                idp.token_requests.append(form)
                issued = idp.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .rstrip(b"=")
                    .decode()
                )
                if (
                    issued is None
                    or issued["code_challenge"] != challenge
                    or issued["redirect_uri"] != form.get("redirect_uri")
                    or form.get("client_id") != CLIENT_ID
                ):
                    self._json(400, {"error": "invalid_grant"})
                    return
                self._json(200, {"id_token": idp.id_token(), "token_type": "Bearer"})

            def _cors(self) -> None:
                self.send_header("Access-Control-Allow-Origin", "*")

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self._cors()
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "sub": "idp-user-42",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "iat": now,
            "exp": now + 600,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})

    def settings(self) -> OidcSettings:
        return OidcSettings(
            jwks_url=f"{self.url}/jwks.json",
            issuer=self.url,
            audience=CLIENT_ID,
            authorization_url=f"{self.url}/authorize",
            token_url=f"{self.url}/token",
            client_id=CLIENT_ID,
            display_name="Example SSO",
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def test_sign_in_through_the_identity_provider(
    admin: MastraAdmin, live_url: str, idp: IdentityProvider, browser: Browser
) -> None:
    admin.auth = OidcAuthProvider(idp.settings())
    errors: list[str] = []
    page = await browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    await page.goto(f"{live_url}/account")
    await page.wait_for_url(f"{live_url}/sign-in?next=%2Faccount")
    button = page.get_by_role("button", name="Sign in with Example SSO")
    await button.click()
    await page.wait_for_url(f"{live_url}/account")
    await page.get_by_role("link", name="Ada Lovelace").wait_for()

    [authorize] = idp.authorize_requests
    assert authorize["response_type"] == "code"
    assert authorize["client_id"] == CLIENT_ID
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["redirect_uri"] == f"{live_url}/auth/callback"
    assert authorize["scope"] == "openid email profile"
    [token_request] = idp.token_requests
    assert token_request["grant_type"] == "authorization_code"
    assert len(token_request["code_verifier"]) >= 43

    user = await admin.storage.users.get_by_email("ada@example.com")
    assert user is not None
    assert user.external_id == "idp-user-42"
    await page.get_by_text("identity provider").first.wait_for()
    assert errors == []


async def test_a_refusal_by_the_identity_provider_is_explained(
    admin: MastraAdmin, live_url: str, idp: IdentityProvider, browser: Browser
) -> None:
    admin.auth = OidcAuthProvider(idp.settings())
    errors: list[str] = []
    page = await browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    await page.goto(
        f"{live_url}/auth/callback?error=access_denied&error_description=The+user+said+no"
    )
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "The identity provider refused: The user said no" in await alert.inner_text()
    await page.get_by_role("link", name="Back to sign-in").click()
    await page.wait_for_url(f"{live_url}/sign-in")
    assert errors == []


async def test_a_forged_answer_is_refused(
    admin: MastraAdmin, live_url: str, idp: IdentityProvider, browser: Browser
) -> None:
    """A callback whose state was not issued by this tab signs nobody in."""
    admin.auth = OidcAuthProvider(idp.settings())
    page = await browser.new_page()
    await page.goto(f"{live_url}/auth/callback?code=stolen&state=guessed")
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "not started from this browser tab" in await alert.inner_text()
    assert await page.evaluate("localStorage.getItem('mastraAdmin.token')") is None
    assert idp.token_requests == []


async def test_the_sign_in_config_names_the_provider(
    admin: MastraAdmin, live_url: str, idp: IdentityProvider
) -> None:
    admin.auth = OidcAuthProvider(idp.settings())
    async with httpx.AsyncClient(base_url=live_url) as http:
        config = (await http.get("/api/auth/config")).json()
        page = await http.get("/sign-in")
    assert config["oidc"] == {
        "authorization_url": f"{idp.url}/authorize",
        "token_url": f"{idp.url}/token",
        "client_id": CLIENT_ID,
        "scopes": ["openid", "email", "profile"],
        "display_name": "Example SSO",
    }
    # The browser may post the code to the provider's token endpoint, and nowhere else.
    assert f"connect-src 'self' {idp.url}" in page.headers["content-security-policy"]
