"""PostgreSQL storage: the build queue drained by 4 worker processes, point reads and
team listings, on the embedded PostgreSQL in its default (durable) configuration.

The drain hands out 10,000 queued builds of 10,000 deployments (dequeue only: how
fast the queue itself goes). A second, smaller run also finishes each build
(``transition`` to succeeded, one durable commit each) with 10 builds per
deployment, so that "one active build per deployment" is exercised under load.

References, measured in the same run on the same server:
- dequeues/s: ``SELECT 1`` round trips/s of the same 4 processes (the ceiling);
- reads: the same SQL through a bare psycopg connection (the adapter's overhead).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

from benchmarks._report import Figure

WORKERS = 4
BUILDS = 10_000
FINISHED_BUILDS = 2_000
FINISHED_DEPLOYMENTS = 200
PROJECTS = 1_000
POINT_READS = 3_000
LISTS = 60


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- worker processes ----------------------------------------------------------------


def _drain(
    url: str, index: int, start_at: float, finish: bool
) -> tuple[list[str], float, float, float]:
    """One worker process: dequeue (and ``finish``) builds until the queue is empty.

    Returns the builds taken, the start and end of the run, and the CPU seconds the
    worker and its PostgreSQL backend used meanwhile."""
    import psutil

    from mastra_admin.core.models import BuildStatus, utcnow
    from mastra_admin.core.storage import BuildUpdate
    from mastra_admin.stores.pg import PgAdminStorage, PgSettings

    def cpu(backend: psutil.Process) -> float:
        mine, theirs = time.process_time(), backend.cpu_times()
        return mine + theirs.user + theirs.system

    async def main() -> tuple[list[str], float, float, float]:
        storage = PgAdminStorage(settings=PgSettings(url=url, pool_min_size=1, pool_max_size=1))
        await storage.connect()
        backend = psutil.Process(int(await storage.database.fetch_value("SELECT pg_backend_pid()")))
        lease = utcnow() + timedelta(minutes=10)
        taken: list[str] = []
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        began, cpu_began = time.perf_counter(), cpu(backend)
        while True:
            build = await storage.builds.dequeue(f"bench-{index}", lease)
            if build is None:
                if await storage.builds.queue_length() == 0:
                    break
                continue
            taken.append(build.id)
            if finish:
                await storage.builds.transition(
                    build.id, [BuildStatus.BUILDING], BuildUpdate(status=BuildStatus.SUCCEEDED)
                )
        ended, cpu_used = time.perf_counter(), cpu(backend) - cpu_began
        await storage.close()
        return taken, began, ended, cpu_used

    return asyncio.run(main())


def _round_trips(url: str, start_at: float, count: int) -> tuple[float, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while time.time() < start_at:
            time.sleep(0.001)
        began = time.perf_counter()
        for _ in range(count):
            conn.execute("SELECT 1").fetchone()
        return began, time.perf_counter()


# --- set-up ----------------------------------------------------------------------------


async def _seed(url: str, builds: int, deployments_count: int) -> tuple[str, list[str]]:
    """1,000 projects in one team; ``builds`` queued builds over ``deployments_count``
    deployments (in round-robin order of queueing)."""
    import psycopg

    from mastra_admin.core.models import new_id, utcnow
    from mastra_admin.stores.pg import PgAdminStorage

    storage = PgAdminStorage(url)
    await storage.init()
    await storage.close()
    team_id = new_id()
    now = utcnow()
    projects = [new_id() for _ in range(PROJECTS)]
    deployments = [new_id() for _ in range(deployments_count)]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        async with conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO mastra_admin.admin_teams (id, name, slug)"
                " VALUES (%s, 'bench', 'bench')",
                (team_id,),
            )
            await cur.executemany(
                "INSERT INTO mastra_admin.admin_projects (id, team_id, name, slug, source_type,"
                " source_config) VALUES (%s, %s, %s, %s, 'local', '{\"source_id\": \"x\"}')",
                [(p, team_id, f"project {i:05d}", f"p{i}") for i, p in enumerate(projects)],
            )
            await cur.executemany(
                "INSERT INTO mastra_admin.admin_deployments (id, project_id, type, branch, slug)"
                " VALUES (%s, %s, 'preview', %s, %s)",
                [(d, projects[i % PROJECTS], f"b{i}", f"b{i}") for i, d in enumerate(deployments)],
            )
            await cur.executemany(
                "INSERT INTO mastra_admin.admin_builds (id, deployment_id, trigger, triggered_by,"
                " queued_at) VALUES (%s, %s, 'manual', 'bench', %s)",
                [
                    (new_id(), deployments[i % deployments_count], now + timedelta(microseconds=i))
                    for i in range(builds)
                ],
            )
        await conn.execute("ANALYZE")
    return team_id, projects


async def _reads(url: str, team_id: str, projects: list[str]) -> dict[str, list[float]]:
    import random

    import psycopg

    from mastra_admin.stores.pg import PgAdminStorage

    rng = random.Random(7)
    samples: dict[str, list[float]] = {"get": [], "raw_get": [], "list": [], "raw_list": []}
    storage = PgAdminStorage(url)
    await storage.connect()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as raw:
        for phase in ("warm", "measure"):
            for _ in range(POINT_READS if phase == "measure" else 300):
                pid = rng.choice(projects)
                t0 = time.perf_counter()
                project = await storage.projects.get(pid)
                t1 = time.perf_counter()
                cur = await raw.execute(
                    "SELECT * FROM mastra_admin.admin_projects WHERE id = %s", (pid,)
                )
                await cur.fetchone()
                t2 = time.perf_counter()
                assert project is not None
                if phase == "measure":
                    samples["get"].append(t1 - t0)
                    samples["raw_get"].append(t2 - t1)
            for _ in range(LISTS if phase == "measure" else 5):
                t0 = time.perf_counter()
                listed = await storage.projects.list_for_team(team_id, limit=1000)
                t1 = time.perf_counter()
                cur = await raw.execute(
                    "SELECT * FROM mastra_admin.admin_projects WHERE team_id = %s"
                    " ORDER BY name, id LIMIT 1000",
                    (team_id,),
                )
                await cur.fetchall()
                t2 = time.perf_counter()
                assert len(listed) == PROJECTS
                if phase == "measure":
                    samples["list"].append(t1 - t0)
                    samples["raw_list"].append(t2 - t1)
    await storage.close()
    return samples


# --- the benchmark ---------------------------------------------------------------------


def _workers(url: str, finish: bool) -> tuple[list[str], float, float]:
    """Run the workers; return the builds taken, the wall time, and the CPU seconds
    the workers and their backends used."""
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        list(pool.map(time.sleep, [0.01] * WORKERS))  # imports done before the clock
        start_at = time.time() + 2.0
        futures = [pool.submit(_drain, url, i, start_at, finish) for i in range(WORKERS)]
        results = [f.result() for f in futures]
    taken = [bid for ids, _, _, _ in results for bid in ids]
    seconds = max(r[2] for r in results) - min(r[1] for r in results)
    return taken, seconds, sum(r[3] for r in results)


def _ceiling(url: str) -> float:
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        list(pool.map(time.sleep, [0.01] * WORKERS))
        start_at = time.time() + 2.0
        trips = list(
            pool.map(_round_trips, [url] * WORKERS, [start_at] * WORKERS, [5_000] * WORKERS)
        )
    return WORKERS * 5_000 / (max(e for _, e in trips) - min(b for b, _ in trips))


def run() -> list[Figure]:
    from mastra_admin.stores.pg import EmbeddedPostgres

    root = Path(tempfile.mkdtemp(prefix="mastra-admin-bench-pg-"))
    server = EmbeddedPostgres(root / "postgres", database="bench")
    finisher = EmbeddedPostgres(root / "postgres-finish", database="bench")
    try:
        url = server.start()
        team_id, projects = asyncio.run(_seed(url, BUILDS, BUILDS))
        samples = asyncio.run(_reads(url, team_id, projects))
        ceiling = _ceiling(url)
        taken, seconds, cpu_seconds = _workers(url, finish=False)
        server.stop()
        finish_url = finisher.start()
        asyncio.run(_seed(finish_url, FINISHED_BUILDS, FINISHED_DEPLOYMENTS))
        finished, finish_seconds, _ = _workers(finish_url, finish=True)
    finally:
        server.stop()
        finisher.stop()
        shutil.rmtree(root, ignore_errors=True)
    dequeues = len(taken) / seconds
    duplicates = len(taken) - len(set(taken)) + len(finished) - len(set(finished))
    complete = len(set(taken)) == BUILDS and len(set(finished)) == FINISHED_BUILDS
    cycles = len(finished) / finish_seconds
    cpu_ms = cpu_seconds / max(len(taken), 1) * 1000
    cores = os.cpu_count() or 1

    ms = 1000.0
    get_p50, get_p99 = _pct(samples["get"], 0.5) * ms, _pct(samples["get"], 0.99) * ms
    raw_p50, raw_p99 = _pct(samples["raw_get"], 0.5) * ms, _pct(samples["raw_get"], 0.99) * ms
    list_p50, list_p99 = _pct(samples["list"], 0.5) * ms, _pct(samples["list"], 0.99) * ms
    rl_p50, rl_p99 = _pct(samples["raw_list"], 0.5) * ms, _pct(samples["raw_list"], 0.99) * ms
    return [
        Figure(
            figure=f"{WORKERS} worker processes drain {BUILDS:,} queued builds",
            value=dequeues,
            unit="dequeues/s",
            reference=ceiling,
            reference_label="SELECT 1 round trips/s, same 4 processes",
            goal=">= 1,000 dequeues/s",
            met=dequeues >= 1_000 and complete,
            bench="pg",
        ),
        Figure(
            figure="CPU per dequeue (worker process + its PostgreSQL backend)",
            value=cpu_ms,
            unit="ms",
            bench="pg",
        ),
        Figure(
            figure=f"dequeues/s the {cores} cores allow at that CPU cost (load-independent)",
            value=cores / (cpu_ms / 1000),
            unit="dequeues/s",
            goal=">= 1,000 dequeues/s",
            met=cores / (cpu_ms / 1000) >= 1_000,
            bench="pg",
        ),
        Figure(
            figure=f"{WORKERS} workers dequeue and finish {FINISHED_BUILDS:,} builds "
            f"({FINISHED_BUILDS // FINISHED_DEPLOYMENTS} per deployment)",
            value=cycles,
            unit="builds/s",
            reference=ceiling,
            reference_label="SELECT 1 round trips/s, same 4 processes",
            bench="pg",
        ),
        Figure(
            figure="builds handed out twice (both runs)",
            value=float(duplicates),
            unit="builds",
            goal="0",
            met=duplicates == 0 and complete,
            bench="pg",
        ),
        Figure(
            figure="point read (projects.get) p50",
            value=get_p50,
            unit="ms",
            reference=raw_p50,
            reference_label="bare psycopg",
            bench="pg",
        ),
        Figure(
            figure="point read (projects.get) p99",
            value=get_p99,
            unit="ms",
            reference=raw_p99,
            reference_label="bare psycopg",
            goal="<= 2 ms",
            met=get_p99 <= 2.0,
            bench="pg",
        ),
        Figure(
            figure=f"list {PROJECTS:,} projects of a team p50",
            value=list_p50,
            unit="ms",
            reference=rl_p50,
            reference_label="bare psycopg",
            bench="pg",
        ),
        Figure(
            figure=f"list {PROJECTS:,} projects of a team p99",
            value=list_p99,
            unit="ms",
            reference=rl_p99,
            reference_label="bare psycopg",
            bench="pg",
        ),
    ]


if __name__ == "__main__":
    for fig in run():
        print(f"{fig.figure}: {fig.value:.4g} {fig.unit} (ref {fig.reference})")
