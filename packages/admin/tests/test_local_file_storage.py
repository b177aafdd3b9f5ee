"""LocalFileStorage: the file storage contract, plus what only a local folder can show."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.testing.file_storage import FileStorageConformance


class TestLocalFileStorageConformance(FileStorageConformance):
    __test__ = True

    @pytest.fixture
    async def file_storage(self, tmp_path: Path) -> FileStorageProvider:
        return LocalFileStorage(tmp_path / "files")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def storage(root: Path) -> LocalFileStorage:
    return LocalFileStorage(root)


async def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    storage = LocalFileStorage(root)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "secret-link").symlink_to(outside / "secret.txt")

    with pytest.raises(InvalidInput):
        await storage.read("escape/secret.txt")
    with pytest.raises(InvalidInput):
        await storage.write("escape/new.txt", b"x")
    with pytest.raises(InvalidInput):
        await storage.read("secret-link")
    with pytest.raises(InvalidInput):
        await storage.list("escape/")
    assert not (outside / "new.txt").exists()
    assert [i.path for i in await storage.list("")] == []


async def test_a_symlink_inside_the_root_is_followed(storage: LocalFileStorage, root: Path) -> None:
    await storage.write("real/data.txt", b"data")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert await storage.read("alias/data.txt") == b"data"


async def test_local_path_is_the_real_path(storage: LocalFileStorage, root: Path) -> None:
    await storage.write("a/b.txt", b"x")
    local = storage.local_path("a/b.txt")
    assert local == os.path.realpath(root / "a" / "b.txt")
    assert Path(local).read_bytes() == b"x"
    with pytest.raises(InvalidInput):
        storage.local_path("../x")


async def test_write_replaces_by_rename_so_an_open_reader_keeps_the_old_file(
    storage: LocalFileStorage, root: Path
) -> None:
    await storage.write("f.txt", b"old contents")
    with open(root / "f.txt", "rb") as held:
        await storage.write("f.txt", b"new")
        assert held.read() == b"old contents"
    assert await storage.read("f.txt") == b"new"
    assert sorted(os.listdir(root)) == ["f.txt"]


async def test_stray_temp_files_are_not_listed(storage: LocalFileStorage, root: Path) -> None:
    await storage.write("spans/p/a.jsonl", b"{}\n")
    (root / "spans" / "p" / ".b.jsonl.tmp-0123abcd").write_bytes(b"partial")
    assert [i.path for i in await storage.list("spans/")] == ["spans/p/a.jsonl"]


def test_a_full_disk_is_unavailable_and_leaves_nothing_behind(root: Path) -> None:
    """The kernel refuses the write (file size limit, as a full disk would): no temp
    file and no partial file remain, and the old contents are intact."""
    root.mkdir(parents=True)
    (root / "kept.txt").write_bytes(b"old")
    script = textwrap.dedent(
        f"""
        import asyncio, resource, signal, sys
        from mastra_admin.core.errors import Unavailable
        from mastra_admin.core.local_file_storage import LocalFileStorage

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        storage = LocalFileStorage({str(root)!r})

        async def main() -> None:
            for path in ("kept.txt", "new/big.bin"):
                try:
                    await storage.write(path, b"x" * 100_000)
                except Unavailable as exc:
                    print("unavailable", exc.details["errno"], exc.message)
                else:
                    sys.exit("the write succeeded")

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("unavailable 27 ") for line in lines)  # EFBIG
    assert (root / "kept.txt").read_bytes() == b"old"
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == ["kept.txt"]


async def test_negative_offsets_are_invalid(storage: LocalFileStorage) -> None:
    await storage.write("n.txt", b"abc")
    with pytest.raises(InvalidInput):
        await storage.read("n.txt", offset=-1)
