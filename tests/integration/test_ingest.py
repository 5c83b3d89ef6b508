"""End-to-end ingestion with the real embedding model and real embedded Qdrant."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import Ingestor, IngestReport
from rag.retrieve import Filters, Retriever
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client

pytestmark = pytest.mark.slow

SENTENCE_END = re.compile(r"[。！？.!?)）」』\]`*:：]$")


def make_index(settings: Settings, embedder: Embedder) -> NoteIndex:
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    return index


def ingest(settings: Settings, embedder: Embedder, *paths: Path, **kw: Any) -> IngestReport:
    index = make_index(settings, embedder)
    try:
        return Ingestor(settings, index, embedder).run(list(paths), **kw)
    finally:
        index.client.close()


def snapshot(settings: Settings, embedder: Embedder) -> tuple[list[tuple[str, int, str]], int]:
    """(path, chunk_index, content_hash) of the live chunks, and the count of all points."""
    index = make_index(settings, embedder)
    try:
        live = sorted((c.path, c.chunk_index, c.content_hash) for c in index.chunks())
        return live, index.count(live_only=False)
    finally:
        index.client.close()


def few_notes(root: Path) -> list[Path]:
    return [root / n for n in ("05-gemma.md", "09-lora.md", "10-qlora-en.md")]


def test_chunks_carry_exact_citation_metadata(
    embedder: Embedder, notes_copy: Path, store_settings: Settings
) -> None:
    report = ingest(store_settings, embedder, notes_copy)
    assert report.files_seen == 15 and report.files_new == 15 and report.files_failed == 0
    assert report.embeddings_computed == report.chunks_written > 15

    index = make_index(store_settings, embedder)
    chunks = index.chunks()
    index.client.close()
    assert len(chunks) == report.chunks_written
    assert len({(c.path, c.chunk_index) for c in chunks}) == len(chunks)
    by_kind = Counter(c.kind for c in chunks)
    assert by_kind["markdown"] > 0 and by_kind["pdf"] > 0

    for chunk in chunks:
        if chunk.kind != "markdown":
            continue
        text = Path(chunk.path).read_text(encoding="utf-8")
        lines = text.splitlines()
        # the chunk is the exact slice of the file (after a split table's repeated header),
        # and its lines are the lines it spans
        body = chunk.text[chunk.lead_chars + 1 :] if chunk.lead_chars else chunk.text
        assert text[chunk.char_start : chunk.char_end] == body
        assert text.count("\n", 0, chunk.char_start) + 1 == chunk.line_start
        assert text.count("\n", 0, chunk.char_end - 1) + 1 == chunk.line_end
        assert body.splitlines()[0].strip() in lines[chunk.line_start - 1]
        assert body.splitlines()[-1].strip() in lines[chunk.line_end - 1]
        # the heading path is the headings in force at the chunk's first line
        stack: list[tuple[int, str]] = []
        for line in lines[: chunk.line_start - 1]:
            m = re.match(r"^(#{1,6})\s+(.+?)\s*$", line)
            if m:
                level = len(m.group(1))
                stack = [(lv, h) for lv, h in stack if lv < level] + [(level, m.group(2))]
        assert chunk.headings == [h for _, h in stack]
        assert chunk.title == stack[0][1]
        # never ends inside a sentence: it ends a sentence or a line
        after = text[chunk.char_end : chunk.char_end + 1]
        assert after in ("", "\n", " ") or SENTENCE_END.search(chunk.text), chunk.text[-40:]

    pdf = [c for c in chunks if c.kind == "pdf"]
    assert all(c.page in (1, 2) for c in pdf) and {c.page for c in pdf} == {1, 2}


def test_reingest_is_incremental_and_prune_deletes(
    embedder: Embedder, notes_copy: Path, store_settings: Settings
) -> None:
    files = few_notes(notes_copy)
    first = ingest(store_settings, embedder, *files)
    assert first.files_new == 3 and first.embeddings_computed == first.chunks_written

    again = ingest(store_settings, embedder, *files)
    assert again.files_unchanged == 3
    assert again.embeddings_computed == 0 and again.chunks_written == 0

    # change one sentence of the LoRA note: only the touched chunk is embedded again
    lora = notes_copy / "09-lora.md"
    old_text = lora.read_text(encoding="utf-8")
    lines = old_text.splitlines(keepends=True)
    target = next(i for i, ln in enumerate(lines) if "。" in ln and not ln.startswith("#"))
    lines[target] = lines[target].replace("。", "。この一文は更新テストで追記した。", 1)
    lora.write_text("".join(lines), encoding="utf-8")
    before, _ = snapshot(store_settings, embedder)
    changed = ingest(store_settings, embedder, *files)
    assert changed.files_updated == 1 and changed.files_unchanged == 2
    lora_chunks = [c for c in before if c[0] == str(lora)]
    assert 1 <= changed.embeddings_computed < len(lora_chunks)
    assert changed.embeddings_reused == changed.chunks_written - changed.embeddings_computed
    assert changed.chunks_deleted == len(lora_chunks)
    index = make_index(store_settings, embedder)
    texts = [c.text for c in index.chunks(path=str(lora))]
    assert index.count(live_only=False) == index.count()  # no leftovers of the old version
    index.client.close()
    assert any("この一文は更新テストで追記した" in t for t in texts)

    # a deleted file stays indexed while only other paths are ingested; the next ingest of
    # its folder forgets it (no --prune needed) and names it
    gemma = notes_copy / "05-gemma.md"
    gemma.unlink()
    kept = ingest(store_settings, embedder, notes_copy / "09-lora.md")
    assert kept.files_deleted == 0
    assert any(p == str(gemma) for p, _, _ in snapshot(store_settings, embedder)[0])
    pruned = ingest(store_settings, embedder, notes_copy)
    assert pruned.files_deleted == 1 and pruned.chunks_deleted > 0
    assert [f["reason"] for f in pruned.forgotten] == ["file is gone"]
    live, total = snapshot(store_settings, embedder)
    assert all(p != str(gemma) for p, _, _ in live) and total == len(live)
    index = make_index(store_settings, embedder)
    assert str(gemma) not in index.file_records()
    index.client.close()


class Crash(RuntimeError):
    pass


def assert_only_whole_documents_visible(settings: Settings, embedder: Embedder) -> set[str]:
    """Every file with live chunks shows one whole generation; returns the recorded files.

    A kill between publishing the chunks and writing the file records (two shards) leaves a
    whole live document without its record; the next run re-publishes it."""
    index = make_index(settings, embedder)
    try:
        records = index.file_records()
        chunks = index.chunks()
    finally:
        index.client.close()
    live = Counter(c.path for c in chunks)
    assert set(records) <= set(live)
    for path, n in live.items():
        mine = [c for c in chunks if c.path == path]
        assert len({c.generation for c in mine}) == 1, path
        assert sorted(c.chunk_index for c in mine) == list(range(n)), path
        if path in records:
            assert n == records[path].chunks, path
    return set(records)


def test_ingest_failing_mid_file_converges_without_duplicates(
    embedder: Embedder, notes_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = few_notes(notes_copy)
    crashed = Settings(qdrant=str(tmp_path / "crashed"), collection="c", ingest_group_chunks=1)
    clean = Settings(qdrant=str(tmp_path / "clean"), collection="c")

    # fail after the first file is published, half-way through storing the second one
    original_write = NoteIndex.write_chunks
    original_publish = NoteIndex.publish
    published: list[str] = []

    def write_then_die(self: NoteIndex, chunks: Any, vectors: Any, batch_size: int = 256) -> int:
        if published:
            original_write(self, chunks[: len(chunks) // 2], vectors[: len(chunks) // 2], 1)
            raise Crash("failed mid-write")
        return original_write(self, chunks, vectors, batch_size)

    def publish(self: NoteIndex, records: Any) -> int:
        published.extend(r.path for r in records)
        return original_publish(self, records)

    monkeypatch.setattr(NoteIndex, "write_chunks", write_then_die)
    monkeypatch.setattr(NoteIndex, "publish", publish)
    with pytest.raises(Crash):
        ingest(crashed, embedder, *files)
    monkeypatch.undo()

    assert assert_only_whole_documents_visible(crashed, embedder) == set(published)
    assert len(published) == 1
    rerun = ingest(crashed, embedder, *files)
    assert rerun.files_unchanged == 1 and rerun.files_new == 2
    ingest(clean, embedder, *files)
    live_after, total_after = snapshot(crashed, embedder)
    assert (live_after, total_after) == snapshot(clean, embedder)
    assert total_after == len(live_after) == len(set(live_after))


def test_ingest_killed_by_sigkill_converges(
    embedder: Embedder, notes_copy: Path, tmp_path: Path
) -> None:
    """A real `shiori ingest` process is killed (SIGKILL) once it has started writing."""
    store = tmp_path / "killed"
    env = {**os.environ, "SHIORI_QDRANT": str(store), "SHIORI_COLLECTION": "k",
           "SHIORI_INGEST_GROUP_CHUNKS": "4"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "shiori.cli", "ingest", "--quiet", str(notes_copy)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # the file records' collection is created last, just before the first chunks are embedded
    # and written (groups of 4 chunks): from then on the process is writing
    ready = store / "edge" / "k__files.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not ready.exists():
        time.sleep(0.02)
    # then wait for the first chunks to reach the chunks shard (its files change), however
    # long the embedding model takes to load on a busy machine (a fixed 3 s was not enough)
    since = time.time()
    shard = store / "edge" / "k"

    def written() -> bool:
        try:
            return any(f.stat().st_mtime > since for f in shard.rglob("*") if f.is_file())
        except OSError:  # a file replaced while we looked: look again
            return False

    while time.monotonic() < deadline and proc.poll() is None and not written():
        time.sleep(0.05)
    time.sleep(1)
    assert proc.poll() is None, "the ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    settings = Settings(qdrant=str(store), collection="k")
    visible = assert_only_whole_documents_visible(settings, embedder)
    assert len(visible) < 15  # it really was cut short
    killed = make_index(settings, embedder)
    assert killed.count(live_only=False) > 0  # … after it had written chunks
    killed.client.close()
    # `shiori store check`: a kill leaves at most leftovers and a record not yet written,
    # never a half-published note; --repair settles both
    found = store_check(env)
    assert {p["kind"] for p in found["problems"]} <= {"unpublished", "missing_record"}, found
    repaired = store_check(env, "--repair")
    assert repaired["after_repair"] is None or repaired["after_repair"]["ok"], repaired
    assert store_check(env)["ok"]
    visible = assert_only_whole_documents_visible(settings, embedder)
    rerun = ingest(settings, embedder, notes_copy)
    assert rerun.files_unchanged == len(visible)
    live, total = snapshot(settings, embedder)
    assert total == len(live) == len(set(live))
    assert assert_only_whole_documents_visible(settings, embedder) == {
        str(p)
        for p in notes_copy.rglob("*")
        if p.suffix in (".md", ".pdf") and "_src" not in p.parts and p.name != "README.md"
    }
    assert store_check(env)["ok"]


def store_check(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "shiori.cli", "store", "check", "--json", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] or (report["after_repair"] or {}).get("ok") else 1)
    return report


def test_unreadable_files_are_skipped_with_a_reason(
    embedder: Embedder, tmp_path: Path, store_settings: Settings
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# 良いノート\n\nこれは読めるノートです。\n", encoding="utf-8")
    (folder / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")
    (folder / "picture.png").write_bytes(b"\x89PNG")
    report = ingest(store_settings, embedder, folder)
    assert report.files_new == 1 and report.files_failed == 2
    assert report.files_unsupported == 1
    reasons = {Path(f["path"]).name: f["error"] for f in report.failures}
    assert "binary" in reasons["binary.md"]
    assert "PDF" in reasons["broken.pdf"]
    # an empty note is normal in a notebook: a warning, not a failure
    assert report.files_empty == 1
    warnings = {Path(w["path"]).name: w["warning"] for w in report.warnings}
    assert warnings["empty.txt"].startswith("empty")


def test_retriever_finds_the_right_note(notes_index: NoteIndex, embedder: Embedder) -> None:
    """What ingest wrote is what the service reads: the hybrid query finds the right note."""
    retriever = Retriever(notes_index, embedder)
    questions = {
        "Gemma が公開されたのはいつですか？": "05-gemma.md",
        "QLoRA quantises the frozen base model to how many bits?": "10-qlora-en.md",
        "拡散モデルで潜在空間を使う利点は？": "07-diffusion-latent.md",
    }
    for question, expected in questions.items():
        hits = retriever.search(question, top_k=3)
        assert Path(hits[0].chunk.path).name == expected, question
    only_lora = Filters(sources=(hits[0].chunk.source.replace("07-diffusion-latent", "09-lora"),))
    restricted = retriever.search("拡散モデルで潜在空間を使う利点は？", top_k=3, filters=only_lora)
    assert restricted and all(Path(h.chunk.path).name == "09-lora.md" for h in restricted)


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shiori.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_json_summary_and_lock_message(
    tmp_path: Path, notes_copy: Path, embedder: Embedder
) -> None:
    env = {"SHIORI_QDRANT": str(tmp_path / "store"), "SHIORI_COLLECTION": "cli"}
    done = run_cli(["ingest", "--json", str(notes_copy / "05-gemma.md")], env, tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    for key in (
        "files_seen",
        "files_new",
        "files_updated",
        "files_unchanged",
        "files_deleted",
        "files_failed",
        "chunks_written",
        "chunks_deleted",
        "embeddings_computed",
        "seconds",
    ):
        assert key in summary
    assert summary["files_new"] == 1 and summary["chunks_written"] > 0

    holder = open_client(Settings(qdrant=env["SHIORI_QDRANT"]))  # like a running server
    try:
        locked = run_cli(["ingest", str(notes_copy)], env, tmp_path)
    finally:
        holder.close()
    assert locked.returncode == 3
    message = " ".join(locked.stderr.split())
    assert "in use by another process" in message and "SHIORI_QDRANT" in message

    missing = run_cli(["ingest", str(tmp_path / "nope")], env, tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
