"""The collector with the real batches a Mastra server posts, and with bad input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import Deployment

from .conftest import World, exporter_body

SIGNALS = ["spans", "logs", "metrics", "scores", "feedback"]


def _url(admin: MastraAdmin, deployment: Deployment, signal: str) -> str:
    """The path the exporter derives from MASTRA_CLOUD_TRACES_ENDPOINT for ``signal``."""
    traces = admin.collector_url(deployment.id)
    assert traces.endswith("/spans/publish")
    path = urlsplit(traces).path
    return path.removesuffix("spans/publish") + f"{signal}/publish"


def _auth(admin: MastraAdmin, deployment: Deployment) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin.collector_token(deployment.id)}"}


async def _files(admin: MastraAdmin) -> list[str]:
    assert admin.file_storage is not None
    return [f.path for f in await admin.file_storage.list("")]


@pytest.mark.parametrize("signal", SIGNALS)
async def test_real_batches_are_stored_whole_before_the_answer(
    signal: str, admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    body = exporter_body(signal)
    response = await client.post(
        _url(admin, deployment, signal), json=body, headers=_auth(admin, deployment)
    )
    assert response.status_code == 200, response.text
    sent = body[signal]
    assert isinstance(sent, list)
    assert response.json() == {"accepted": len(sent)}

    files = await _files(admin)
    assert len(files) == 1
    folder, project_id, name = files[0].split("/")
    assert folder == signal
    assert project_id == deployment.project_id
    assert name.endswith(".jsonl")
    assert admin.file_storage is not None
    lines = (await admin.file_storage.read(files[0])).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len(sent)
    for original, stored in zip(sent, records, strict=True):
        assert isinstance(original, dict)
        assert stored["deployment_id"] == deployment.id
        assert stored["project_id"] == deployment.project_id
        assert {k: v for k, v in stored.items() if k not in {"deployment_id", "project_id"}} == {
            k: v for k, v in original.items() if k not in {"deployment_id", "project_id"}
        }


async def test_a_wrong_or_missing_token_is_401_and_stores_nothing(
    admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    url = _url(admin, deployment, "spans")
    body = exporter_body("spans")
    other = admin.collector_token("another-deployment")
    for headers in ({}, {"Authorization": f"Bearer {other}"}, {"Authorization": "Basic x"}):
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    assert await _files(admin) == []


async def test_deleting_the_deployment_revokes_its_token(
    admin: MastraAdmin, world: World, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    url, headers = _url(admin, deployment, "spans"), _auth(admin, deployment)
    # Accepted once (and the deployment's project remembered), then deleted.
    assert (await client.post(url, json=exporter_body("spans"), headers=headers)).status_code == 200
    await admin.delete_deployment(world.owner.user.id, deployment.id)
    before = await _files(admin)
    for body in (exporter_body("spans"), {"spans": []}):
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert "revoked" in response.json()["error"]["message"]
    assert await _files(admin) == before


@pytest.mark.parametrize("signal", SIGNALS)
async def test_records_cannot_name_another_deployment_or_project(
    signal: str, admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    """Whatever ids a record carries, plainly, in camelCase or inside an envelope the
    ingestion opens (as an object or as JSON text), the collector's replace them."""
    [original] = exporter_body(signal)[signal][:1]  # type: ignore[index]
    claims = {
        "deployment_id": "victim-deployment",
        "deploymentId": "victim-deployment",
        "project_id": "victim-project",
        "projectId": "victim-project",
    }
    kind = signal.removesuffix("s")
    records = [
        {**original, **claims},
        {"type": kind, "data": {**original, **claims}, **claims},
        {"type": kind, "data": json.dumps({**original, **claims})},
    ]
    response = await client.post(
        _url(admin, deployment, signal), json={signal: records}, headers=_auth(admin, deployment)
    )
    assert response.status_code == 200, response.text
    [path] = await _files(admin)
    assert admin.file_storage is not None
    stored = [json.loads(line) for line in (await admin.file_storage.read(path)).splitlines()]
    assert len(stored) == 3
    for record in (stored[0], stored[1], stored[1]["data"], stored[2], stored[2]["data"]):
        assert record["deployment_id"] == deployment.id
        assert record["project_id"] == deployment.project_id
        assert "deploymentId" not in record
        assert "projectId" not in record
    assert "victim" not in (await admin.file_storage.read(path)).decode()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"logs": []}',
        b'{"spans": {"id": 1}}',
        b'{"spans": [1, 2]}',
        "\udc80".encode("utf-8", "surrogatepass"),
    ],
)
async def test_malformed_bodies_are_400_and_store_nothing(
    raw: bytes, admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        _url(admin, deployment, "spans"),
        content=raw,
        headers={**_auth(admin, deployment), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    assert await _files(admin) == []


async def test_a_batch_over_the_limit_is_413(
    admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    big = {"logs": [{"message": "x" * 1000, "level": "info"} for _ in range(100)]}
    response = await client.post(
        _url(admin, deployment, "logs"), json=big, headers=_auth(admin, deployment)
    )
    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit"] == 64 * 1024
    assert await _files(admin) == []


async def test_unknown_signal_is_404(
    admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        _url(admin, deployment, "traces"), json={"traces": []}, headers=_auth(admin, deployment)
    )
    assert response.status_code == 404


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: the file storage's disk, soon full."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


async def test_a_full_disk_is_503_with_retry_after_and_leaves_no_partial_file(
    admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient, tiny_disk: Path
) -> None:
    admin.file_storage = LocalFileStorage(tiny_disk)
    url = _url(admin, deployment, "logs")
    batch = {"logs": [{"message": "y" * 500, "level": "info"} for _ in range(40)]}  # ~22 KB
    statuses = []
    for _ in range(6):
        response = await client.post(url, json=batch, headers=_auth(admin, deployment))
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.headers["Retry-After"].isdigit()
            assert response.json()["error"]["code"] == "unavailable"
    assert 200 in statuses, statuses
    assert 503 in statuses, statuses
    accepted = statuses.count(200)
    files = sorted(p for p in tiny_disk.rglob("*") if p.is_file())
    assert len(files) == accepted, [p.name for p in files]
    for path in files:
        lines = path.read_text().splitlines()
        assert len(lines) == 40
        assert all(json.loads(line)["message"] for line in lines)
