"""The containment layer: links below the root refused at every level, files replaced without
following a link, and what it creates given the root's group and group bits."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from atoz_watcher.system.contained import LinkRefusedError, OutsideRootError, Tree


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "root"
    (root / "S" / "SmithJohn1").mkdir(parents=True)
    (root / "S" / "SmithJohn1" / "a.png").write_bytes(b"inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.png").write_bytes(b"secret")
    (tmp_path / "outside" / "SmithJohn1").mkdir()
    (tmp_path / "outside" / "SmithJohn1" / "a.png").write_bytes(b"secret")
    return Tree(root)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_a_file_is_read_through_plain_folders(tree: Tree) -> None:
    assert tree.read_bytes(tree.root / "S" / "SmithJohn1" / "a.png") == b"inside"


@pytest.mark.parametrize(
    ("linked", "target", "relative"),
    [
        ("S", "outside", "S"),
        ("S/SmithJohn1", "outside/SmithJohn1", "S/SmithJohn1"),
        ("S/SmithJohn1/a.png", "outside/a.png", "S/SmithJohn1/a.png"),
    ],
    ids=["letter folder", "patient folder", "file"],
)
def test_a_link_at_any_level_is_refused_and_logged(
    tree: Tree, linked: str, target: str, relative: str
) -> None:
    path = tree.root / linked
    real = path.with_name(f"{path.name}.real")
    path.rename(real)
    path.symlink_to(tree.root.parent / target)

    with capture_logs() as logs, pytest.raises(LinkRefusedError) as refused:
        tree.read_bytes(tree.root / "S" / "SmithJohn1" / "a.png")

    assert refused.value.relative == relative
    assert [e["path"] for e in logs if e["event"] == "path.link_refused"] == [relative]


def test_writing_over_a_link_replaces_the_link_not_its_target(tree: Tree) -> None:
    dest = tree.root / "S" / "SmithJohn1" / "Thumbnails" / "a.png"
    dest.parent.mkdir()
    dest.symlink_to(tree.root.parent / "outside" / "a.png")

    tree.replace_file(dest, b"thumbnail")

    assert not dest.is_symlink()
    assert dest.read_bytes() == b"thumbnail"
    assert (tree.root.parent / "outside" / "a.png").read_bytes() == b"secret"
    assert [p.name for p in dest.parent.iterdir()] == ["a.png"]  # no temporary left


def test_a_thumbnails_folder_that_is_a_link_is_never_written_into(tree: Tree) -> None:
    folder = tree.root / "S" / "SmithJohn1" / "Thumbnails"
    folder.symlink_to(tree.root.parent / "outside", target_is_directory=True)

    with pytest.raises(LinkRefusedError):
        tree.replace_file(folder / "b.png", b"thumbnail")

    assert sorted(p.name for p in (tree.root.parent / "outside").iterdir()) == [
        "SmithJohn1",
        "a.png",
    ]


def test_writing_makes_only_the_files_own_folder(tree: Tree) -> None:
    with pytest.raises(FileNotFoundError):
        tree.replace_file(tree.root / "S" / "Gone9" / "Thumbnails" / "a.png", b"x")
    assert not (tree.root / "S" / "Gone9").exists()


def test_a_fifo_is_refused_without_hanging(tree: Tree) -> None:
    fifo = tree.root / "S" / "SmithJohn1" / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        tree.read_bytes(fifo)


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "S/../../outside/a.png"], ids=["outside", "dot-dot"]
)
def test_paths_that_are_not_below_the_root_are_refused(tree: Tree, path: str) -> None:
    with pytest.raises(OutsideRootError):
        tree.read_bytes(tree.root / path if not path.startswith("/") else Path(path))


@pytest.mark.parametrize("setgid", [True, False], ids=["setgid-root", "plain-root"])
def test_what_is_created_gets_the_roots_group_and_group_bits(tree: Tree, setgid: bool) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving the root a group we are not in needs root")
    group = 4243
    os.chown(tree.root, -1, group)
    tree.root.chmod(0o2770 if setgid else 0o770)
    dest = tree.root / "S" / "SmithJohn1" / "Thumbnails" / "a.png"
    with umask(0o022):
        tree.replace_file(dest, b"thumbnail")
        with tree.folder(("N", "NewPat2"), create=True) as folder:
            name = folder.write_temporary(b"upload", suffix=".upload")

    made = [dest.parent, dest, tree.root / "N", tree.root / "N" / "NewPat2"]
    made.append(tree.root / "N" / "NewPat2" / name)
    for path in made:
        info = path.stat()
        assert info.st_gid == group, path
        wanted = stat.S_IRWXG if path.is_dir() else stat.S_IRGRP | stat.S_IWGRP
        assert info.st_mode & wanted == wanted, (path, stat.filemode(info.st_mode))
        assert not info.st_mode & stat.S_IXGRP or path.is_dir(), "no x on a file"
    # S and SmithJohn1 existed already: left as they were.
    assert (tree.root / "S").stat().st_gid != group


def test_a_root_without_group_write_gives_none(tree: Tree) -> None:
    tree.root.chmod(0o755)
    dest = tree.root / "S" / "SmithJohn1" / "Thumbnails" / "a.png"
    with umask(0o022):
        tree.replace_file(dest, b"thumbnail")
    assert not dest.stat().st_mode & stat.S_IWGRP
    assert not dest.parent.stat().st_mode & stat.S_IWGRP
