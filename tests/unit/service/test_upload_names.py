"""Case 21 (issue 25) without models: an uploaded part's file name keeps its folders, safely.

Properties: any name either is refused (`BadUploadNameError`) or maps to a path inside the
uploads folder; distinct relative names map to distinct files; the CLI's names of files found
in different folders are distinct. The real-part version (embedder, store, CLI as a process) is
tests/integration/test_ingest_cases_uploads.py."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.pipeline import IngestReport
from service.routes.ingest import BadUploadNameError, upload_relpath, upload_targets
from shiori.client import upload_names
from tests.unit.service.uploads import Ingestor, PostIngest

PART = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/\\:."),
    min_size=1,
    max_size=12,
)
RELATIVE = st.lists(PART, min_size=1, max_size=4).map("/".join)
ANY_NAME = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["..", ".", "", "a", "b.md", "/", "\\", "C:", "~", ".x"]),
             max_size=8).map("/".join),
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=ANY_NAME)
def test_any_name_is_refused_or_lands_inside_the_uploads_folder(tmp_path: Path, name: str) -> None:
    home = tmp_path.resolve()
    try:
        rel = upload_relpath(name)
    except BadUploadNameError:
        return
    assert not rel.is_absolute() and ".." not in rel.parts
    assert all(not p.startswith(".") for p in rel.parts)
    target = home.joinpath(*rel.parts)
    assert Path(os.path.normpath(target)).is_relative_to(home) and target != home


@given(names=st.lists(RELATIVE, min_size=1, max_size=6, unique_by=str.casefold))
def test_distinct_relative_names_map_to_distinct_files(names: list[str]) -> None:
    # every folder on the way, not only the parent ('0' and '0/0/0' clash as well)
    folders = {str(f).casefold() for n in names for f in PurePosixPath(n).parents}
    if any(n.casefold() in folders for n in names):  # a file where another needs a folder
        with pytest.raises(BadUploadNameError):
            upload_targets(names)
        return
    targets = upload_targets(names)
    assert [t.as_posix() for t in targets] == [upload_relpath(n).as_posix() for n in names]
    assert len(set(targets)) == len(names)


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("2024/summary.md", "2024/summary.md"),
        ("week1\\index.md", "week1/index.md"),
        ("./a//b.md", "a/b.md"),
        ("summary.md", "summary.md"),
        ("ノート/カフェ.md", "ノート/カフェ.md"),
    ],
)
def test_folders_are_kept(name: str, kept: str) -> None:
    assert upload_relpath(name).as_posix() == kept


@pytest.mark.parametrize(
    "name",
    ["", "../x.md", "a/../../x.md", "/etc/passwd", "\\\\server\\x.md", "C:\\notes\\a.md",
     ".hidden.md", "a/.git/x.md", "a\x00b.md", "a\nb.md", "x" * 300 + ".md",
     "/".join(["d"] * 40) + "/a.md"],
)  # fmt: skip
def test_bad_names_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(BadUploadNameError, match=r"\w"):
        upload_relpath(name)


def test_two_parts_naming_one_file_are_refused_not_replaced() -> None:
    with pytest.raises(BadUploadNameError, match="same file"):
        upload_targets(["2024/summary.md", "2024\\summary.md"])
    with pytest.raises(BadUploadNameError, match="same file"):
        upload_targets(["A/x.md", "a/X.md"])  # one file on a case-insensitive system
    with pytest.raises(BadUploadNameError, match="folder"):
        upload_targets(["a.md", "a.md/b.md"])


def test_the_cli_names_files_by_their_folders(tmp_path: Path) -> None:
    notes = (tmp_path / "notes").resolve()
    files = [notes / "2024" / "summary.md", notes / "2025" / "summary.md"]
    single = (tmp_path / "extra.md").resolve()
    named = upload_names([notes, single], [*files, single])
    assert [n for n, _ in named] == [
        "notes/2024/summary.md", "notes/2025/summary.md", "extra.md"
    ]  # fmt: skip
    other = (tmp_path / "other" / "notes").resolve()
    with pytest.raises(ValueError, match=r"both be uploaded as notes/a\.md"):
        upload_names([notes, other], [notes / "a.md", other / "a.md"])


@given(rels=st.lists(RELATIVE, min_size=1, max_size=6, unique=True))
def test_files_of_one_root_get_distinct_names(rels: list[str]) -> None:
    root = Path("/r/notes")
    files = [root / r for r in rels]
    names = [n for n, _ in upload_names([root], files)]
    assert len(set(names)) == len(files)
    assert all(n == f"notes/{r}" for n, r in zip(names, rels, strict=True))


def upload(send: PostIngest, files: list[tuple[str, bytes]]) -> tuple[httpx.Response, Ingestor]:
    ingestor = Ingestor()
    form = [("file", (name, data)) for name, data in files]
    return send(ingestor, files=form), ingestor


def test_the_route_keeps_same_named_notes_of_two_folders(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    r, ingestor = upload(
        post_ingest, [("2024/summary.md", b"# 2024\n"), ("2025/summary.md", b"# 25\n")]
    )
    assert r.status_code == 200, r.text
    uploads = (tmp_path / "uploads").resolve()
    assert ingestor.paths == [uploads / "2024/summary.md", uploads / "2025/summary.md"]
    assert (uploads / "2024/summary.md").read_bytes() == b"# 2024\n"
    assert (uploads / "2025/summary.md").read_bytes() == b"# 25\n"


def test_the_route_refuses_bad_names_before_writing_anything(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    for files in (
        [("a.md", b"a"), ("../escape.md", b"x")],
        [("a.md", b"a"), ("/etc/escape.md", b"x")],
        [("2024/summary.md", b"a"), ("2024\\summary.md", b"x")],
    ):
        r, ingestor = upload(post_ingest, files)
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request", r.text
        assert files[1][0] in r.json()["error"]["message"] or "same file" in r.text
        assert ingestor.paths == [] and not (tmp_path / "uploads" / "a.md").exists()
    assert not (tmp_path / "escape.md").exists()


def test_a_link_in_the_uploads_folder_carries_no_write_out_of_it(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "linked").symlink_to(outside, target_is_directory=True)
    r, ingestor = upload(post_ingest, [("linked/x.md", b"x")])
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden_path", r.text
    assert not (outside / "x.md").exists() and ingestor.paths == []


class _Syncing(Ingestor):
    """Like the pipeline: a run forgets the indexed notes under its paths whose files are gone."""

    def __init__(self, indexed: list[Path]) -> None:
        super().__init__()
        self.indexed = indexed

    def run(self, paths: list[Path], **_: object) -> IngestReport:
        self.paths = list(paths)
        home = paths[0].parents[0] if paths else Path("/")
        gone = [
            p for p in self.indexed if not p.exists() and any(p.is_relative_to(r) for r in paths)
        ]
        forgotten = [
            {"path": "uploads/" + p.relative_to(home).as_posix(), "reason": "file is gone"}
            for p in gone
        ]
        return IngestReport(files_deleted=len(gone), forgotten=forgotten)


def post(send: PostIngest, form: list[tuple[str, object]], ingestor: Ingestor) -> httpx.Response:
    files = [(k, v) for k, v in form if k == "file"]
    data: dict[str, list[object]] = {}
    for k, v in form:
        if k != "file":
            data.setdefault(k, []).append(v)
    return send(ingestor, files=files, data=data)


def test_a_synced_folder_upload_forgets_the_notes_renamed_or_deleted_since(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    uploads = (tmp_path / "uploads").resolve()
    old = {"notes/2024/summary.md": b"# 24\n", "notes/2025/summary.md": b"# 25\n",
           "notes/keep.md": b"k", "other/x.md": b"x"}  # fmt: skip
    for name, data in old.items():
        (uploads / name).parent.mkdir(parents=True, exist_ok=True)
        (uploads / name).write_bytes(data)
    ingestor = _Syncing([uploads / n for n in old])
    # mv 2024/summary.md 2024/seminar.md; rm 2025/summary.md; then upload the folder again
    form: list[tuple[str, object]] = [
        ("file", ("notes/2024/seminar.md", b"# 24\n")),
        ("file", ("notes/keep.md", b"k")),
        ("sync_root", "notes"),
    ]
    r = post(post_ingest, form, ingestor)
    assert r.status_code == 200, r.text
    assert not (uploads / "notes/2024/summary.md").exists()
    assert not (uploads / "notes/2025/summary.md").exists()
    assert (uploads / "notes/2024/seminar.md").exists() and (uploads / "other/x.md").exists()
    assert ingestor.paths == [uploads / "notes"]  # the folder whole: its gone notes forgotten
    forgotten = {f["path"]: f["reason"] for f in r.json()["forgotten"]}
    assert set(forgotten) == {"uploads/notes/2024/summary.md", "uploads/notes/2025/summary.md"}
    assert all("sync_root" in reason for reason in forgotten.values())


def test_without_sync_root_an_upload_only_adds(tmp_path: Path, post_ingest: PostIngest) -> None:
    uploads = (tmp_path / "uploads").resolve()
    (uploads / "notes").mkdir(parents=True)
    (uploads / "notes" / "old.md").write_bytes(b"o")
    r = post(post_ingest, [("file", ("notes/new.md", b"n"))], Ingestor())
    assert r.status_code == 200, r.text
    assert (uploads / "notes" / "old.md").exists()


def test_a_synced_upload_only_adds_outside_its_folder(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    uploads = (tmp_path / "uploads").resolve()
    (uploads / "elsewhere").mkdir(parents=True)
    (uploads / "elsewhere" / "old.md").write_bytes(b"o")
    form: list[tuple[str, object]] = [("file", ("elsewhere/a.md", b"a")), ("sync_root", "notes")]
    r = post(post_ingest, form, Ingestor())
    assert r.status_code == 200, r.text
    assert (uploads / "elsewhere" / "a.md").exists() and (uploads / "elsewhere" / "old.md").exists()
    for bad in ("../x", "/abs", ".hidden"):
        r = post(post_ingest, [("file", ("notes/a.md", b"a")), ("sync_root", bad)], Ingestor())
        assert r.status_code == 422 and "sync_root" in r.text, r.text


def test_a_refused_upload_writes_nothing(tmp_path: Path, post_ingest: PostIngest) -> None:
    """`uploads/a.md` is a file: `a.md/b.md` is refused, and `x/new.md` before it not kept."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "a.md").write_bytes(b"a")
    r, ingestor = upload(post_ingest, [("x/new.md", b"n"), ("a.md/b.md", b"b")])
    assert r.status_code == 422, r.text
    assert not (uploads / "x" / "new.md").exists() and ingestor.paths == []
    assert (uploads / "a.md").read_bytes() == b"a"


def test_the_cli_syncs_the_folders_it_uploads(tmp_path: Path) -> None:
    from shiori.client import sync_roots

    notes, other = tmp_path / "notes", tmp_path / "other"
    (notes / "2024").mkdir(parents=True)
    (other / "locked").mkdir(parents=True)
    single = tmp_path / "extra.md"
    single.write_text("x")
    # a file is only added; a folder with a part that could not be listed is not synced
    assert sync_roots([notes, other, single], [other / "locked"]) == ["notes"]


def test_only_a_drive_with_a_separator_is_absolute() -> None:
    assert upload_relpath("Q:A.md").as_posix() == "Q:A.md"  # a colon in a name
    for name in ("C:\\notes\\a.md", "C:/notes/a.md"):
        with pytest.raises(BadUploadNameError, match="absolute"):
            upload_relpath(name)


def raw_upload(send: PostIngest, disposition: bytes) -> tuple[httpx.Response, Ingestor]:
    body = b'--B\r\nContent-Disposition: form-data; name="file"; ' + disposition
    body += b"\r\n\r\n# x\r\n--B--\r\n"
    headers = {"content-type": "multipart/form-data; boundary=B"}
    ingestor = Ingestor()
    return send(ingestor, content=body, headers=headers), ingestor


def test_filename_star_is_preferred_and_its_absence_of_filename_is_explained(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    r, ingestor = raw_upload(
        post_ingest, b"filename=\"a.md\"; filename*=UTF-8''2024%2F%E3%83%8E%E3%83%BC%E3%83%88.md"
    )
    assert r.status_code == 200, r.text
    assert ingestor.paths == [(tmp_path / "uploads").resolve() / "2024" / "ノート.md"]
    # filename* alone names the file as well (tests/unit/service/test_upload_filename_star.py)
    r, ingestor = raw_upload(post_ingest, b"filename*=UTF-8''%E3%83%8E.md")
    assert r.status_code == 200, r.text
    assert ingestor.paths == [(tmp_path / "uploads").resolve() / "ノ.md"]
