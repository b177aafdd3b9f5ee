"""Webhooks from git hosts: ``POST /api/webhooks/git``.

One endpoint for every project: the source reads the delivery, the core finds the
projects that follow its repository and acts only on those whose webhook secret
signed it (``X-Hub-Signature-256``). Answers: 202 with what was done, 422 malformed,
401 bad signature, 404 unknown repository, 409 a delivery id seen before, 413 too large.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from mastra_admin.core.services.webhooks import WebhookOutcome
from mastra_admin.server.routing import Call, Endpoint, read_body

__all__ = ["MAX_WEBHOOK_BYTES", "WEBHOOK_PATH", "endpoints"]

WEBHOOK_PATH = "/api/webhooks/git"

MAX_WEBHOOK_BYTES = 5 * 2**20
"""Largest delivery accepted (GitHub caps its payloads at 25 MB, but a push or pull
request payload this platform acts on is a few KB to a few hundred KB)."""


async def receive_git_webhook(call: Call) -> JSONResponse:
    body = await read_body(call.request, MAX_WEBHOOK_BYTES)
    headers = {name.lower(): value for name, value in call.request.headers.items()}
    outcome = await call.admin.receive_webhook(headers, body)
    return JSONResponse(outcome.model_dump(mode="json"), status_code=202)


endpoints = [
    Endpoint(
        "POST",
        WEBHOOK_PATH,
        receive_git_webhook,
        summary="Receive a push or pull request webhook from a git host",
        tag="webhooks",
        access="public",
        response=WebhookOutcome,
        status_code=202,
        extra_responses={
            422: "malformed delivery",
            401: "the signature matches no project's webhook secret",
            404: "no project follows the repository",
            409: "the delivery was received before",
            413: "too large",
        },
        max_body=MAX_WEBHOOK_BYTES,
    )
]
