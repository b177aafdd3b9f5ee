"""Build history and the build queue (``admin_builds``).

The queue is the builds in status ``queued`` in ``(queued_at, id)`` order. Dequeue is
one call of the schema's ``admin_dequeue_build`` function (see migration 0001): one
round trip, serialised per schema, ``FOR UPDATE SKIP LOCKED`` on the candidate row.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import Build, BuildStatus, utcnow
from mastra_admin.core.storage import BuildStore, BuildUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgBuildStore"]

BUILDS = Table(
    "admin_builds",
    Build,
    "id deployment_id trigger triggered_by ref commit_sha commit_message commit_author status"
    " artifact_build_id log_path error_message worker_id lease_expires_at queued_at started_at"
    " completed_at created_at",
)

_ACTIVE = [BuildStatus.BUILDING.value, BuildStatus.DEPLOYING.value]


def _statuses(statuses: Collection[BuildStatus]) -> list[str]:
    return [BuildStatus(s).value for s in statuses]


class PgBuildStore(BuildStore):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._transitions: dict[frozenset[str], str] = {}

    async def create(self, build: Build) -> Build:
        return BUILDS.decode(await self._db.fetch_required(BUILDS.insert_sql, BUILDS.params(build)))

    async def get(self, build_id: str) -> Build | None:
        if not is_uuid(build_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_builds WHERE id = %s", (build_id,)
        )
        return BUILDS.decode(row) if row else None

    async def update(self, build_id: str, patch: BuildUpdate) -> Build:
        changes = BUILDS.patch_params(patch)
        row = None
        if is_uuid(build_id):
            row = await self._db.fetch_one(BUILDS.update_sql(changes), {**changes, "id": build_id})
        if row is None:
            raise NotFound("build not found", details={"build_id": build_id})
        return BUILDS.decode(row)

    def _transition_sql(self, columns: frozenset[str]) -> str:
        cached = self._transitions.get(columns)
        if cached is None:
            sets = ", ".join(f"{c} = %({c})s" for c in sorted(columns)) or "id = b.id"
            # The CTE reads the row first so that "not in from_statuses" (None) and
            # "no such build" (NotFound) can be told apart in one round trip.
            cached = (
                "WITH existing AS (SELECT id FROM {schema}.admin_builds WHERE id = %(id)s),"
                " changed AS (UPDATE {schema}.admin_builds b SET " + sets + " WHERE b.id = %(id)s"
                " AND b.status = ANY(%(from_statuses)s) RETURNING b.*)"
                " SELECT (SELECT count(*) FROM existing) AS found, changed.*"
                " FROM (SELECT 1) one LEFT JOIN changed ON true"
            )
            self._transitions[columns] = cached
        return cached

    async def transition(
        self, build_id: str, from_statuses: Collection[BuildStatus], patch: BuildUpdate
    ) -> Build | None:
        changes = BUILDS.patch_params(patch)
        row = None
        if is_uuid(build_id):
            row = await self._db.fetch_one(
                self._transition_sql(frozenset(changes)),
                {**changes, "id": build_id, "from_statuses": _statuses(from_statuses)},
            )
        if row is None or not row.pop("found"):
            raise NotFound("build not found", details={"build_id": build_id})
        if row.get("id") is None:
            return None
        return BUILDS.decode(row)

    async def list_for_deployment(
        self, deployment_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[Build]:
        if not is_uuid(deployment_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_builds WHERE deployment_id = %s"
            " ORDER BY queued_at DESC, id DESC LIMIT %s OFFSET %s",
            (deployment_id, limit, offset),
        )
        return BUILDS.decode_all(rows)

    async def count_for_deployment(self, deployment_id: str) -> int:
        if not is_uuid(deployment_id):
            return 0
        return int(
            await self._db.fetch_value(
                "SELECT count(*) FROM {schema}.admin_builds WHERE deployment_id = %s",
                (deployment_id,),
            )
        )

    async def list_by_status(self, statuses: Collection[BuildStatus]) -> list[Build]:
        wanted = _statuses(statuses)
        if not wanted:
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_builds WHERE status = ANY(%s) ORDER BY queued_at, id",
            (wanted,),
        )
        return BUILDS.decode_all(rows)

    async def dequeue(
        self, worker_id: str, lease_until: datetime, *, max_active: int | None = None
    ) -> Build | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_dequeue_build(%s, %s, %s, %s)",
            (worker_id, lease_until, utcnow(), max_active),
        )
        return BUILDS.decode(row) if row else None

    async def renew_lease(self, build_id: str, worker_id: str, lease_until: datetime) -> bool:
        if not is_uuid(build_id):
            return False
        renewed = await self._db.execute(
            "UPDATE {schema}.admin_builds SET lease_expires_at = %s"
            " WHERE id = %s AND worker_id = %s AND status = ANY(%s)",
            (lease_until, build_id, worker_id, _ACTIVE),
        )
        return renewed > 0

    async def queue_position(self, build_id: str) -> int | None:
        if not is_uuid(build_id):
            return None
        position = await self._db.fetch_value(
            "SELECT (SELECT count(*) FROM {schema}.admin_builds q"
            "         WHERE q.status = 'queued' AND (q.queued_at, q.id) < (b.queued_at, b.id)) + 1"
            " FROM {schema}.admin_builds b WHERE b.id = %s AND b.status = 'queued'",
            (build_id,),
        )
        return None if position is None else int(position)

    async def queue_length(self) -> int:
        return int(
            await self._db.fetch_value(
                "SELECT count(*) FROM {schema}.admin_builds WHERE status = 'queued'"
            )
        )

    async def cancel_queued(
        self, deployment_id: str, *, except_build_id: str | None = None, at: datetime
    ) -> list[str]:
        if not is_uuid(deployment_id):
            return []
        keep = except_build_id if except_build_id and is_uuid(except_build_id) else None
        rows = await self._db.fetch_all(
            "WITH cancelled AS ("
            " UPDATE {schema}.admin_builds SET status = 'cancelled', completed_at = %s"
            " WHERE deployment_id = %s AND status = 'queued' AND id IS DISTINCT FROM %s"
            " RETURNING id, queued_at)"
            " SELECT id FROM cancelled ORDER BY queued_at, id",
            (at, deployment_id, keep),
        )
        return [row["id"] for row in rows]

    async def count_by_status(self) -> dict[BuildStatus, int]:
        rows = await self._db.fetch_all(
            "SELECT status, count(*) AS n FROM {schema}.admin_builds GROUP BY status"
        )
        counts: dict[BuildStatus, int] = {}
        for row in rows:
            try:
                counts[BuildStatus(row["status"])] = int(row["n"])
            except ValueError:
                continue
        return counts
