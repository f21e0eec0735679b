"""Renames that never replace a file, on every path rename_noreplace can take; durable writes."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from atoz_watcher.system import fsops
from atoz_watcher.system.fsops import rename_noreplace, write_durably

# How rename_noreplace gets its guarantee: renameat2(RENAME_NOREPLACE); a hard link plus unlink
# where renameat2 is missing; check-then-rename where hard links are refused too.
MODES = ["renameat2", "link", "check-then-rename"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    if name == "renameat2" and fsops._renameat2() is None:
        pytest.skip("the C library has no renameat2")
    if name in {"link", "check-then-rename"}:
        monkeypatch.setattr(fsops, "_renameat2", lambda: None)
    if name == "check-then-rename":

        def no_links(*_args: object, **_kwargs: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(fsops.os, "link", no_links)
    return name


@pytest.mark.usefixtures("mode")
class TestRenameNoreplace:
    @pytest.mark.parametrize(
        ("src_name", "dst_name"),
        [
            pytest.param("_12_x.jpg", "x.jpg", id="prefix-cut"),
            pytest.param("_3_García.jpg", "García.jpg", id="non-ascii"),
            pytest.param("x.jpg", "xx.jpg", id="x-added"),
        ],
    )
    def test_renames(self, tmp_path: Path, src_name: str, dst_name: str) -> None:
        src, dst = tmp_path / src_name, tmp_path / dst_name
        src.write_bytes(b"scan")
        inode = src.stat().st_ino
        rename_noreplace(src, dst)
        assert not src.exists()
        assert dst.read_bytes() == b"scan"
        assert dst.stat().st_ino == inode  # the same file, not a copy
        assert sorted(p.name for p in tmp_path.iterdir()) == [dst_name]

    def test_refuses_an_existing_target(self, tmp_path: Path) -> None:
        src, dst = tmp_path / "_12_x.jpg", tmp_path / "x.jpg"
        src.write_bytes(b"new scan")
        dst.write_bytes(b"older file")
        with pytest.raises(FileExistsError):
            rename_noreplace(src, dst)
        assert src.read_bytes() == b"new scan"
        assert dst.read_bytes() == b"older file"
        assert src.stat().st_ino != dst.stat().st_ino

    def test_refuses_an_existing_empty_target(self, tmp_path: Path) -> None:
        src, dst = tmp_path / "_12_x.jpg", tmp_path / "x.jpg"
        src.write_bytes(b"new scan")
        dst.touch()
        with pytest.raises(FileExistsError):
            rename_noreplace(src, dst)
        assert src.read_bytes() == b"new scan"
        assert dst.read_bytes() == b""

    def test_refuses_a_dangling_symlink_target(self, tmp_path: Path) -> None:
        src, dst = tmp_path / "_12_x.jpg", tmp_path / "x.jpg"
        src.write_bytes(b"new scan")
        dst.symlink_to(tmp_path / "nowhere")
        with pytest.raises(FileExistsError):
            rename_noreplace(src, dst)
        assert src.read_bytes() == b"new scan"
        assert dst.is_symlink()
        assert dst.readlink() == tmp_path / "nowhere"

    def test_missing_source(self, tmp_path: Path) -> None:
        src, dst = tmp_path / "_12_x.jpg", tmp_path / "x.jpg"
        with pytest.raises(FileNotFoundError):
            rename_noreplace(src, dst)
        assert not dst.exists()
        assert list(tmp_path.iterdir()) == []


class TestWriteDurably:
    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b'[{"src": "_12_x.jpg"}]', id="json"),
            pytest.param('["Garc\u00eda"]'.encode(), id="utf8"),
            pytest.param(bytes(range(256)) * 64, id="binary-16k"),
        ],
    )
    def test_writes_content(self, tmp_path: Path, data: bytes) -> None:
        path = tmp_path / "entry.json"
        write_durably(path, data)
        assert path.read_bytes() == data
        assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]

    def test_replaces_existing_content_whole(self, tmp_path: Path) -> None:
        path = tmp_path / "entry.json"
        path.write_bytes(b"a much longer old content than the new one")
        old_inode = path.stat().st_ino
        write_durably(path, b"new")
        assert path.read_bytes() == b"new"
        # Atomic: a new file renamed over the old one, never the old file truncated in place.
        assert path.stat().st_ino != old_inode
        assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]

    def test_missing_directory_raises(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            write_durably(tmp_path / "missing" / "entry.json", b"x")
