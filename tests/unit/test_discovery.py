"""Unit tests for ingest.discovery: walking folders, ignore files, odd arguments."""

from __future__ import annotations

from pathlib import Path

from ingest.discovery import IGNORE_FILE, discover

NOTES = Path(__file__).resolve().parents[2] / "notes"


def make(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n", encoding="utf-8")


def rel(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root.resolve()).as_posix() for p in paths]


def test_recursive_walk_returns_sorted_absolute_supported_files(tmp_path):
    make(tmp_path, "b.md", "a.txt", "sub/c.html", "sub/deeper/d.pdf", "sub/deeper/e.MD")
    found = discover([tmp_path])
    assert rel(found.files, tmp_path) == [
        "a.txt",
        "b.md",
        "sub/c.html",
        "sub/deeper/d.pdf",
        "sub/deeper/e.MD",
    ]
    assert all(p.is_absolute() for p in found.files)
    assert found.files == sorted(found.files)
    assert found.roots == [tmp_path.resolve()]
    assert found.unsupported == [] and found.missing == []


def test_hidden_files_and_folders_skipped(tmp_path):
    make(tmp_path, "visible.md", ".hidden.md", ".git/notes.md", "sub/.secret/x.md", "sub/ok.md")
    found = discover([tmp_path])
    assert rel(found.files, tmp_path) == ["sub/ok.md", "visible.md"]
    assert found.unsupported == []


def test_unsupported_files_listed_not_included(tmp_path):
    make(tmp_path, "a.md", "script.py", "sub/image.png", "sub/b.txt")
    found = discover([tmp_path])
    assert rel(found.files, tmp_path) == ["a.md", "sub/b.txt"]
    assert sorted(rel(found.unsupported, tmp_path)) == ["script.py", "sub/image.png"]


def test_ignore_file_globs_and_folder_patterns(tmp_path):
    make(
        tmp_path,
        "keep.md",
        "draft-1.md",
        "sub/draft-2.md",
        "sub/keep2.md",
        "build/out.md",
        "sub/build/nested.md",
        "archive/old.md",
        "archive2/new.md",
        "build.md",
        "junk.py",
    )
    (tmp_path / IGNORE_FILE).write_text(
        "# comments and blank lines are skipped\n\n  draft-*.md  \nbuild/\narchive/\n*.py\n",
        encoding="utf-8",
    )
    found = discover([tmp_path])
    assert rel(found.files, tmp_path) == ["archive2/new.md", "build.md", "keep.md", "sub/keep2.md"]
    # ignored files are neither included nor reported as unsupported
    assert found.unsupported == []


def test_folder_pattern_does_not_match_files(tmp_path):
    make(tmp_path, "a.md", "folder.md/inner.txt", "other/b.md")
    (tmp_path / IGNORE_FILE).write_text("*.md/\n", encoding="utf-8")
    assert rel(discover([tmp_path]).files, tmp_path) == ["a.md", "other/b.md"]


def test_relative_path_patterns_and_nested_ignore_files(tmp_path):
    make(tmp_path, "a/x.md", "b/x.md", "sub/skip.md", "sub/keep.md", "sub/inner/skip.md")
    (tmp_path / IGNORE_FILE).write_text("a/x.md\n", encoding="utf-8")
    (tmp_path / "sub" / IGNORE_FILE).write_text("skip.md\n", encoding="utf-8")
    found = discover([tmp_path])
    assert rel(found.files, tmp_path) == ["b/x.md", "sub/keep.md"]


def test_nested_ignore_file_applies_only_below_its_folder(tmp_path):
    make(tmp_path, "skip.md", "sub/skip.md", "sub/keep.md")
    (tmp_path / "sub" / IGNORE_FILE).write_text("skip.md\n", encoding="utf-8")
    assert rel(discover([tmp_path]).files, tmp_path) == ["skip.md", "sub/keep.md"]


def test_ignore_patterns_do_not_leak_to_sibling_roots(tmp_path):
    make(tmp_path, "one/x.md", "two/x.md")
    (tmp_path / "one" / IGNORE_FILE).write_text("x.md\n", encoding="utf-8")
    found = discover([tmp_path / "one", tmp_path / "two"])
    assert rel(found.files, tmp_path) == ["two/x.md"]


def test_missing_arguments_reported(tmp_path):
    make(tmp_path, "a.md")
    gone = tmp_path / "nope"
    found = discover([str(gone), tmp_path, "also/missing.md"])
    assert found.missing == [str(gone), "also/missing.md"]
    assert rel(found.files, tmp_path) == ["a.md"]
    assert found.roots == [tmp_path.resolve()]


def test_file_argument_included_even_if_hidden_or_unsupported_elsewhere(tmp_path):
    make(tmp_path, "dir/a.md", ".hidden.md", "single.txt")
    found = discover([tmp_path / "single.txt", tmp_path / ".hidden.md"])
    assert rel(found.files, tmp_path) == [".hidden.md", "single.txt"]
    assert found.roots == [(tmp_path / "single.txt").resolve(), (tmp_path / ".hidden.md").resolve()]


def test_duplicates_removed(tmp_path, monkeypatch):
    make(tmp_path, "a.md", "sub/b.md")
    monkeypatch.chdir(tmp_path)
    found = discover([tmp_path, "a.md", tmp_path / "sub", "./sub/b.md", Path("sub/../a.md")])
    assert rel(found.files, tmp_path) == ["a.md", "sub/b.md"]
    assert len(found.files) == len(set(found.files))


def test_empty_argument_list():
    found = discover([])
    assert (found.files, found.roots, found.unsupported, found.missing) == ([], [], [], [])


def test_bundled_notes_folder():
    found = discover([NOTES])
    names = [p.name for p in found.files]
    md = sorted(p.name for p in NOTES.glob("[0-9][0-9]-*.md"))
    assert len(md) == 14
    assert names == sorted([*md, "15-prompt-engineering.pdf"])
    assert "README.md" not in names
    assert not any("_src" in p.parts for p in found.files)
    assert found.unsupported == [] and found.missing == []


# --- gitignore semantics (pathspec) -------------------------------------------------------------


def test_double_star_negation_and_anchoring(tmp_path):
    make(
        tmp_path,
        "a.md",
        "drafts/x.md",
        "drafts/keep.md",
        "deep/er/drafts/y.md",
        "deep/tmp/z.md",
        "tmp/top.md",
        "sub/tmp/nested.md",
        "logs/2024/app.md",
    )
    (tmp_path / IGNORE_FILE).write_text(
        "drafts/*\n!drafts/keep.md\n**/drafts/y.md\n/tmp/\nlogs/**\ndeep/*/z.md\n",
        encoding="utf-8",
    )
    assert rel(discover([tmp_path]).files, tmp_path) == [
        "a.md",
        "drafts/keep.md",
        "sub/tmp/nested.md",  # /tmp/ is anchored to the ignore file's folder
    ]


def test_deeper_ignore_file_overrides_and_excluded_folders_stay_excluded(tmp_path):
    make(tmp_path, "notes/a.md", "notes/b.md", "private/p.md")
    (tmp_path / IGNORE_FILE).write_text("*.md\nprivate/\n", encoding="utf-8")
    (tmp_path / "notes" / IGNORE_FILE).write_text("!a.md\n", encoding="utf-8")
    (tmp_path / "private" / IGNORE_FILE).write_text("!p.md\n", encoding="utf-8")
    # a folder that is excluded is not entered: nothing inside can be re-included (as in git)
    assert rel(discover([tmp_path]).files, tmp_path) == ["notes/a.md"]


def test_escaped_and_character_class_patterns(tmp_path):
    make(tmp_path, "#hash.md", "v1.md", "v2.md", "v3.md")
    (tmp_path / IGNORE_FILE).write_text("\\#hash.md\nv[12].md\n", encoding="utf-8")
    assert rel(discover([tmp_path]).files, tmp_path) == ["v3.md"]
