"""The embedded PostgreSQL: started in the data dir, reused, recovered after a crash,
stopped on close; and the pool's recovery when the server comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.models import Team
from mastra_admin.core.plugins import ProviderContext
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.stores.pg import EmbeddedPostgres, PgAdminStorage, PgSettings
from mastra_admin.stores.pg.plugin import create_storage


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


async def test_embedded_default_starts_in_the_data_dir_reuses_data_and_stops(
    pg_data_root: Path,
) -> None:
    context = ProviderContext(settings=MastraAdminSettings(), data_dir=pg_data_root)
    storage = create_storage(PgSettings(), context)
    await storage.init()
    assert storage.embedded is not None
    assert storage.embedded.data_dir == (pg_data_root / "postgres").resolve()
    assert (pg_data_root / "postgres" / "PG_VERSION").exists()
    assert "@/" in storage.embedded.url()  # no host: a Unix socket
    assert f"host={storage.embedded.socket_dir}" in storage.embedded.url()
    await storage.teams.create(Team(name="kept", slug="kept"))
    pid = storage.embedded.postmaster_pid()
    assert pid is not None
    await storage.close()
    assert _gone(pid)

    again = create_storage(PgSettings(), context)
    await again.init()
    try:
        team = await again.teams.get_by_slug("kept")
        assert team is not None
        assert team.name == "kept"
    finally:
        await again.close()


async def test_a_stale_pid_file_after_kill_9_is_survived(pg_data_root: Path) -> None:
    settings = PgSettings(pool_timeout_s=2)
    storage = PgAdminStorage(settings=settings, data_dir=pg_data_root / "pg")
    await storage.init()
    await storage.teams.create(Team(name="before crash", slug="crash"))
    assert storage.embedded is not None
    pid = storage.embedded.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    assert (pg_data_root / "pg" / "postmaster.pid").exists()
    await storage.close()

    again = PgAdminStorage(settings=settings, data_dir=pg_data_root / "pg")
    await again.init()
    try:
        assert again.embedded is not None
        assert again.embedded.owned
        assert await again.teams.get_by_slug("crash") is not None
    finally:
        await again.close()


def test_a_pid_file_naming_some_other_live_process_is_stale(pg_data_root: Path) -> None:
    server = EmbeddedPostgres(pg_data_root / "pg")
    server.start()
    server.stop()
    squatter = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = pg_data_root / "pg" / "postmaster.pid"
        pid_file.write_text(f"{squatter.pid}\n{pg_data_root / 'pg'}\n0\n5432\n\n\n\nready\n")
        url = server.start()
        try:
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            assert server.postmaster_pid() not in (None, squatter.pid)
        finally:
            server.stop()
    finally:
        squatter.kill()
        squatter.wait()


def test_a_second_handle_attaches_and_leaves_the_server_to_its_owner(pg_data_root: Path) -> None:
    owner = EmbeddedPostgres(pg_data_root / "pg")
    url = owner.start()
    guest = EmbeddedPostgres(pg_data_root / "pg")
    try:
        assert owner.start() == url  # starting again keeps it ours
        assert guest.start() == url
        assert owner.owned
        assert not guest.owned
        guest.stop()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pid = owner.postmaster_pid()
        owner.stop()
    assert pid is not None
    assert _gone(pid)


def test_a_folder_with_other_files_is_not_taken_over(pg_data_root: Path) -> None:
    folder = pg_data_root / "pg"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput):
        EmbeddedPostgres(folder).start()


async def test_the_pool_recovers_when_the_server_is_restarted(pg_data_root: Path) -> None:
    settings = PgSettings(pool_min_size=2, pool_max_size=4, pool_timeout_s=2)
    storage = PgAdminStorage(settings=settings, data_dir=pg_data_root / "pg")
    await storage.init()
    try:
        embedded = storage.embedded
        assert embedded is not None
        await storage.teams.create(Team(name="a", slug="a"))
        assert await storage.teams.count() == 1

        await asyncio.to_thread(embedded.stop)
        with pytest.raises(Unavailable):
            await storage.teams.count()
        with pytest.raises(Unavailable):
            await storage.ping()

        await asyncio.to_thread(embedded.start)
        back = time.monotonic()
        while True:
            try:
                assert await storage.teams.count() == 1
                break
            except Unavailable:
                assert time.monotonic() - back < 15, "the pool did not recover"
                await asyncio.sleep(0.2)
        await storage.teams.create(Team(name="b", slug="b"))
        counts = await asyncio.gather(*(storage.teams.count() for _ in range(8)))
        assert counts == [2] * 8
    finally:
        await storage.close()


async def test_unreachable_server_is_unavailable() -> None:
    storage = PgAdminStorage(
        settings=PgSettings(
            url="postgresql://postgres@127.0.0.1:9/none", pool_timeout_s=1, connect_timeout_s=1
        )
    )
    with pytest.raises(Unavailable):
        await storage.teams.count()  # before init
    with pytest.raises(Unavailable):
        await storage.init()
    await storage.close()


def test_a_data_dir_too_deep_for_a_socket_path_gets_a_short_socket_dir(
    pg_data_root: Path,
) -> None:
    deep = pg_data_root / ("d" * 60) / ("e" * 60) / "pg"
    server = EmbeddedPostgres(deep)
    url = server.start()
    try:
        assert server.socket_dir != deep
        assert len(str(server.socket_dir)) < 100
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not server.socket_dir.exists()


def test_servers_of_dead_test_sessions_are_reaped() -> None:
    import tempfile

    from mastra_admin.stores.pg import testing

    gone = subprocess.Popen(["true"])
    gone.wait()
    folder = Path(tempfile.mkdtemp(prefix=testing._PREFIX))
    (folder / "owner.pid").write_text(str(gone.pid))
    server = EmbeddedPostgres(folder / "pgdata")
    server.start()
    pid = server.postmaster_pid()
    assert pid is not None
    testing._reap_orphaned_servers()
    assert _gone(pid)
    assert not folder.exists()
