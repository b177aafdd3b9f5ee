"""The fixture Mastra projects: they install offline, build, serve, write spans and logs
per the env contract, and post batches to the collector like Mastra's CloudExporter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.core.testing.projects import VARIANTS, write_mastra_project

pytestmark = pytest.mark.slow

TOKEN = "mac_fixture_token"


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CollectorHandler)
        self.requests: list[tuple[str, str | None, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def npm(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    npm_path = shutil.which("npm")
    assert npm_path is not None, "these tests need node and npm"
    return subprocess.run(
        [npm_path, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("never healthy")


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_every_variant_is_written(tmp_path: Path) -> None:
    for variant in VARIANTS:
        root = write_mastra_project(tmp_path / variant, name=f"p-{variant}", variant=variant)
        package = json.loads((root / "package.json").read_text())
        assert package["dependencies"]["@mastra/core"] == "file:vendor/mastra-core"
        assert (root / "package-lock.json").is_file()
        assert (root / "src" / "mastra" / "index.js").is_file()
    with pytest.raises(FileExistsError):
        write_mastra_project(tmp_path / "ok")
    with pytest.raises(ValueError, match="unknown variant"):
        write_mastra_project(tmp_path / "x", variant="bogus")  # type: ignore[arg-type]


def test_installs_offline_builds_serves_and_exports(tmp_path: Path, collector: Collector) -> None:
    project = write_mastra_project(tmp_path / "agent", name="weather-agent", flush_interval_ms=200)
    installed = npm(project, "ci", "--offline", "--no-audit", "--no-fund")
    assert installed.returncode == 0, installed.stderr
    built = npm(project, "exec", "--no", "--", "mastra", "build")
    assert built.returncode == 0, built.stderr
    assert (project / ".mastra" / "output" / "index.mjs").is_file()

    port = free_port()
    spans_dir, logs_dir = tmp_path / "obs" / "spans", tmp_path / "obs" / "logs"
    env = {
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "MASTRA_PROJECT_ID": "proj_1",
        "MASTRA_DEPLOYMENT_ID": "dep_1",
        "MASTRA_CLOUD_ACCESS_TOKEN": TOKEN,
        "MASTRA_CLOUD_TRACES_ENDPOINT": f"{collector.url}/api/collector/dep_1/spans/publish",
        "MASTRA_CLOUD_TRACES_TARGET_DIR": str(spans_dir),
        "MASTRA_RUNNER_LOGS_TARGET_DIR": str(logs_dir),
    }

    def start(server_env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["node", ".mastra/output/index.mjs"],
            cwd=project,
            env=server_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    server = start(env)
    try:
        wait_healthy(port, server)
        reply = post_json(
            f"http://127.0.0.1:{port}/api/agents/weather/generate",
            {"messages": [{"role": "user", "content": "rain?"}]},
        )
        assert reply["text"] == "weather heard: rain?"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/stream?count=3&interval_ms=10", timeout=5
        ) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            events = response.read().decode()
        assert events.count("event: tick") == 3
        assert "event: end" in events
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            paths = {path for path, _, _ in collector.requests}
            if {"spans", "logs", "metrics"} <= {p.split("/")[-2] for p in paths}:
                break
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, _ = server.communicate(timeout=10)
    assert server.returncode == 0

    by_signal = {path.split("/")[-2]: (path, auth, body) for path, auth, body in collector.requests}
    for name in ("spans", "logs", "metrics"):
        path, auth, body = by_signal[name]
        assert path == f"/api/collector/dep_1/{name}/publish"
        assert auth == f"Bearer {TOKEN}"
        assert isinstance(body[name], list)
        assert body[name]
    span = next(s for s in by_signal["spans"][2]["spans"] if s["isRootSpan"])
    for key in ("id", "traceId", "name", "type", "startTime", "endTime", "spanId", "spanType"):
        assert key in span
    assert span["traceId"] == reply["traceId"]
    log = by_signal["logs"][2]["logs"][0]
    assert {"logId", "timestamp", "level", "message"} <= set(log)
    metric = by_signal["metrics"][2]["metrics"][0]
    assert {"metricId", "timestamp", "name", "value", "labels"} <= set(metric)

    # One exporter at a time: with the collector set, nothing is written twice.
    assert not list(spans_dir.glob("*.jsonl"))
    assert not list(logs_dir.glob("*.jsonl"))

    # Without the collector variables the same server writes the file contract.
    files_only = {
        k: v for k, v in env.items() if not k.startswith("MASTRA_CLOUD_") or k.endswith("_DIR")
    }
    second = start(files_only)
    try:
        wait_healthy(port, second)
        post_json(
            f"http://127.0.0.1:{port}/api/agents/weather/generate",
            {"messages": [{"role": "user", "content": "sun?"}]},
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=10)
    span_lines = [
        json.loads(line) for f in spans_dir.glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert {line["type"] for line in span_lines} == {"span"}
    assert {line["deploymentId"] for line in span_lines} == {"dep_1"}
    log_lines = [
        json.loads(line) for f in logs_dir.glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert any(line["msg"] == "agent weather generated a reply" for line in log_lines)
    assert all(isinstance(line["level"], int) for line in log_lines)
    printed = stdout.decode().splitlines()
    stdout_lines = [json.loads(line) for line in printed if line.startswith("{")]
    assert stdout_lines[0]["msg"].startswith("Mastra API running on port")
    # Like Mastra's PinoLogger without storage: one pino-pretty record, with colours.
    pretty = [line for line in printed if not line.startswith("{")]
    assert pretty[0].startswith("\x1b[33mWARN\x1b[39m [")
    assert "No `storage` configured on Mastra" in pretty[0]
    assert pretty[1] == '    \x1b[35mdocs\x1b[39m: "https://mastra.ai/docs/storage"'
