"""An existing pool given in code: used as it is, and left open on close."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.models import Team
from mastra_admin.stores.pg import PgAdminStorage


@pytest.mark.parametrize("autocommit", [True, False])
async def test_an_existing_pool_is_used_and_left_open(
    pg_database_url: str, autocommit: bool
) -> None:
    kwargs: dict[str, Any] = {"autocommit": True} if autocommit else {}
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        pg_database_url, min_size=1, max_size=2, kwargs=kwargs, open=False
    )
    storage = PgAdminStorage(pool=pool, schema="given_pool")
    await storage.init()
    await storage.teams.create(Team(name="t", slug="t"))
    await storage.close()
    assert not pool.closed
    with pytest.raises(Unavailable):
        await storage.teams.count()  # closed storage, open pool: not used any more
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM given_pool.admin_teams")
        assert await cur.fetchone() == (1,)
    again = PgAdminStorage(pool=pool, schema="given_pool")
    await again.init()
    assert await again.teams.count() == 1
    await again.close()
    await pool.close()


def test_url_and_pool_together_are_refused() -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool("", open=False)
    with pytest.raises(InvalidInput):
        PgAdminStorage("postgresql://localhost/x", pool=pool)
