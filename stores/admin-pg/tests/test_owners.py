"""The last-owner guard holds under concurrency: owner changes of one team take the
team's row lock, so a check never reads a state another transaction is changing."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from mastra_admin.core.errors import Conflict
from mastra_admin.core.models import Team, TeamMember, TeamRole, User
from mastra_admin.stores.pg import PgAdminStorage


async def test_a_demotion_waits_for_another_owner_change_and_then_refuses(
    fresh_storage: PgAdminStorage,
) -> None:
    storage = fresh_storage
    team = await storage.teams.create(Team(name="Search", slug="search"))
    a = await storage.users.create(User(email="a@example.com"))
    b = await storage.users.create(User(email="b@example.com"))
    for user in (a, b):
        await storage.teams.add_member(
            TeamMember(team_id=team.id, user_id=user.id, role=TeamRole.OWNER)
        )
    url = storage.settings.conninfo()
    with psycopg.connect(url) as other:  # another process demoting A, not committed yet
        other.execute(
            "SELECT id FROM mastra_admin.admin_teams WHERE id = %s FOR UPDATE", (team.id,)
        )
        other.execute(
            "UPDATE mastra_admin.admin_team_members SET role = 'admin' WHERE user_id = %s",
            (a.id,),
        )
        demote_b = asyncio.create_task(
            storage.teams.update_member_role(team.id, b.id, TeamRole.ADMIN, keep_owner=True)
        )
        await asyncio.sleep(0.5)
        assert not demote_b.done(), "the check ran while another owner change was open"
        other.commit()
    with pytest.raises(Conflict) as refused:
        await demote_b
    assert refused.value.details == {"field": "role", "user_id": b.id}
    owners = [
        m.user_id for m in await storage.teams.list_members(team.id) if m.role is TeamRole.OWNER
    ]
    assert owners == [b.id]
