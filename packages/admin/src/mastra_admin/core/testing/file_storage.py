"""``FileStorageConformance``: what every ``FileStorageProvider`` must do.

Subclass it, set ``__test__ = True`` and override the ``file_storage`` fixture with a
fresh, empty storage::

    class TestMyStorage(FileStorageConformance):
        __test__ = True

        @pytest.fixture
        async def file_storage(self, tmp_path):
            yield MyStorage(...)

``listing_resolution_s`` is how far apart two writes must be for the listing to
order them by time (file systems and object stores keep modification times with
different precision).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest

from mastra_admin.core.errors import InvalidInput, NotFound
from mastra_admin.core.file_storage import FileStorageProvider

__all__ = ["FileStorageConformance"]

ESCAPING_PATHS = [
    "../outside.txt",
    "a/../../outside.txt",
    "/etc/passwd",
    "a/\x00b.txt",
    "a/./b.txt",
    "",
]


class FileStorageConformance:
    """The contract of ``mastra_admin.core.file_storage.FileStorageProvider``."""

    __test__ = False

    listing_resolution_s: ClassVar[float] = 0.05

    @pytest.fixture
    async def file_storage(self) -> AsyncIterator[FileStorageProvider]:
        raise NotImplementedError("override the file_storage fixture")
        return  # pragma: no cover

    # --- write and read --------------------------------------------------------

    async def test_write_then_read_returns_the_bytes(
        self, file_storage: FileStorageProvider
    ) -> None:
        await file_storage.write("a/b/c.bin", b"\x00\x01payload")
        assert await file_storage.read("a/b/c.bin") == b"\x00\x01payload"

    async def test_text_is_written_as_utf8(self, file_storage: FileStorageProvider) -> None:
        await file_storage.write("notes.txt", "héllo ✨")
        assert await file_storage.read("notes.txt") == "héllo ✨".encode()

    async def test_write_replaces_the_whole_file(self, file_storage: FileStorageProvider) -> None:
        await file_storage.write("f.txt", b"a much longer first version")
        await file_storage.write("f.txt", b"short")
        assert await file_storage.read("f.txt") == b"short"

    async def test_an_empty_file_can_be_written(self, file_storage: FileStorageProvider) -> None:
        await file_storage.write("empty", b"")
        assert await file_storage.read("empty") == b""
        info = await file_storage.stat("empty")
        assert info is not None
        assert info.size == 0

    async def test_read_with_offset_and_length(self, file_storage: FileStorageProvider) -> None:
        await file_storage.write("r.txt", b"0123456789")
        assert await file_storage.read("r.txt", offset=3) == b"3456789"
        assert await file_storage.read("r.txt", offset=3, length=4) == b"3456"
        assert await file_storage.read("r.txt", offset=10) == b""
        assert await file_storage.read("r.txt", offset=50, length=5) == b""

    async def test_reading_a_missing_file_is_not_found(
        self, file_storage: FileStorageProvider
    ) -> None:
        with pytest.raises(NotFound):
            await file_storage.read("missing.txt")

    async def test_readers_never_see_a_partial_write(
        self, file_storage: FileStorageProvider
    ) -> None:
        versions = [bytes([65 + i]) * (256 * 1024 + i) for i in range(4)]
        await file_storage.write("big.bin", versions[0])
        seen: list[bytes] = []

        async def writer() -> None:
            for _ in range(3):
                for version in versions:
                    await file_storage.write("big.bin", version)

        async def reader() -> None:
            for _ in range(24):
                seen.append(await file_storage.read("big.bin"))

        await asyncio.gather(writer(), reader(), reader())
        assert seen
        assert all(data in versions for data in seen)

    async def test_concurrent_writes_of_different_files_all_land(
        self, file_storage: FileStorageProvider
    ) -> None:
        await asyncio.gather(
            *(file_storage.write(f"many/{i:03}.txt", f"file {i}") for i in range(40))
        )
        listed = await file_storage.list("many/")
        assert sorted(info.path for info in listed) == [f"many/{i:03}.txt" for i in range(40)]
        assert await file_storage.read("many/017.txt") == b"file 17"

    # --- append ----------------------------------------------------------------

    async def test_append_creates_then_grows_the_file(
        self, file_storage: FileStorageProvider
    ) -> None:
        await file_storage.append("logs/build.log", "one\n")
        await file_storage.append("logs/build.log", b"two\n")
        assert await file_storage.read("logs/build.log") == b"one\ntwo\n"

    async def test_append_after_write(self, file_storage: FileStorageProvider) -> None:
        await file_storage.write("w.log", "start\n")
        await file_storage.append("w.log", "more\n")
        assert await file_storage.read("w.log") == b"start\nmore\n"
        assert await file_storage.read("w.log", offset=6) == b"more\n"

    async def test_sequential_appends_keep_their_order(
        self, file_storage: FileStorageProvider
    ) -> None:
        for i in range(100):
            await file_storage.append("seq.log", f"{i}\n")
        lines = (await file_storage.read("seq.log")).decode().splitlines()
        assert lines == [str(i) for i in range(100)]

    # --- list, stat, exists ----------------------------------------------------

    async def test_list_is_oldest_first(self, file_storage: FileStorageProvider) -> None:
        for name in ("spans/p1/c.jsonl", "spans/p1/a.jsonl", "spans/p1/b.jsonl"):
            await file_storage.write(name, name)
            await asyncio.sleep(self.listing_resolution_s)
        listed = await file_storage.list("spans/")
        assert [info.path for info in listed] == [
            "spans/p1/c.jsonl",
            "spans/p1/a.jsonl",
            "spans/p1/b.jsonl",
        ]
        stamps = [info.last_modified for info in listed]
        assert stamps == sorted(stamps)

    async def test_list_is_ordered_by_time_then_path(
        self, file_storage: FileStorageProvider
    ) -> None:
        await asyncio.gather(*(file_storage.write(f"o/{n}", n) for n in "dcbaefg"))
        listed = await file_storage.list("o/")
        keys = [(info.last_modified, info.path) for info in listed]
        assert keys == sorted(keys)
        assert len(keys) == 7

    async def test_list_matches_the_prefix_as_text(self, file_storage: FileStorageProvider) -> None:
        for name in ("logs/p1/x.jsonl", "logs/p10/y.jsonl", "logs/p2/z.jsonl", "spans/p1/s"):
            await file_storage.write(name, b"-")
        assert sorted(i.path for i in await file_storage.list("logs/p1")) == [
            "logs/p1/x.jsonl",
            "logs/p10/y.jsonl",
        ]
        assert [i.path for i in await file_storage.list("logs/p1/")] == ["logs/p1/x.jsonl"]
        assert len(await file_storage.list("")) == 4
        assert await file_storage.list("nothing/here/") == []

    async def test_list_reports_size_and_paths_that_read_back(
        self, file_storage: FileStorageProvider
    ) -> None:
        await file_storage.write("s/one.txt", b"12345")
        (info,) = await file_storage.list("s/")
        assert info.path == "s/one.txt"
        assert info.size == 5
        assert info.last_modified.tzinfo is not None
        assert await file_storage.read(info.path) == b"12345"

    async def test_stat_and_exists(self, file_storage: FileStorageProvider) -> None:
        assert await file_storage.stat("x/y.txt") is None
        assert not await file_storage.exists("x/y.txt")
        await file_storage.write("x/y.txt", b"abc")
        info = await file_storage.stat("x/y.txt")
        assert info is not None
        assert (info.path, info.size) == ("x/y.txt", 3)
        assert await file_storage.exists("x/y.txt")
        assert await file_storage.stat("x") is None  # a folder is not a file

    # --- delete and move -------------------------------------------------------

    async def test_delete_reports_whether_there_was_a_file(
        self, file_storage: FileStorageProvider
    ) -> None:
        await file_storage.write("d.txt", b"x")
        assert await file_storage.delete("d.txt") is True
        assert await file_storage.delete("d.txt") is False
        assert not await file_storage.exists("d.txt")
        assert await file_storage.list("") == []

    async def test_move_renames_and_creates_folders(
        self, file_storage: FileStorageProvider
    ) -> None:
        await file_storage.write("in/batch.jsonl", b"{}\n")
        await file_storage.move("in/batch.jsonl", "processed/2026/11/batch.jsonl")
        assert not await file_storage.exists("in/batch.jsonl")
        assert await file_storage.read("processed/2026/11/batch.jsonl") == b"{}\n"

    async def test_move_replaces_an_existing_target(
        self, file_storage: FileStorageProvider
    ) -> None:
        await file_storage.write("new", b"new")
        await file_storage.write("old", b"old")
        await file_storage.move("new", "old")
        assert await file_storage.read("old") == b"new"
        assert not await file_storage.exists("new")

    async def test_moving_a_missing_file_is_not_found(
        self, file_storage: FileStorageProvider
    ) -> None:
        with pytest.raises(NotFound):
            await file_storage.move("missing", "elsewhere")

    # --- paths that leave the storage ------------------------------------------

    @pytest.mark.parametrize("bad", ESCAPING_PATHS)
    async def test_escaping_paths_are_refused(
        self, file_storage: FileStorageProvider, bad: str
    ) -> None:
        with pytest.raises(InvalidInput):
            await file_storage.write(bad, b"x")
        with pytest.raises(InvalidInput):
            await file_storage.append(bad, b"x")
        with pytest.raises(InvalidInput):
            await file_storage.read(bad)
        with pytest.raises(InvalidInput):
            await file_storage.stat(bad)
        with pytest.raises(InvalidInput):
            await file_storage.delete(bad)

    @pytest.mark.parametrize("bad", [p for p in ESCAPING_PATHS if p])
    async def test_escaping_moves_and_prefixes_are_refused(
        self, file_storage: FileStorageProvider, bad: str
    ) -> None:
        await file_storage.write("inside.txt", b"x")
        with pytest.raises(InvalidInput):
            await file_storage.move("inside.txt", bad)
        with pytest.raises(InvalidInput):
            await file_storage.move(bad, "inside2.txt")
        with pytest.raises(InvalidInput):
            await file_storage.list(bad)
        assert await file_storage.read("inside.txt") == b"x"
