"""Observability ingestion and queries on the embedded ClickHouse (chDB).

- 1,000,000 span events in JSONL files, a mix of the CloudExporter's records (collector
  files of 1,000 spans) and the specification's ``{type, data}`` envelope (two large
  FileExporter files in a build folder), ingested by the worker in its own process:
  events/s and the process's peak memory: all of it over its whole life (RSS), and
  while it ingests its private part (RssAnon) and the part backed by files (RssFile:
  mostly the engine's code, after the pages only its start-up used were given back);
  beside it, in the same run, the engine's own rate for the same files (``INSERT …
  SELECT`` of the same parsing SQL ``FROM file(…, LineAsString)``). The worker runs a second time
  over a quarter of the data (build files a quarter of the size): its peak memory
  should not follow the size of the files.
- Lag, with the default settings: from a line written (a collector file or a line
  appended to a tailed file) to the span being queryable, p50 and p95.
- Over 5,000,000 spans (500,000 traces over 30 days): a trace looked up by id, a
  50-row page of traces, and an hourly dashboard series over seven days, p95.

``MASTRA_ADMIN_BENCH_SPANS`` and ``MASTRA_ADMIN_BENCH_QUERY_SPANS`` scale the two sizes
down for a quick look; ``MASTRA_ADMIN_BENCH_WORKER_SETTINGS`` (JSON) changes the worker's
settings (e.g. ``{"chunk_bytes": 33554432}``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks._report import Figure

SPANS = int(os.environ.get("MASTRA_ADMIN_BENCH_SPANS", "1000000"))
QUERY_SPANS = int(os.environ.get("MASTRA_ADMIN_BENCH_QUERY_SPANS", "5000000"))
COLLECTOR_SHARE = 0.6
COLLECTOR_BATCH = 1000
ROOT = Path(__file__).resolve().parent.parent

_PROJECT = "proj_bench"
_DEPLOYMENT = "dep_bench"


def _settings(path: Path, database: str, **changes: object) -> object:
    from mastra_admin.observability.clickhouse import ClickHouseSettings

    return ClickHouseSettings.model_validate({"path": str(path), "database": database, **changes})


# --- data -----------------------------------------------------------------------------


def _cloud_span(n: int, at: str) -> str:
    trace = f"{n // 10:032x}"
    parent = "null" if n % 10 == 0 else f'"{(n - n % 10):016x}"'
    return (
        f'{{"id":"{n:016x}","traceId":"{trace}","name":"workflow step: \'step{n % 7}\'",'
        f'"type":"workflow_step","entityType":"workflow_step","entityId":"shout",'
        f'"entityName":"greet","attributes":{{"status":"success","n":{n}}},'
        f'"metadata":{{"runId":"run-{n // 10}"}},"startTime":"{at}","endTime":"{at}",'
        f'"input":{{"name":"ada lovelace"}},"output":{{"greeting":"HELLO ADA LOVELACE"}},'
        f'"isEvent":false,"isRootSpan":{"true" if n % 10 == 0 else "false"},'
        f'"parentSpanId":{parent},"spanId":"{n:016x}","spanType":"workflow_step",'
        f'"startedAt":"{at}","endedAt":"{at}","error":null,"createdAt":"{at}",'
        f'"updatedAt":null,"project_id":"{_PROJECT}","deployment_id":"{_DEPLOYMENT}"}}\n'
    )


def _envelope_span(n: int, at: str) -> str:
    trace = f"{n // 10:032x}"
    parent = "null" if n % 10 == 0 else f'"{(n - n % 10):016x}"'
    return (
        f'{{"type":"span","projectId":"{_PROJECT}","deploymentId":"{_DEPLOYMENT}",'
        f'"timestamp":1763764851734,"data":{{"id":"{n:016x}","traceId":"{trace}",'
        f'"name":"agent run {n % 5}","type":"agent_run","startTime":"{at}","endTime":"{at}",'
        f'"attributes":{{"model":"gpt-x","tokens":{n % 900}}},"metadata":{{}},'
        f'"input":{{"messages":[{{"role":"user","content":"hello there"}}]}},'
        f'"output":{{"text":"general kenobi"}},"isRootSpan":{"true" if n % 10 == 0 else "false"},'
        f'"parentSpanId":{parent}}}}}\n'
    )


def generate(folder: Path, spans: int) -> tuple[Path, Path]:
    """Collector files under ``files/spans/{project}/`` and two big FileExporter files in
    ``builds/bench/observability/spans/``; returns (files root, builds root)."""
    files, builds = folder / "files", folder / "builds"
    target = files / "spans" / _PROJECT
    target.mkdir(parents=True)
    obs = builds / "bench" / "observability"
    (obs / "spans").mkdir(parents=True)
    (obs / "meta.json").write_text(
        json.dumps({"project_id": _PROJECT, "deployment_id": _DEPLOYMENT, "build_id": "bench"})
    )
    base = datetime.now(UTC) - timedelta(hours=2)
    cloud = int(spans * COLLECTOR_SHARE)
    for start in range(0, cloud, COLLECTOR_BATCH):
        lines = []
        for n in range(start, min(start + COLLECTOR_BATCH, cloud)):
            at = (base + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
            lines.append(_cloud_span(n, at))
        (target / f"{start:09d}_{start:032x}.jsonl").write_text("".join(lines))
    half = cloud + (spans - cloud) // 2
    for index, (first, last) in enumerate(((cloud, half), (half, spans))):
        with open(obs / "spans" / f"{index}_exporter.jsonl", "w") as out:
            for n in range(first, last):
                at = (base + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
                out.write(_envelope_span(n, at))
    return files, builds


# --- the worker in its own process ---------------------------------------------------------


class _MemoryWatch:
    """Peak resident memory of this process, split into private (anonymous) pages and
    pages of mapped files (the engine's 550 MB shared library, shared and reclaimable)."""

    def __init__(self) -> None:
        import threading

        self.anon_kb = self.file_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    self.anon_kb = max(self.anon_kb, int(line.split()[1]))
                elif line.startswith("RssFile:"):
                    self.file_kb = max(self.file_kb, int(line.split()[1]))

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def restart(self) -> tuple[float, float]:
        """The peaks so far (MB, private and file-backed); then watch afresh."""
        self.sample()
        peaks = (self.anon_kb / 1024, self.file_kb / 1024)
        self.anon_kb = self.file_kb = 0
        return peaks


async def _worker_main(chdb: str, files: str, builds: str) -> None:
    import structlog

    from mastra_admin.core.local_file_storage import LocalFileStorage
    from mastra_admin.observability.clickhouse import ClickHouseObservability

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    memory = _MemoryWatch()
    extra = json.loads(os.environ.get("MASTRA_ADMIN_BENCH_WORKER_SETTINGS", "{}"))
    backend = ClickHouseObservability(_settings(Path(chdb), "bench", **extra))  # type: ignore[arg-type]
    await backend.init()
    start_anon, start_file = memory.restart()  # opening and migrating: then ingesting
    worker = backend.ingestion_worker(LocalFileStorage(files), build_dirs=[builds])
    started = time.perf_counter()
    events = bad = 0
    while True:
        result = await worker.process_once()
        if result.errors:
            raise SystemExit(f"ingestion failed: {result.errors}")
        events += result.events_ingested
        bad += result.bad_lines
        if result.files_processed == 0:
            break
    seconds = time.perf_counter() - started
    await worker.stop()
    rows = await backend.transport.fetch("SELECT count() AS n FROM bench.mastra_admin_spans")
    await backend.close()
    memory.stop()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "events": events,
                "bad": bad,
                "seconds": seconds,
                "stored": int(rows[0]["n"]),
                "rss_mb": peak_kb / 1024,
                "anon_mb": memory.anon_kb / 1024,
                "file_mb": memory.file_kb / 1024,
                "start_anon_mb": start_anon,
                "start_file_mb": start_file,
            }
        )
    )


def _worker_rate(folder: Path, files: Path, builds: Path) -> dict[str, float]:
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.ingest",
            "--worker",
            str(folder / f"chdb-worker-{files.parent.name}"),
            str(files),
            str(builds),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


# --- the engine alone ---------------------------------------------------------------------


async def _engine_rate(chdb: Path, files: Path, builds: Path) -> float:
    from mastra_admin.observability.clickhouse import ClickHouseObservability
    from mastra_admin.observability.clickhouse._schema import PARSERS, parser_select

    backend = ClickHouseObservability(_settings(chdb, "reference"))  # type: ignore[arg-type]
    await backend.init()
    parser = next(p for p in PARSERS if p.name == "spans")
    columns = ", ".join(parser.columns)
    seconds = 0.0
    for glob, context in (
        (f"{files}/spans/{_PROJECT}/*.jsonl", {"signal": "spans", "project_id": _PROJECT}),
        (
            f"{builds}/bench/observability/spans/*.jsonl",
            {"signal": "spans", "project_id": _PROJECT, "deployment_id": _DEPLOYMENT},
        ),
    ):
        select = (
            parser_select(parser, "reference")
            .replace(
                "FROM reference.mastra_admin_ingest_landing_spans",
                f"FROM file('{glob}', LineAsString)",
            )
            .replace("getSetting('log_comment')", "'" + json.dumps(context) + "'")
        )
        started = time.perf_counter()
        await backend.transport.execute(
            f"INSERT INTO reference.mastra_admin_spans ({columns}) "
            f"SELECT {columns} FROM ({select}) WHERE _reject = ''"
        )
        seconds += time.perf_counter() - started
    rows = await backend.transport.fetch("SELECT count() AS n FROM reference.mastra_admin_spans")
    stored = int(rows[0]["n"])
    await backend.drop()
    await backend.close()
    return stored / seconds


def _append(path: Path, text: str) -> None:
    with open(path, "a") as out:
        out.write(text)


def _idle_engine_memory(folder: Path) -> dict[str, float]:
    """Resident memory of a process that only opened the embedded engine (as the
    transport does), before and after it gave back the library's start-up pages."""
    code = (
        "import asyncio, json, sys\n"
        "from mastra_admin.observability.clickhouse import ChdbTransport\n"
        "def status():\n"
        "    return {l.split(':')[0]: int(l.split()[1]) / 1024 for l in open('/proc/self/status')"
        " if l.startswith(('VmRSS', 'RssAnon', 'RssFile'))}\n"
        "async def main():\n"
        "    transport = ChdbTransport(sys.argv[1])\n"
        "    await transport.fetch('SELECT 1 AS ok')\n"
        "    opened = status()\n"
        "    await transport.release_unused_memory()\n"
        "    print(json.dumps({'opened': opened, 'released': status()}))\n"
        "    await transport.close()\n"
        "asyncio.run(main())\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, str(folder / "chdb-idle")],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, dict[str, float]] = json.loads(output.stdout.strip().splitlines()[-1])
    return {
        **result["opened"],
        **{f"released_{key}": value for key, value in result["released"].items()},
    }


# --- lag ------------------------------------------------------------------------------------


async def _lag(chdb: Path, folder: Path, probes: int = 40) -> tuple[list[float], list[float]]:
    """Span lags (a collector file or a line appended to a tailed file, until the span
    is stored) and log lags (a collector file, until the query API lists the log)."""
    from mastra_admin.core.local_file_storage import LocalFileStorage
    from mastra_admin.core.observability import LogQuery
    from mastra_admin.core.observability_writer import write_batch
    from mastra_admin.observability.clickhouse import ClickHouseObservability

    backend = ClickHouseObservability(_settings(chdb, "lag"))  # type: ignore[arg-type]
    await backend.init()
    storage = LocalFileStorage(folder / "lag-files")
    obs = folder / "lag-builds" / "b" / "observability"
    (obs / "spans").mkdir(parents=True)
    (obs / "meta.json").write_text(json.dumps({"project_id": "p", "deployment_id": "d"}))
    worker = backend.ingestion_worker(storage, build_dirs=[str(folder / "lag-builds")])
    await worker.start()
    rng = random.Random(7)
    lags: list[float] = []
    log_lags: list[float] = []
    try:
        for n in range(probes):
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            span_id = f"probe-{n}"
            record = {
                "id": span_id,
                "traceId": f"lag-{n}",
                "name": "probe",
                "startTime": at,
                "endTime": at,
                "isRootSpan": True,
                "deployment_id": "d",
            }
            started = time.perf_counter()
            if n % 2:
                await write_batch(storage, "span", "p", [record])
            else:
                line = json.dumps({"type": "span", "data": record}) + "\n"
                await asyncio.to_thread(_append, obs / "spans" / "1_tail.jsonl", line)
            while True:
                rows = await backend.transport.fetch(
                    "SELECT count() AS n FROM lag.mastra_admin_spans WHERE span_id = {s:String}",
                    {"s": span_id},
                )
                if rows[0]["n"]:
                    break
                await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started)

            await asyncio.sleep(rng.uniform(0.05, 0.6))
            log = {"logId": f"log-{n}", "timestamp": at, "level": "info", "message": f"m{n}"}
            started = time.perf_counter()
            await write_batch(storage, "log", "p", [log])
            while True:
                page = await backend.query.list_logs(LogQuery(project_id="p", text=f"m{n}"))
                if any(item.id == f"log-{n}" for item in page.items):
                    break
                await asyncio.sleep(0.01)
            log_lags.append(time.perf_counter() - started)
    finally:
        await worker.stop()
        await backend.drop()
        await backend.close()
    return lags, log_lags


# --- runtime logs: pino-pretty text against JSON lines ---------------------------------------

RUNTIME_RECORDS = int(os.environ.get("MASTRA_ADMIN_BENCH_RUNTIME_RECORDS", "200000"))
_LEVEL_WORDS = (("INFO", 30, "\x1b[32m"), ("WARN", 40, "\x1b[33m"), ("ERROR", 50, "\x1b[31m"))


def _runtime_files(folder: Path, records: int) -> tuple[Path, Path]:
    """The same records as a Mastra server prints them (pino-pretty, colours and two
    indented fields each) and as pino's JSON lines, each in a build folder of its own."""
    roots = (folder / "runtime-pretty", folder / "runtime-json")
    start = datetime.now(UTC) - timedelta(hours=1)
    pretty, plain = [], []
    for n in range(records):
        word, number, colour = _LEVEL_WORDS[n % 3]
        at = start + timedelta(milliseconds=n)
        stamp = at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d} +0000"
        message = f"tool call {n} finished"
        pretty.append(
            f"{colour}{word}\x1b[39m [{stamp}] (weather): \x1b[36m{message}\x1b[39m\n"
            f'    \x1b[35mrunId\x1b[39m: "run-{n}"\n    \x1b[35mdurationMs\x1b[39m: {n % 997}\n'
        )
        record = {
            "level": number,
            "time": int(at.timestamp() * 1000),
            "name": "weather",
            "msg": message,
            "runId": f"run-{n}",
            "durationMs": n % 997,
        }
        plain.append(json.dumps(record) + "\n")
    for root, lines in zip(roots, (pretty, plain), strict=True):
        obs = root / "b" / "observability"
        (obs / "runtime").mkdir(parents=True)
        (obs / "meta.json").write_text(json.dumps({"project_id": "p", "deployment_id": "d"}))
        (obs / "runtime" / "stdout-1-1.log").write_text("".join(lines))
    return roots


async def _runtime_rate(chdb: Path, folder: Path, builds: Path, name: str) -> float:
    from mastra_admin.core.local_file_storage import LocalFileStorage
    from mastra_admin.observability.clickhouse import ClickHouseObservability

    backend = ClickHouseObservability(_settings(chdb, name))  # type: ignore[arg-type]
    await backend.init()
    worker = backend.ingestion_worker(
        LocalFileStorage(folder / f"{name}-files"), build_dirs=[str(builds)]
    )
    started = time.perf_counter()
    events = 0
    while True:
        result = await worker.process_once()
        if result.errors:
            raise SystemExit(f"ingestion failed: {result.errors}")
        events += result.events_ingested
        if result.files_processed == 0:
            break
    seconds = time.perf_counter() - started
    await worker.stop()
    rows = await backend.transport.fetch(f"SELECT count() AS n FROM {name}.mastra_admin_logs")
    await backend.drop()
    await backend.close()
    if int(rows[0]["n"]) != RUNTIME_RECORDS:
        raise SystemExit(f"{name}: {rows[0]['n']} records stored, {RUNTIME_RECORDS} written")
    return events / seconds


# --- queries over many spans ------------------------------------------------------------------


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 2 else samples[0]


async def _queries(chdb: Path, spans: int) -> dict[str, float]:
    from mastra_admin.core.observability import SpanQuery, TimeSeriesQuery, TraceQuery
    from mastra_admin.observability.clickhouse import ClickHouseObservability

    backend = ClickHouseObservability(_settings(chdb, "queries"))  # type: ignore[arg-type]
    await backend.init()
    traces = spans // 10
    span_ms = max(1, 30 * 86_400_000 // max(traces, 1))
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    await backend.transport.execute(
        f"""INSERT INTO queries.mastra_admin_spans (trace_id, span_id, parent_span_id,
            project_id, deployment_id, name, span_type, kind, status, start_time, end_time,
            duration_ms, is_root, attributes, metadata, input, output, source, recorded_at)
        SELECT
            concat('t', toString(intDiv(number, 10))) AS trace_id,
            concat('s', toString(number)) AS span_id,
            if(number % 10 = 0, NULL, concat('s', toString(number - number % 10))),
            concat('proj_', toString(intDiv(number, 10) % 3)),
            concat('dep_', toString(intDiv(number, 10) % 5)),
            concat('span ', toString(number % 10)),
            ['agent_run', 'tool_call', 'model_generation'][number % 3 + 1],
            'internal',
            if(cityHash64(number) % 50 = 0, 'error', 'ok'),
            toDateTime64('{now:%Y-%m-%d %H:%M:%S}', 3, 'UTC')
                - toIntervalMillisecond(intDiv(number, 10) * {span_ms} + number % 10) AS st,
            st + toIntervalMillisecond(cityHash64(number) % 2000),
            toFloat64(cityHash64(number) % 2000),
            number % 10 = 0,
            '{{"model":"gpt-x"}}', '{{}}', '{{"q":"hello"}}', '', 'bench', now64(3)
        FROM numbers({spans})"""
    )
    load_s = time.perf_counter() - started
    for _ in range(120):  # steady state: let the merges the load started finish
        merging = await backend.transport.fetch(
            "SELECT count() AS n FROM system.merges WHERE database = 'queries'"
        )
        if not merging[0]["n"]:
            break
        await asyncio.sleep(1)
    rng = random.Random(11)
    lookups, pages, span_pages, dashboards = [], [], [], []
    for round_ in range(41):
        trace_id = f"t{rng.randrange(traces)}"
        started = time.perf_counter()
        tree = await backend.query.get_trace(trace_id)
        if round_:
            lookups.append(time.perf_counter() - started)
        assert tree is not None, trace_id
        assert len(tree.spans) == 10, trace_id
        started = time.perf_counter()
        page = await backend.query.list_traces(TraceQuery(project_id=f"proj_{round_ % 3}"))
        if round_:
            pages.append(time.perf_counter() - started)
        assert len(page.items) == 50
        started = time.perf_counter()
        await backend.query.list_spans(SpanQuery(project_id=f"proj_{round_ % 3}"))
        if round_:
            span_pages.append(time.perf_counter() - started)
        end = now.replace(minute=0, second=0) + timedelta(hours=1)
        started = time.perf_counter()
        series = await backend.query.time_series(
            TimeSeriesQuery(
                project_id=f"proj_{round_ % 3}",
                start=end - timedelta(days=7),
                end=end,
                interval_s=3600,
            )
        )
        if round_:
            dashboards.append(time.perf_counter() - started)
        assert len(series) == 168
    await backend.drop()
    await backend.close()
    return {
        "load_s": load_s,
        "lookup_p95": _p95(lookups),
        "lookup_p50": statistics.median(lookups),
        "page_p95": _p95(pages),
        "page_p50": statistics.median(pages),
        "span_page_p95": _p95(span_pages),
        "dashboard_p95": _p95(dashboards),
    }


# --- the table ----------------------------------------------------------------------------


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files, builds = generate(folder / "full", SPANS)
        print(f"  generated {SPANS:,} spans in {time.perf_counter() - started:.1f} s", flush=True)
        idle = _idle_engine_memory(folder)
        print(f"  idle engine: {idle}", flush=True)
        small_files, small_builds = generate(folder / "quarter", SPANS // 4)
        small = _worker_rate(folder, small_files, small_builds)
        print(f"  worker, {SPANS // 4:,} spans: {small}", flush=True)
        worker = _worker_rate(folder, files, builds)
        print(f"  worker, {SPANS:,} spans: {worker}", flush=True)
        chdb = folder / "chdb"
        engine_rate = asyncio.run(_engine_rate(chdb, files, builds))
        lags, log_lags = asyncio.run(_lag(chdb, folder))
        pretty_builds, json_builds = _runtime_files(folder, RUNTIME_RECORDS)
        json_rate = asyncio.run(_runtime_rate(chdb, folder, json_builds, "rtjson"))
        pretty_rate = asyncio.run(_runtime_rate(chdb, folder, pretty_builds, "rtpretty"))
        print(f"  runtime logs: pretty {pretty_rate:,.0f}/s, JSON {json_rate:,.0f}/s", flush=True)
        queries = asyncio.run(_queries(chdb, QUERY_SPANS))
        print(f"  queries: {queries}", flush=True)
    load = os.getloadavg()[0]
    worker_rate = worker["events"] / worker["seconds"]
    lag_p50 = statistics.median(lags)
    lag_p95 = _p95(lags)
    n_spans = f"{QUERY_SPANS / 1e6:g}M spans"
    return [
        Figure(
            "ingest",
            f"worker, {SPANS:,} spans",
            worker_rate,
            "events/s",
            engine_rate,
            "engine INSERT…SELECT FROM file()",
            "≥ 0.5x engine",
            worker_rate >= 0.5 * engine_rate,
        ),
        Figure(
            "ingest",
            "stored exactly once",
            worker["stored"],
            "spans",
            float(SPANS),
            "written",
            "= written",
            int(worker["stored"]) == SPANS,
        ),
        Figure(
            "ingest",
            "machine load average (1 min) at the end",
            load,
            "",
            float(os.cpu_count() or 1),
            "CPUs",
        ),
        Figure("ingest", "lag p50 (default settings)", lag_p50, "s"),
        Figure(
            "ingest", "lag p95 (default settings)", lag_p95, "s", goal="≤ 2 s", met=lag_p95 <= 2.0
        ),
        Figure(
            "ingest",
            "worker peak RSS (engine included)",
            worker["rss_mb"],
            "MB",
            idle["VmRSS"],
            "idle embedded engine",
            "≤ 300 MB",
            worker["rss_mb"] <= 300,
        ),
        Figure(
            "ingest",
            "worker file-backed memory at start, before giving back start-up pages",
            worker["start_file_mb"],
            "MB",
            idle["RssFile"],
            "idle embedded engine",
        ),
        Figure(
            "ingest",
            "worker peak file-backed memory while ingesting (RssFile: engine code)",
            worker["file_mb"],
            "MB",
            idle["released_RssFile"],
            "idle engine after giving them back",
        ),
        Figure(
            "ingest",
            "worker peak private memory while ingesting (RssAnon)",
            worker["anon_mb"],
            "MB",
            worker["start_anon_mb"],
            "after opening and migrating",
        ),
        Figure(
            "ingest",
            f"worker peak private memory, {SPANS // 4:,} spans (build files 1/4 the size)",
            small["anon_mb"],
            "MB",
            worker["anon_mb"],
            f"at {SPANS:,} spans",
            "not growing with size",
            worker["anon_mb"] <= small["anon_mb"] * 1.15,
        ),
        Figure(
            "ingest",
            f"runtime logs, pino-pretty text, {RUNTIME_RECORDS:,} records",
            pretty_rate,
            "records/s",
            json_rate,
            "the same records as JSON lines",
            "≥ 0.5x JSON lines",
            pretty_rate >= 0.5 * json_rate,
        ),
        Figure(
            "ingest",
            "log: collector file written → listed by the query API, p95",
            _p95(log_lags),
            "s",
            goal="≤ 1 s",
            met=_p95(log_lags) <= 1.0,
        ),
        Figure("ingest", f"trace by id p50, {n_spans}", queries["lookup_p50"] * 1000, "ms"),
        Figure(
            "ingest",
            f"trace by id p95, {n_spans}",
            queries["lookup_p95"] * 1000,
            "ms",
            goal="≤ 50 ms",
            met=queries["lookup_p95"] <= 0.05,
        ),
        Figure("ingest", f"50-trace page p50, {n_spans}", queries["page_p50"] * 1000, "ms"),
        Figure(
            "ingest",
            f"50-trace page p95, {n_spans}",
            queries["page_p95"] * 1000,
            "ms",
            goal="≤ 50 ms",
            met=queries["page_p95"] <= 0.05,
        ),
        Figure("ingest", f"50-span page p95, {n_spans}", queries["span_page_p95"] * 1000, "ms"),
        Figure(
            "ingest",
            f"hourly dashboard (7 days) p95, {n_spans}",
            queries["dashboard_p95"] * 1000,
            "ms",
            goal="≤ 200 ms",
            met=queries["dashboard_p95"] <= 0.2,
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        asyncio.run(_worker_main(*sys.argv[2:5]))
    else:
        for figure in run():
            print(figure)
