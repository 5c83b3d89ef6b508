"""The ingest cases of issue 25 about notes that change as people keep them (emptied, renamed,
moved folders), each with its README's values, through the real parts: the real embedding
model, the embedded store, `shiori ingest` as a process (its exit status and JSON report), the
HTTP API in process, and for the watched folder the service's own SHIORI_WATCH watcher (real
file-system events) started by the app's lifespan.

The cases' folders are read-only, so each test works on a copy in its own temporary folder (the
working directory, so sources read `notes/…` and `vault/…` as in the READMEs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from shiori.embedding import Embedder
from tests.integration.test_ingest_cases import case_dir, opened, run_cli

pytestmark = pytest.mark.slow


def cli_ingest(work: Path, store: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = run_cli(["ingest", "--json", *args], work, store)
    assert done.stdout.strip(), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


# --- case 22 -----------------------------------------------------------------------------------


def test_22_an_emptied_note_keeps_no_passages(embedder: Embedder, tmp_path: Path) -> None:
    work, store = tmp_path / "work", tmp_path / "store"
    shutil.copytree(case_dir("22") / "notes", work / "notes")
    status, first = cli_ingest(work, store, "notes")
    assert (status, first["files_new"]) == (0, 3), first
    # the author empties one note and deletes the body of the other (front matter stays)
    (work / "notes/todo.md").write_bytes(b"")
    (work / "notes/draft.md").write_text(
        "---\ntitle: 下書き（勾配ブースティング）\ntags: [下書き]\n---\n", encoding="utf-8"
    )
    status, second = cli_ingest(work, store, "notes")
    # an empty note is normal: warnings, exit status 0, and the old passages are gone
    assert status == 0, second
    assert (second["files_failed"], second["files_empty"], second["files_unchanged"]) == (0, 2, 1)
    empty = {w["path"] for w in second["warnings"] if w["warning"].startswith("empty")}
    assert empty == {"notes/todo.md", "notes/draft.md"}
    assert second["chunks_deleted"] == 2

    with opened(work, embedder, store, "cli", ingest_roots=[work]) as case:
        notes = case.notes()
        for emptied in ("notes/todo.md", "notes/draft.md"):
            assert notes.get(emptied, {"chunks": 0})["chunks"] == 0
        assert notes["notes/keep.md"]["chunks"] == 1
        for question in (
            "課題の締め切りは何曜日の何時？",
            "勾配ブースティングでは新しい木を何に当てはめる？",
        ):
            results = case.search(question, top_k=5)
            assert [r["source"] for r in results] == ["notes/keep.md"]  # all that is left
            for r in results:
                assert not any(word in r["text"] for word in ("締め切り", "金曜日", "残差"))
        assert {c.source for c in case.chunks()} == {"notes/keep.md"}


# --- case 26 -----------------------------------------------------------------------------------


async def until(
    probe: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], seconds: float
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        seen = await probe()
        if ok(seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(1)


def test_26_a_renamed_watched_folder_is_read_at_its_new_name(
    embedder: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work = tmp_path / "work"
    vault = work / "vault"
    shutil.copytree(case_dir("26") / "vault", vault)
    caplog.set_level(logging.INFO, logger="ingest.watch")
    before_names = {"vault/index.md", "vault/week1/cnn.md", "vault/week1/rnn.md"}
    after_names = {"vault/index.md", "vault/week01/cnn.md", "vault/week01/rnn.md"}

    with opened(
        work, embedder, tmp_path / "store", "watch", ingest_roots=[work], watch=[vault]
    ) as case:

        async def scenario() -> tuple[dict[str, int], dict[str, int], list[dict[str, Any]]]:
            app = create_app(case.parts.settings, case.parts)
            # the lifespan starts SHIORI_WATCH's watcher, as `shiori serve` does
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:

                    async def notes() -> dict[str, int]:
                        r = await http.get("/v1/notes")
                        assert r.status_code == 200, r.text
                        return {n["source"]: n["chunks"] for n in r.json()["notes"]}

                    before = await until(notes, lambda n: set(n) == before_names, 240)
                    # the first pass is done; a probe note proves the watcher now watches
                    probe = vault / "probe.md"
                    probe.write_text("# 確認\n\n監視の確認用。\n", encoding="utf-8")
                    await until(notes, lambda n: "vault/probe.md" in n, 60)
                    probe.unlink()
                    seen = await until(notes, lambda n: "vault/probe.md" not in n, 60)
                    assert set(seen) == before_names, seen

                    (vault / "week1").rename(vault / "week01")  # one folder event each way
                    after = await until(notes, lambda n: set(n) == after_names, 60)
                    r = await http.post(
                        "/v1/search",
                        json={"question": "畳み込み層 フィルタ 特徴マップ", "top_k": 3},
                    )
                    assert r.status_code == 200, r.text
                    return before, after, r.json()["results"]

        before, after, results = case.loop.run(scenario())

    assert before == dict.fromkeys(before_names, 1)
    assert after == dict.fromkeys(after_names, 1), after
    assert not any("/week1/" in s for s in after)
    top = results[0]
    assert (top["source"], top["lines"]) == ("vault/week01/cnn.md", [3, 4])
    assert top["text"].startswith("畳み込み層は")
    assert not any("/week1/" in r["source"] for r in results)
    # the watcher said what it forgot and why
    forgot = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("forgot vault/week1/")
    ]
    assert len(forgot) == 2, forgot


# --- case 29 -----------------------------------------------------------------------------------


def test_29_a_note_moved_within_its_folder_is_forgotten_at_its_old_path(
    embedder: Embedder, tmp_path: Path
) -> None:
    work, store = tmp_path / "work", tmp_path / "store"
    shutil.copytree(case_dir("29") / "notes", work / "notes")
    status, first = cli_ingest(work, store, "notes")
    assert (status, first["files_new"]) == (0, 2), first
    (work / "notes/transformer").mkdir()
    (work / "notes/attention-memo.md").rename(work / "notes/transformer/attention.md")

    status, second = cli_ingest(work, store, "notes")  # a plain re-ingest of the same folder
    assert status == 0, second
    assert (second["files_new"], second["files_deleted"], second["files_unchanged"]) == (1, 1, 1)
    assert second["forgotten"] == [
        {"path": "notes/attention-memo.md", "reason": "moved to notes/transformer/attention.md"}
    ]
    assert second["duplicates"] == []
    assert (second["embeddings_computed"], second["embeddings_reused"]) == (0, 1)  # desirable

    with opened(work, embedder, store, "cli", ingest_roots=[work]) as case:
        notes = case.notes()
        assert set(notes) == {"notes/rnn.md", "notes/transformer/attention.md"}
        assert all((work / source).is_file() for source in notes)
        results = case.search("内積を何で割ってからソフトマックスを取る？", top_k=5)
        assert all(r["source"] != "notes/attention-memo.md" for r in results)
        assert all((work / r["source"]).is_file() for r in results)
        root = next(r for r in results if "平方根" in r["text"])
        assert (root["source"], root["lines"]) == ("notes/transformer/attention.md", [3, 3])
