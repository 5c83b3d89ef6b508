"""The cases of issue 25 ("notes as people keep them", `../shared/cases/ingest/NN-*/`) about
uploads, the chat facade and folder walking, each with its README's values, through the real
parts: the real embedding model, the embedded Qdrant store, the HTTP API (in process over ASGI,
or served by uvicorn where the CLI must reach it), `shiori ingest` as a process where its exit
status matters, and the real vLLM where a README asks about answers.

- 21: uploaded notes keep their folders (CLI `--upload`, and multipart part names);
- 23: `/v1/chat/completions` reads content given as a list of parts;
- 27: discovery follows linked folders once each, loops named; the service never follows a link
  out of its allowed folders;
- the path filter `path_prefix` is a folder, not a string.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ingest.discovery import LOOP, OUTSIDE
from service.app import create_app
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from tests.integration.test_ingest_cases import case_dir, ingested, opened, run_cli

pytestmark = pytest.mark.slow


@contextmanager
def served(parts: Components) -> Iterator[str]:
    """The app over ``parts`` served by uvicorn in a thread (for the CLI, a separate process,
    to reach): yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(parts.settings, parts)
    app.state.components = parts
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


# --- 21: uploads keep their folders -----------------------------------------------------------


def check_21(notes: dict[str, dict[str, Any]], search: Any) -> None:
    """README 21's values: two notes, one chunk each; each search finds its own year's note."""
    assert len(notes) == 2 and all(n["chunks"] == 1 for n in notes.values()), notes
    (early,) = [s for s in notes if s.endswith("2024/summary.md")]
    (decay,) = [s for s in notes if s.endswith("2025/summary.md")]
    hit = next(h for h in search("早期終了 patience") if "早期終了" in h["text"])
    assert hit["source"] == early
    hit = next(h for h in search("重み減衰 係数") if "0.01" in h["text"])
    assert hit["source"] == decay


def test_21_the_cli_uploads_a_folder_tree_keeping_its_folders(
    embedder: Embedder, tmp_path: Path
) -> None:
    folder = case_dir("21")
    uploads = tmp_path / "uploads"
    with (
        opened(folder, embedder, tmp_path / "store", "c21", uploads_dir=uploads) as case,
        served(case.parts) as url,
    ):
        done = run_cli(["ingest", "--server", url, "--upload", "--json", str(folder / "notes")],
                       tmp_path, tmp_path / "unused-store")  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["files_seen"], report["files_new"], report["files_failed"]) == (2, 2, 0)
        with httpx.Client(base_url=url, timeout=600) as http:
            notes = {n["source"]: n for n in http.get("/v1/notes").json()["notes"]}

            def search(q: str) -> list[dict[str, Any]]:
                r = http.post("/v1/search", json={"question": q, "top_k": 5})
                return list(r.json()["results"])

            check_21(notes, search)
        assert set(notes) == {"uploads/notes/2024/summary.md", "uploads/notes/2025/summary.md"}
    kept = sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*.md"))
    assert kept == ["notes/2024/summary.md", "notes/2025/summary.md"]
    for year in ("2024", "2025"):
        assert (uploads / "notes" / year / "summary.md").read_bytes() == (
            folder / "notes" / year / "summary.md"
        ).read_bytes()


def test_21_a_second_upload_of_the_folder_forgets_renamed_and_deleted_notes(
    embedder: Embedder, tmp_path: Path
) -> None:
    notes = tmp_path / "mine" / "notes"
    shutil.copytree(case_dir("21") / "notes", notes)
    uploads = tmp_path / "uploads"
    with (
        opened(case_dir("21"), embedder, tmp_path / "store", "c21s", uploads_dir=uploads)
        as case,
        served(case.parts) as url,
    ):  # fmt: skip

        def upload() -> dict[str, Any]:
            done = run_cli(["ingest", "--server", url, "--upload", "--json", str(notes)],
                           tmp_path, tmp_path / "unused-store")  # fmt: skip
            assert done.returncode == 0, done.stderr
            return dict(json.loads(done.stdout))

        upload()
        (notes / "2024" / "summary.md").rename(notes / "2024" / "seminar.md")
        (notes / "2025" / "summary.md").unlink()
        report = upload()
        forgotten = {f["path"] for f in report["forgotten"]}
        assert forgotten == {"uploads/notes/2024/summary.md", "uploads/notes/2025/summary.md"}
        with httpx.Client(base_url=url, timeout=600) as http:
            listed = {n["source"] for n in http.get("/v1/notes").json()["notes"]}
        assert listed == {"uploads/notes/2024/seminar.md"}
    assert sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*.md")) == [
        "notes/2024/seminar.md"
    ]


def test_21_multipart_parts_whose_names_carry_folders(embedder: Embedder, tmp_path: Path) -> None:
    folder = case_dir("21")
    with opened(folder, embedder, tmp_path / "store", "c21b",
                   uploads_dir=tmp_path / "uploads") as case:  # fmt: skip
        files = [
            ("file", (f"{year}/summary.md", (folder / "notes" / year / "summary.md").read_bytes()))
            for year in ("2024", "2025")
        ]
        r = case.request("POST", "/v1/ingest", files=files)
        assert r.status_code == 200, r.text
        assert (r.json()["files_seen"], r.json()["files_new"]) == (2, 2)
        notes = case.notes()
        assert set(notes) == {"uploads/2024/summary.md", "uploads/2025/summary.md"}
        check_21(notes, case.search)
        # a part named only by filename* (RFC 7578/5987) is kept under its decoded name
        body = (
            b'--B\r\nContent-Disposition: form-data; name="file"; '
            b"filename*=UTF-8''2026%2F%E3%81%BE%E3%81%A8%E3%82%81.md\r\n\r\n"
            + (folder / "notes" / "2025" / "summary.md").read_bytes()
            + b"\r\n--B--\r\n"
        )
        star = case.request(
            "POST", "/v1/ingest", content=body,
            headers={"content-type": "multipart/form-data; boundary=B"},
        )  # fmt: skip
        assert star.status_code == 200, star.text
        assert "uploads/2026/まとめ.md" in case.notes()
        # a name leading out of the uploads folder is refused, clearly, before anything is kept
        bad = case.request("POST", "/v1/ingest", files=[("file", ("../x.md", b"# x\n"))])
        assert bad.status_code == 422 and "'..'" in bad.json()["error"]["message"]
        assert not (tmp_path / "x.md").exists()


# --- 23: chat content as a list of parts ------------------------------------------------------

BODIES = ("body-string", "body-image-part", "body-two-text-parts")


def chat_bodies() -> dict[str, Any]:
    folder = case_dir("23")
    return {b: json.loads((folder / f"{b}.json").read_text(encoding="utf-8")) for b in BODIES}


def test_23_every_content_shape_gets_the_503_of_the_plain_string_without_an_llm(
    embedder: Embedder, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port where nothing answers
        s.bind(("127.0.0.1", 0))
        nothing = Settings(llm_url=f"http://127.0.0.1:{s.getsockname()[1]}/v1")
    with ingested("23", embedder, tmp_path, nothing) as case:
        for name, body in chat_bodies().items():
            r = case.request("POST", "/v1/chat/completions", json=body)
            assert r.status_code == 503, (name, r.text)
            assert r.json()["error"]["type"] == "llm_unavailable", (name, r.text)
            assert "LLM" in r.json()["error"]["message"], (name, r.text)


def test_answers_23_read_the_text_parts_and_name_the_image(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    with ingested("23", embedder, tmp_path, llm_settings) as case:
        for name, body in chat_bodies().items():
            r = case.request("POST", "/v1/chat/completions", json=body)
            assert r.status_code == 200, (name, r.text)
            out = r.json()
            text = out["choices"][0]["message"]["content"]
            answer = text.split("\n\nSources:")[0]
            assert "0.9" in answer and not out["abstained"], (name, text)
            assert "β1 = 0.999" not in answer and "β1 は 0.999" not in answer, (name, text)
            cited = [s for s in out["sources"] if s["source"].endswith("notes/optimizers.md")]
            assert any(s["lines"][0] <= 6 <= s["lines"][1] for s in cited), (name, out["sources"])
            if name == "body-image-part":
                assert any("image_url" in w for w in out["warnings"]), out
                assert "not read" in text
            else:
                assert out["warnings"] == []


# --- 27: linked folders -----------------------------------------------------------------------


def vault(tmp_path: Path) -> Path:
    """README 27's scratch copy: vault/lectures -> ../lectures, lectures/again -> . (a loop)."""
    folder = case_dir("27")
    for name in ("vault", "lectures"):
        shutil.copytree(folder / name, tmp_path / name)
        (tmp_path / name).chmod(0o755)
    (tmp_path / "vault" / "lectures").symlink_to("../lectures", target_is_directory=True)
    (tmp_path / "lectures" / "again").symlink_to(".", target_is_directory=True)
    return tmp_path / "vault"


def test_27_a_linked_folder_is_ingested_once_and_its_loop_named(
    embedder: Embedder, tmp_path: Path
) -> None:
    vault(tmp_path)
    store = tmp_path / "store"
    done = run_cli(["ingest", "--json", "vault"], tmp_path, store)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["files_seen"], report["files_new"], report["files_failed"]) == (2, 2, 0)
    assert {"path": "vault/lectures/again", "warning": LOOP} in report["warnings"], report
    with opened(tmp_path, embedder, store, "cli") as case:
        notes = case.notes()
        assert set(notes) == {"vault/index.md", "vault/lectures/graph-theory.md"}, notes
        assert not any("again/" in c.source for c in case.chunks())
        top = case.search("オイラー路を持つ条件")[0]
        assert top["source"] == "vault/lectures/graph-theory.md"
        assert (top["lines"], top["heading"]) == ([5, 5], "グラフ理論 > オイラー路")


def test_27_the_service_never_follows_a_link_out_of_its_folders(
    embedder: Embedder, tmp_path: Path
) -> None:
    root = vault(tmp_path).resolve()
    with opened(tmp_path, embedder, tmp_path / "store", "c27",
                   ingest_roots=[root], uploads_dir=tmp_path / "uploads") as case:  # fmt: skip
        r = case.request("POST", "/v1/ingest", json={"paths": [str(root)], "all": True})
        assert r.status_code == 200, r.text
        report = r.json()
        assert {"path": "vault/lectures", "warning": OUTSIDE} in report["warnings"], report
        assert (report["files_seen"], report["files_new"]) == (1, 1)
        assert set(case.notes()) == {"vault/index.md"}


def test_27_the_linked_folder_given_as_a_root_too_stays_one_note_and_its_ignores_hold(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Issue 25 review: the CLI ingests the vault (its notes through the link), then the vault
    and the linked folder together: one note per file; a .shioriignore of the linked folder
    excludes its folder under any link name; files of other types are named."""
    vault(tmp_path)
    store = tmp_path / "store"
    lectures = tmp_path / "lectures"
    (lectures / "drafts").mkdir()
    (lectures / "drafts" / "wip.md").write_text("# 下書き\n\n未完成の証明。\n", encoding="utf-8")
    (lectures / ".shioriignore").write_text("drafts/\n", encoding="utf-8")
    (tmp_path / "vault" / "wip").symlink_to("../lectures/drafts", target_is_directory=True)
    (lectures / "slides.pptx").write_bytes(b"PK")
    done = run_cli(["ingest", "--json", "vault"], tmp_path, store)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["unsupported"] == [
        {"path": "vault/lectures/slides.pptx", "warning": first["unsupported"][0]["warning"]}
    ]
    assert ".pptx" in first["unsupported"][0]["warning"]
    done = run_cli(["ingest", "--json", "vault", "lectures"], tmp_path, store)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [f["path"] for f in report["forgotten"]] == ["vault/lectures/graph-theory.md"]
    assert "same file as lectures/graph-theory.md" in report["forgotten"][0]["reason"]
    with opened(tmp_path, embedder, store, "cli") as case:
        notes = case.notes()
        assert set(notes) == {"vault/index.md", "lectures/graph-theory.md"}, notes
        assert not any("wip" in c.source or "drafts" in c.source for c in case.chunks())
        results = case.search("オイラー路を持つ条件")
        assert [r["source"] for r in results].count("lectures/graph-theory.md") >= 1
        assert not any(r["source"].startswith("vault/lectures/") for r in results)


# --- a path filter is a folder, not a string --------------------------------------------------


def test_a_path_prefix_never_takes_in_a_sibling_folder(embedder: Embedder, tmp_path: Path) -> None:
    text = "# 学習率\n\nAdam の学習率は 0.001 から始める。\n"
    for name in ("notes/ml/adam.md", "notes/ml-old/adam.md", "notes/ml.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.replace("0.001", f"0.001 ({name})"), encoding="utf-8")
    with opened(tmp_path, embedder, tmp_path / "store", "prefix") as case:
        report = case.parts.ingestor.run([tmp_path / "notes"])
        assert report.files_new == 3
        assert len(case.search("Adam の学習率")) == 3  # all three answer without a filter
        for prefix in ("notes/ml", "notes/ml/", str(tmp_path.resolve() / "notes/ml")):
            hits = case.search("Adam の学習率", path_prefix=prefix)
            assert [h["source"] for h in hits] == ["notes/ml/adam.md"], (prefix, hits)
        exact = case.search("Adam の学習率", path_prefix="notes/ml.md")
        assert [h["source"] for h in exact] == ["notes/ml.md"]
