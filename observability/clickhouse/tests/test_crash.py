"""A worker process killed with SIGKILL at random moments, twenty times, then
restarted: every event is in ClickHouse exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.observability.clickhouse import ClickHouseObservability

from .ingest_process import crash_test_settings

HELPER = Path(__file__).with_name("ingest_process.py")
ROUNDS = 20


def span(n: int) -> bytes:
    at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    return (
        json.dumps(
            {
                "id": f"span-{n:06d}",
                "traceId": f"trace-{n // 10:05d}",
                "name": "step",
                "startTime": at,
                "endTime": at,
                "isRootSpan": n % 10 == 0,
                "input": {"padding": "x" * 300},
                "deployment_id": "dep_k",
            }
        ).encode()
        + b"\n"
    )


def log(n: int) -> bytes:
    ms = int((datetime.now(UTC) - timedelta(minutes=10)).timestamp() * 1000)
    return json.dumps({"level": 30, "time": ms, "msg": f"log line {n}"}).encode() + b"\n"


async def wait_ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=120)
    assert line == b"ready\n", line


@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    chdb, files, builds = tmp_path / "chdb", tmp_path / "files", tmp_path / "builds"
    storage = LocalFileStorage(files)
    obs = builds / "build_k" / "observability"
    for folder in ("spans", "logs"):
        (obs / folder).mkdir(parents=True)
    (obs / "meta.json").write_text(
        json.dumps({"project_id": "proj_k", "deployment_id": "dep_k", "build_id": "build_k"})
    )
    spans_written = logs_written = 0
    kills = interrupted = 0
    for round_ in range(ROUNDS):
        for n in range(2):  # collector files, each several inserts long
            body = b"".join(span(spans_written + i) for i in range(250))
            spans_written += 250
            await storage.write(f"spans/proj_k/{round_:02d}{n}_f.jsonl", body)
        with open(obs / "spans" / "1_tail.jsonl", "ab") as out:  # a server appending
            out.write(b"".join(span(spans_written + i) for i in range(60)))
        spans_written += 60
        with open(obs / "logs" / "1_pino.jsonl", "ab") as out:
            out.write(b"".join(log(logs_written + i) for i in range(40)))
        logs_written += 40
        process = subprocess.Popen(
            [sys.executable, str(HELPER), str(chdb), str(files), str(builds), "crash"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_ready(process)
            await asyncio.sleep(rng.uniform(0.0, 1.5))
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            assert process.stdout is not None
            process.stdout.close()
        kills += 1 if process.returncode == -signal.SIGKILL else 0
        journals = list((files / "_ingest" / "journal").glob("*.json"))
        claims = list((files / "_ingest" / "claims").rglob("*.jsonl"))
        tail_state = obs / ".ingest-state.json"
        tail_pending = tail_state.exists() and b'"pending":{' in tail_state.read_bytes()
        interrupted += 1 if journals or claims or tail_pending else 0
    assert kills == ROUNDS
    assert interrupted >= 3  # many of the kills hit a worker in the middle of its work

    backend = ClickHouseObservability(crash_test_settings(str(chdb), "crash"))
    try:
        await backend.init()
        worker = backend.ingestion_worker(storage, build_dirs=[str(builds)])
        for _ in range(200):
            result = await worker.process_once()
            assert not result.errors
            if result.files_processed == 0 and not await storage.list("spans/"):
                break
        await worker.stop()
        db = backend.settings.database
        rows = await backend.transport.fetch(
            f"SELECT count() AS n, uniqExact(span_id) AS u FROM {db}.mastra_admin_spans"
        )
        assert (rows[0]["n"], rows[0]["u"]) == (spans_written, spans_written)
        rows = await backend.transport.fetch(
            f"SELECT count() AS n, uniqExact(message) AS u FROM {db}.mastra_admin_logs"
        )
        assert (rows[0]["n"], rows[0]["u"]) == (logs_written, logs_written)
        rows = await backend.transport.fetch(f"SELECT count() AS n FROM {db}.mastra_admin_traces")
        assert rows[0]["n"] == spans_written // 10
        assert await storage.list("_ingest/claims/") == []
    finally:
        await backend.close()
