"""Custom domains of deployments (``admin_domains``). The unique index on
``lower(hostname)`` makes a host name one deployment's in the whole installation,
whatever the case it was written in, also between racing inserts; the foreign key
to the deployment removes its domains with it."""

from __future__ import annotations

from collections.abc import Collection

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import Domain, DomainStatus
from mastra_admin.core.storage import DomainStore, DomainUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgDomainStore"]

DOMAINS = Table(
    "admin_domains",
    Domain,
    "id team_id project_id deployment_id hostname verification_token status verified_at"
    " last_checked_at last_error created_by created_at updated_at",
)

_SELECT = "SELECT * FROM {schema}.admin_domains"


class PgDomainStore(DomainStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, domain: Domain) -> Domain:
        row = await self._db.fetch_required(DOMAINS.insert_sql, DOMAINS.params(domain))
        return DOMAINS.decode(row)

    async def get(self, domain_id: str) -> Domain | None:
        if not is_uuid(domain_id):
            return None
        row = await self._db.fetch_one(f"{_SELECT} WHERE id = %s", (domain_id,))
        return DOMAINS.decode(row) if row else None

    async def get_by_hostname(self, hostname: str) -> Domain | None:
        row = await self._db.fetch_one(f"{_SELECT} WHERE lower(hostname) = lower(%s)", (hostname,))
        return DOMAINS.decode(row) if row else None

    async def update(self, domain_id: str, patch: DomainUpdate) -> Domain:
        changes = DOMAINS.patch_params(patch)
        row = None
        if is_uuid(domain_id):
            row = await self._db.fetch_one(
                DOMAINS.update_sql(changes), {**changes, "id": domain_id}
            )
        if row is None:
            raise NotFound("domain not found", details={"domain_id": domain_id})
        return DOMAINS.decode(row)

    async def delete(self, domain_id: str) -> bool:
        if not is_uuid(domain_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_domains WHERE id = %s", (domain_id,)
        )
        return deleted > 0

    async def list_for_deployment(self, deployment_id: str) -> list[Domain]:
        if not is_uuid(deployment_id):
            return []
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE deployment_id = %s ORDER BY hostname, id", (deployment_id,)
        )
        return DOMAINS.decode_all(rows)

    async def list_for_project(self, project_id: str) -> list[Domain]:
        if not is_uuid(project_id):
            return []
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE project_id = %s ORDER BY hostname, id", (project_id,)
        )
        return DOMAINS.decode_all(rows)

    async def list_verified(self) -> list[Domain]:
        return await self.list_by_status([DomainStatus.VERIFIED])

    async def list_by_status(self, statuses: Collection[DomainStatus]) -> list[Domain]:
        wanted = [DomainStatus(s).value for s in statuses]
        if not wanted:
            return []
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE status = ANY(%s) ORDER BY hostname, id", (wanted,)
        )
        return DOMAINS.decode_all(rows)
