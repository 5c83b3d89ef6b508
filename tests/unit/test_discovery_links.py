"""Case 27 (issue 25) without models: discovery follows symbolic links to folders, as
``find -L`` and Obsidian do, each folder once (loops detected by (st_dev, st_ino)), and names
whatever it does not walk in ``skipped``; with ``confine_to`` a link leading out is not followed.
The real-part version is tests/integration/test_ingest_cases_uploads.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.discovery import LOOP, OUTSIDE, TARGET_MISSING, discover


def make(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n", encoding="utf-8")


def vault(tmp_path: Path) -> Path:
    """Case 27's shape: vault/lectures -> ../lectures, and lectures/again -> . (a loop)."""
    make(tmp_path, "vault/index.md", "lectures/graph-theory.md")
    (tmp_path / "vault" / "lectures").symlink_to("../lectures", target_is_directory=True)
    (tmp_path / "lectures" / "again").symlink_to(".", target_is_directory=True)
    return tmp_path / "vault"


def test_a_linked_folder_is_walked_and_its_loop_named(tmp_path: Path) -> None:
    root = vault(tmp_path).resolve()
    found = discover([root])
    assert found.files == [root / "index.md", root / "lectures" / "graph-theory.md"]
    assert found.skipped == [(root / "lectures" / "again", LOOP)]


def test_a_note_reachable_directly_and_through_a_link_is_found_once_at_its_path(
    tmp_path: Path,
) -> None:
    make(tmp_path, "notes/z-real/a.md")
    (tmp_path / "notes" / "a-link").symlink_to("z-real", target_is_directory=True)
    root = (tmp_path / "notes").resolve()
    found = discover([root])
    assert found.files == [root / "z-real" / "a.md"]  # the direct path, though "a-" sorts first
    assert found.skipped == [(root / "a-link", LOOP)]


def test_a_link_out_of_the_allowed_folders_is_not_followed_and_is_named(tmp_path: Path) -> None:
    make(tmp_path, "allowed/a.md", "secret/s.md")
    (tmp_path / "allowed" / "out").symlink_to(tmp_path / "secret", target_is_directory=True)
    root = (tmp_path / "allowed").resolve()
    found = discover([root], confine_to=[root])
    assert found.files == [root / "a.md"]
    assert found.skipped == [(root / "out", OUTSIDE)]
    assert discover([root]).files == [root / "a.md", root / "out" / "s.md"]  # the CLI follows


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_a_folder_that_cannot_be_listed_is_named(tmp_path: Path) -> None:
    make(tmp_path, "n/a.md", "n/locked/b.md")
    locked = tmp_path / "n" / "locked"
    locked.chmod(0)
    try:
        found = discover([tmp_path / "n"])
    finally:
        locked.chmod(0o755)
    ((path, why),) = found.skipped
    assert path == locked.resolve() and "cannot list" in why


def test_a_folder_link_whose_target_is_missing_is_skipped_not_unsupported(
    tmp_path: Path,
) -> None:
    make(tmp_path, "vault/a.md")
    root = (tmp_path / "vault").resolve()
    (root / "drive").symlink_to(tmp_path / "unmounted", target_is_directory=True)
    (root / "gone.md").symlink_to(tmp_path / "nowhere.md")  # a note link: read, then fails
    found = discover([root])
    assert found.unsupported == []
    assert found.skipped == [(root / "drive", TARGET_MISSING)]
    assert found.unlisted == [root / "drive"]
    assert found.files == [root / "a.md", root / "gone.md"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    links=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.text("abc", min_size=1, max_size=3)),
        max_size=6,
    )
)
def test_any_links_end_each_file_once(tmp_path_factory: pytest.TempPathFactory,
                                      links: list[tuple[int, int, str]]) -> None:  # fmt: skip
    """Random links between four folders (loops included): the walk ends, every note is
    found, and no file is found twice under the same real path."""
    base = tmp_path_factory.mktemp("links")
    folders = [base / "d0", base / "d0" / "d1", base / "d0" / "d1" / "d2", base / "d0" / "d3"]
    for n, folder in enumerate(folders):
        make(folder, f"n{n}.md")
    for src, dst, name in links:
        link = folders[src] / f"l{name}"
        if not link.exists() and not link.is_symlink():
            link.symlink_to(folders[dst], target_is_directory=True)
    found = discover([folders[0]])
    real = [f.resolve() for f in found.files]
    assert len(real) == len(set(real))
    assert {f.name for f in real} == {f"n{n}.md" for n in range(4)}


# --- .shioriignore applies to what a link leads to (issue 25 review) -----------------------------


def ignoring(tmp_path: Path, pattern: str = "private/") -> Path:
    make(tmp_path, "notes/a.md", "notes/private/secret.md", "notes/private/deep/s2.md")
    (tmp_path / "notes" / ".shioriignore").write_text(pattern + "\n", encoding="utf-8")
    return (tmp_path / "notes").resolve()


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("shortcut", "private"),  # another name, beside it
        ("sub/p", "../private"),  # another place
        ("sub/deeper", "../private/deep"),  # a folder inside the excluded one
    ],
)
def test_an_ignored_folder_reached_through_a_link_is_not_walked(
    tmp_path: Path, link: str, target: str
) -> None:
    root = ignoring(tmp_path)
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(target, target_is_directory=True)
    found = discover([root])
    assert found.files == [root / "a.md"]
    assert not any("secret" in str(f) or "s2" in str(f) for f in found.files)


def test_a_link_to_an_ignored_note_is_not_taken(tmp_path: Path) -> None:
    root = ignoring(tmp_path)
    (root / "alias.md").symlink_to("private/secret.md")
    make(tmp_path, "notes/drafts/d.md")
    (root / ".shioriignore").write_text("private/\ndrafts/d.md\n", encoding="utf-8")
    (root / "d-link.md").symlink_to("drafts/d.md")
    assert discover([root]).files == [root / "a.md"]


def test_an_ignore_file_of_one_root_excludes_its_folder_reached_from_another(
    tmp_path: Path,
) -> None:
    root = ignoring(tmp_path)
    make(tmp_path, "other/b.md")
    other = (tmp_path / "other").resolve()
    (other / "l").symlink_to(root / "private", target_is_directory=True)
    found = discover([root, other])
    assert found.files == [root / "a.md", other / "b.md"]


def test_a_hidden_folder_reached_through_a_link_is_not_walked(tmp_path: Path) -> None:
    make(tmp_path, "notes/a.md", "notes/.trash/old.md")
    root = (tmp_path / "notes").resolve()
    (root / "attic").symlink_to(".trash", target_is_directory=True)
    assert discover([root]).files == [root / "a.md"]


def test_a_linked_folder_that_is_not_ignored_is_still_walked(tmp_path: Path) -> None:
    root = ignoring(tmp_path, "private/deep/")
    (root / "shortcut").symlink_to("private", target_is_directory=True)
    (tmp_path / "lectures").mkdir()
    (tmp_path / "lectures" / "g.md").write_text("# g\n", encoding="utf-8")
    (root / "lectures").symlink_to(tmp_path / "lectures", target_is_directory=True)
    found = discover([root])
    # private/ itself is taken (only private/deep/ is excluded): found at its direct path
    taken = [root / "a.md", root / "lectures" / "g.md", root / "private" / "secret.md"]
    assert found.files == taken


# --- one file, one path (issue 25 review) --------------------------------------------------------


def test_a_file_reached_by_several_paths_is_taken_once_at_a_path_free_of_links(
    tmp_path: Path,
) -> None:
    make(tmp_path, "notes/z.md", "other/b.md")
    root, other = (tmp_path / "notes").resolve(), (tmp_path / "other").resolve()
    (root / "a-alias.md").symlink_to("z.md")  # sorts first, but is a link
    os.link(root / "z.md", other / "hard.md")
    (other / "l").symlink_to(root, target_is_directory=True)  # the folder, linked elsewhere
    found = discover([other, root])
    # a hard link is no link: of two plain paths, the first found (other/ is walked first)
    assert sorted(found.files) == [other / "b.md", other / "hard.md"]
    assert found.same_file == [(root / "a-alias.md", other / "hard.md"),
                               (root / "z.md", other / "hard.md")]  # fmt: skip
    assert found.ids[other / "hard.md"] == ((root / "z.md").stat().st_dev,
                                            (root / "z.md").stat().st_ino)  # fmt: skip
