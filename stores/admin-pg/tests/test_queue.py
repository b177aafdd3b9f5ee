"""The build queue under real concurrency: separate connections (as separate worker
processes would have) draining one queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from mastra_admin.core.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentType,
    Project,
    Team,
    utcnow,
)
from mastra_admin.core.storage import BuildUpdate
from mastra_admin.stores.pg import PgAdminStorage, PgSettings

WORKERS = 8


async def _seed(storage: PgAdminStorage, deployments: int, builds_each: int) -> list[str]:
    team = await storage.teams.create(Team(name="q", slug="q"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="q", slug="q", source_type="local")
    )
    ids: list[str] = []
    start = utcnow() - timedelta(hours=1)
    made = [
        await storage.deployments.create(
            Deployment(
                project_id=project.id, type=DeploymentType.PREVIEW, branch=f"b{i}", slug=f"b{i}"
            )
        )
        for i in range(deployments)
    ]
    n = 0
    for _ in range(builds_each):
        for deployment in made:
            n += 1
            build = await storage.builds.create(
                Build(
                    deployment_id=deployment.id,
                    triggered_by="t",
                    queued_at=start + timedelta(milliseconds=n),
                )
            )
            ids.append(build.id)
    return ids


async def test_eight_connections_drain_the_queue_without_duplicates(
    pg_database_url: str,
) -> None:
    owner = PgAdminStorage(pg_database_url)
    await owner.init()
    workers = [
        PgAdminStorage(settings=PgSettings(url=pg_database_url, pool_min_size=1, pool_max_size=1))
        for _ in range(WORKERS)
    ]
    try:
        await asyncio.gather(*(w.init() for w in workers))
        queued = await _seed(owner, deployments=40, builds_each=3)
        lease = utcnow() + timedelta(minutes=5)
        order: list[str] = []

        async def work(index: int, storage: PgAdminStorage) -> list[str]:
            taken: list[str] = []
            while True:
                build = await storage.builds.dequeue(f"worker-{index}", lease)
                if build is None:
                    if await storage.builds.queue_length() == 0:
                        return taken
                    await asyncio.sleep(0.005)  # the rest belong to busy deployments
                    continue
                assert build.status is BuildStatus.BUILDING
                assert build.worker_id == f"worker-{index}"
                taken.append(build.id)
                order.append(build.id)
                done = await storage.builds.transition(
                    build.id,
                    [BuildStatus.BUILDING],
                    BuildUpdate(status=BuildStatus.SUCCEEDED, completed_at=utcnow()),
                )
                assert done is not None

        results = await asyncio.gather(*(work(i, w) for i, w in enumerate(workers)))
        handed = [b for batch in results for b in batch]
        assert len(handed) == len(set(handed)) == len(queued)
        assert set(handed) == set(queued)
        assert sum(1 for batch in results if batch) > 1  # the work was really shared
        counts = await owner.builds.count_by_status()
        assert counts == {BuildStatus.SUCCEEDED: len(queued)}
        # every deployment's builds ran in their FIFO order
        position = {build_id: i for i, build_id in enumerate(order)}
        for start in range(40):
            mine = queued[start::40]
            assert [position[b] for b in mine] == sorted(position[b] for b in mine)
    finally:
        await asyncio.gather(*(w.close() for w in workers))
        await owner.close()


async def test_one_active_build_per_deployment_across_connections(pg_database_url: str) -> None:
    owner = PgAdminStorage(pg_database_url)
    await owner.init()
    workers = [
        PgAdminStorage(settings=PgSettings(url=pg_database_url, pool_min_size=1, pool_max_size=1))
        for _ in range(WORKERS)
    ]
    try:
        await asyncio.gather(*(w.init() for w in workers))
        await _seed(owner, deployments=3, builds_each=4)
        lease = utcnow() + timedelta(minutes=5)
        # SKIP LOCKED may hand a worker nothing while others hold the rows for an
        # instant, so workers poll in rounds; what must hold is the end state: one
        # active build per deployment, never two.
        got: list[Build] = []
        for _ in range(5):
            taken = await asyncio.gather(*(w.builds.dequeue("w", lease) for w in workers))
            got += [b for b in taken if b is not None]
        assert len(got) == 3
        assert len({b.deployment_id for b in got}) == 3
        capped = await asyncio.gather(
            *(w.builds.dequeue("w", lease, max_active=3) for w in workers)
        )
        assert capped == [None] * WORKERS
    finally:
        await asyncio.gather(*(w.close() for w in workers))
        await owner.close()
