"""The ingest cases of issue 13 (`../shared/cases/ingest/NN-*/`), each with its README's values,
through the real parts: the real embedding model, embedded Qdrant, the HTTP API in process
(httpx over ASGI), `shiori ingest` as a process where the exit status matters, and the real vLLM
CPU server where the README asks about answers.

Each case is ingested from its own folder (the working directory, so sources read `notes/…` as
in the READMEs) into a fresh store. Case 06 belongs to the conversation issue.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.pipeline import IngestReport
from service.app import create_app
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from tests.conftest import REPO, SHARED

pytestmark = pytest.mark.slow
CASES = SHARED / "cases" / "ingest"


def case_dir(number: str) -> Path:
    (found,) = CASES.glob(f"{number}-*")
    return found


class Case:
    """One case's notes in a fresh store, and the API over them."""

    def __init__(
        self, parts: Components, report: IngestReport, folder: Path, loop: asyncio.Runner
    ) -> None:
        self.parts, self.report, self.folder, self.loop = parts, report, folder, loop

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            app = create_app(self.parts.settings, self.parts)
            app.state.components = self.parts  # the ASGI transport does not run the lifespan
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shiori") as http:
                return await http.request(method, path, timeout=600, **kw)

        # one loop per case, as in a server: the shared LLM client's connections belong to it
        return self.loop.run(go())

    def search(self, question: str, top_k: int = 5, **filters: Any) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"question": question, "top_k": top_k}
        if filters:
            body["filters"] = filters
        response = self.request("POST", "/v1/search", json=body)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def notes(self) -> dict[str, dict[str, Any]]:
        response = self.request("GET", "/v1/notes")
        assert response.status_code == 200, response.text
        return {n["source"]: n for n in response.json()["notes"]}

    def chunks(self) -> list[Any]:
        return self.parts.index.chunks()

    def chunk_with_line(self, source: str, line: int) -> Any:
        found = [
            c for c in self.chunks() if c.source == source and c.line_start <= line <= c.line_end
        ]
        assert found, (source, line, [(c.source, c.line_start, c.line_end) for c in self.chunks()])
        return found[0]


@contextmanager
def opened(
    folder: Path, embedder: Embedder, store: Path, collection: str, **settings: Any
) -> Iterator[Case]:
    """A Case over the store at ``store`` (empty, or written by the CLI or a watcher), the
    working directory being ``folder`` (sources are shown relative to it); nothing ingested
    here. ``settings`` are the service's (uploads: ``folder``/uploads unless given)."""
    settings.setdefault("uploads_dir", folder / "uploads")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        s = Settings(qdrant=str(store), collection=collection, **settings)
        index = NoteIndex(open_client(s), s, embedder.dimension)
        index.ensure_collections()
        parts = Components.assemble(s, embedder, index)
        with asyncio.Runner() as loop:
            try:
                yield Case(parts, IngestReport(), folder, loop)
            finally:
                loop.run(parts.aclose())
    finally:
        os.chdir(cwd)


@contextmanager
def ingested(
    number: str, embedder: Embedder, tmp_path: Path, llm: Settings | None = None
) -> Iterator[Case]:
    folder = case_dir(number)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        settings = Settings(
            qdrant=str(tmp_path / "store"),
            collection=f"case{number}",
            uploads_dir=tmp_path / "uploads",
            ingest_roots=[folder],
            **({"llm_url": llm.llm_url, "llm_api_key": llm.llm_api_key} if llm else {}),
        )
        index = NoteIndex(open_client(settings), settings, embedder.dimension)
        index.ensure_collections()
        parts = Components.assemble(settings, embedder, index)
        report = parts.ingestor.run([folder / "notes"])
        with asyncio.Runner() as loop:
            try:
                yield Case(parts, report, folder, loop)
            finally:
                loop.run(parts.aclose())
    finally:
        os.chdir(cwd)


def run_cli(args: list[str], cwd: Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIORI_QDRANT": str(store), "SHIORI_COLLECTION": "cli",
           "PYTHONPATH": str(REPO)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "shiori.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


# --- structure --------------------------------------------------------------------------------


def test_02_code_fences_of_any_length_and_character(embedder: Embedder, tmp_path: Path) -> None:
    with ingested("02", embedder, tmp_path) as case:
        chunks = case.chunks()
        for c in chunks:
            assert "ここはコメントで見出しではない" not in c.heading
            assert "これも見出しではない" not in c.heading
        venv = case.chunk_with_line("notes/setup.md", 16)
        assert (venv.heading, venv.line_start, venv.line_end) == ("環境構築メモ > 仮想環境", 16, 16)
        assert case.chunk_with_line("notes/setup.md", 26).heading == "環境構築メモ > シェルの例"
        for line in range(7, 13):
            code = case.chunk_with_line("notes/setup.md", line)
            assert code.heading == "環境構築メモ > コードブロックの書き方"
        hits = case.search("仮想環境の作り方")
        top = next(h for h in hits if "python -m venv" in h["text"])
        assert (top["heading"], top["lines"]) == ("環境構築メモ > 仮想環境", [16, 16])


def test_03_front_matter(embedder: Embedder, tmp_path: Path) -> None:
    with ingested("03", embedder, tmp_path) as case:
        notes = case.notes()
        assert notes["notes/linear-algebra.md"]["title"] == "線形代数の復習ノート"
        assert notes["notes/probability.md"]["title"] == "確率の基礎"
        assert notes["notes/linear-algebra.md"]["tags"] == ["数学", "線形代数"]
        for c in case.chunks():
            assert "下書き" not in c.title and "下書き" not in c.heading
            assert "title:" not in c.text and "---" not in c.text  # front matter is not text
        eigen = case.chunk_with_line("notes/linear-algebra.md", 12)
        assert (eigen.heading, eigen.line_start, eigen.line_end) == ("固有値", 12, 12)
        assert case.chunk_with_line("notes/linear-algebra.md", 8).heading == ""
        assert case.chunk_with_line("notes/probability.md", 5).line_start == 5
        # tags and the title are filters
        tagged = case.search("行列", tags=["線形代数"])
        assert tagged and {h["source"] for h in tagged} == {"notes/linear-algebra.md"}
        titled = case.search("確率", title="確率の基礎")
        assert titled and {h["source"] for h in titled} == {"notes/probability.md"}


def test_04_setext_headings(embedder: Embedder, tmp_path: Path) -> None:
    with ingested("04", embedder, tmp_path) as case:
        assert case.notes()["notes/regression.md"]["title"] == "線形回帰のまとめ"
        assert case.chunk_with_line("notes/regression.md", 4).heading == "線形回帰のまとめ"
        ridge = case.chunk_with_line("notes/regression.md", 9)
        assert (ridge.heading, ridge.line_start, ridge.line_end) == (
            "線形回帰のまとめ > 正則化",
            9,
            9,
        )
        assert "---" not in ridge.text
        r2 = case.chunk_with_line("notes/regression.md", 16)
        assert (r2.heading, r2.line_start, r2.line_end) == ("線形回帰のまとめ > 評価指標", 16, 16)
        headings = {c.heading for c in case.chunks()}
        assert headings == {
            "線形回帰のまとめ", "線形回帰のまとめ > 正則化", "線形回帰のまとめ > 評価指標"
        }  # fmt: skip


def test_05_a_split_table_repeats_its_header(embedder: Embedder, tmp_path: Path) -> None:
    header = "| 週 | 学習時間(分) | 小テスト(点) | 復習回数 |"
    with ingested("05", embedder, tmp_path) as case:
        table = [c for c in case.chunks() if "| 第" in c.text]
        assert len(table) >= 2  # the table is split at the default budget
        for c in table:
            assert header in c.text
            assert c.text.startswith(header) or c.line_start < 5
        week37 = next(c for c in table if "| 第37週 |" in c.text)
        assert week37.line_start <= 43 <= week37.line_end
        lines = (case.folder / "notes/study-log.md").read_text(encoding="utf-8").split("\n")
        body = week37.text[week37.lead_chars + 1 :] if week37.lead_chars else week37.text
        assert body == "\n".join(lines[week37.line_start - 1 : week37.line_end])


# --- files and names --------------------------------------------------------------------------


def test_07_copies_of_a_note_fill_one_place(embedder: Embedder, tmp_path: Path) -> None:
    with ingested("07", embedder, tmp_path) as case:
        assert case.report.duplicates == [
            {"path": "notes/backup/activation.md", "same_as": "notes/2024/activation.md"}
        ]
        assert {"notes/2024/activation.md", "notes/backup/activation.md"} <= set(case.notes())
        results = case.search("dying ReLU とは何ですか？", top_k=4)
        texts = [r["text"] for r in results]
        assert len(texts) == 4 and len(set(texts)) == 4
        assert sum("dying ReLU" in t for t in texts) == 1


def test_08_nfd_file_names(embedder: Embedder, tmp_path: Path) -> None:
    folder = case_dir("08")
    body = json.loads((folder / "filter-nfc.json").read_text(encoding="utf-8"))
    with ingested("08", embedder, tmp_path) as case:
        # A: the typed (NFC) name filters; sources are shown in NFC
        response = case.request("POST", "/v1/search", json=body)
        results = response.json()["results"]
        assert len(results) >= 1
        for r in results:
            assert r["source"] == "notes/データ拡張.md"
            assert unicodedata.is_normalized("NFC", r["source"])
        # B: the same note uploaded from a Mac (NFD name) and from Windows (NFC) is one note
        reports = []
        for form in ("upload-nfd", "upload-nfc"):
            (upload,) = (folder / form).iterdir()
            files = {"file": (upload.name, upload.read_bytes(), "text/markdown")}
            answer = case.request("POST", "/v1/ingest", files=files)
            assert answer.status_code == 200, answer.text
            reports.append(answer.json())
        assert reports[0]["files_new"] == 1
        assert reports[1]["files_new"] == 0
        assert reports[1]["files_unchanged"] + reports[1]["files_updated"] == 1
        uploads = [s for s in case.notes() if s.startswith("uploads/")]
        assert uploads == ["uploads/ドロップアウト.md"]
        assert case.notes()["uploads/ドロップアウト.md"]["chunks"] == 1
        assert len(list((tmp_path / "uploads").iterdir())) == 1
        hits = [h for h in case.search("ドロップアウト") if "ドロップアウト" in h["text"]]
        assert len(hits) == 1


def test_09_utf16_with_bom(embedder: Embedder, tmp_path: Path) -> None:
    folder = case_dir("09")
    done = run_cli(["ingest", "--json", "notes"], folder, tmp_path / "cli-store")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["files_new"], summary["files_failed"]) == (2, 0)
    with ingested("09", embedder, tmp_path) as case:
        bayes = "事後確率は、尤度と事前確率の積を周辺尤度で割ったものである。"
        mle = "最尤推定は、観測データが得られる確率を最大にするパラメータを選ぶ方法である。"
        hits = {h["source"]: h for h in case.search("事後確率 最尤推定", top_k=5)}
        assert hits["notes/bayes-utf16le.txt"]["text"] == bayes
        assert hits["notes/bayes-utf16le.txt"]["lines"] == [3, 3]
        assert hits["notes/mle-utf16be.md"]["text"] == mle
        assert hits["notes/mle-utf16be.md"]["heading"] == "最尤推定"
        assert hits["notes/mle-utf16be.md"]["lines"] == [3, 3]
        for c in case.chunks():
            assert "\r" not in c.text and "\x00" not in c.text and "\ufeff" not in c.text
    # a real binary file renamed .txt is still refused
    png = tmp_path / "binary" / "image.txt"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    refused = run_cli(["ingest", "--json", str(png)], tmp_path, tmp_path / "cli-store")
    assert refused.returncode == 1
    assert "binary" in json.loads(refused.stdout)["failures"][0]["error"]


def test_11_any_line_ending_gives_the_same_lines(embedder: Embedder, tmp_path: Path) -> None:
    expected = [
        ("ニュートンの第一法則は", [3, 3], "古典力学"),
        ("運動量は質量と速度の積", [7, 7], "古典力学 > 運動量"),
        ("仕事は力と移動距離の積", [11, 11], "古典力学 > 仕事"),
    ]
    with ingested("11", embedder, tmp_path) as case:
        for name in ("mechanics-cr.md", "mechanics-crlf.md", "mechanics-lf.md"):
            source = f"notes/{name}"
            for start, lines, heading in expected:
                chunk = next(c for c in case.chunks() if c.source == source and start in c.text)
                assert [chunk.line_start, chunk.line_end] == lines, (source, start)
                assert chunk.heading == heading
                assert "\r" not in chunk.text
            hits = case.search("運動量とは", sources=[source])
            assert hits[0]["lines"] == [7, 7]


def test_12_full_width_periods_end_sentences(embedder: Embedder, tmp_path: Path) -> None:
    source = "notes/numerical-analysis.md"
    with ingested("12", embedder, tmp_path) as case:
        line5 = (case.folder / source).read_text(encoding="utf-8").split("\n")[4]
        assert len(line5) == 796
        assert case.notes()[source]["chunks"] >= 3
        newton = [c for c in case.chunks() if c.source == source and c.line_start == 5]
        assert len(newton) >= 2
        for c in newton:
            assert c.text != line5
            assert c.text.endswith("．")
            assert (c.heading, c.line_end) == ("数値解析ノート > ニュートン法", 5)
        assert max(embedder.count_tokens([c.text for c in newton])) <= 320
        hits = case.search("割線法の収束の次数は？")
        secant = next(h for h in hits if "1.618" in h["text"])
        assert secant["lines"] == [5, 5] and secant["text"] != line5


def test_13_hidden_html_is_not_indexed(embedder: Embedder, tmp_path: Path) -> None:
    with ingested("13", embedder, tmp_path) as case:
        chunks = case.chunks()
        for c in chunks:
            for hidden in ("1987", "なめらか階段関数", "常に 1 を返す"):
                assert hidden not in c.text
            assert not any(c.line_start <= n <= c.line_end for n in (10, 11, 12))
        lines = {(c.line_start, c.line_end) for c in chunks}
        assert {(9, 9), (13, 13)} <= lines
        assert {c.heading for c in chunks} == {"GELU のメモ"}


def test_14_encrypted_pdfs(embedder: Embedder, tmp_path: Path) -> None:
    folder = case_dir("14")
    done = run_cli(["ingest", "--json", "notes"], folder, tmp_path / "cli-store")
    assert done.returncode == 1  # the one password-locked file
    summary = json.loads(done.stdout)
    assert summary["files_new"] == 4
    (failure,) = summary["failures"]
    assert failure["path"] == "notes/user-password.pdf"
    assert "encrypted with a password" in failure["error"]
    assert not re.search(r"[A-Z][a-z]+Error|scanned|missing", failure["error"])
    with ingested("14", embedder, tmp_path) as case:
        for variant in ("plain", "owner-only-rc4", "owner-only-aes128", "owner-only-aes256"):
            hits = case.search("prior probability of the disease", sources=[f"notes/{variant}.pdf"])
            assert len(hits) >= 1
            assert hits[0]["page"] == 1
            assert "0.01" in hits[0]["text"] and f"Variant: {variant}" in hits[0]["text"]


# --- removing notes -------------------------------------------------------------------------


def test_delete_notes_through_the_api(embedder: Embedder, tmp_path: Path) -> None:
    with ingested("07", embedder, tmp_path) as case:
        response = case.request(
            "DELETE", "/v1/notes", params=[("source", "notes/backup"), ("source", "nope.md")]
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["removed"] == [{"source": "notes/backup/activation.md", "chunks": 3}]
        assert body["not_found"] == ["nope.md"]
        assert "notes/backup/activation.md" not in case.notes()
        missing = case.request("DELETE", "/v1/notes", params={"source": "nope.md"})
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found"
        none = case.request("DELETE", "/v1/notes")
        assert none.status_code == 422


# --- answers, with the real vLLM server ---------------------------------------------------------


def ask(case: Case, question: str) -> dict[str, Any]:
    response = case.request("POST", "/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    texts = [c["text"] for c in body["contexts"]]
    assert len(texts) == len(set(texts))  # no passage twice, whatever the case
    return body


def cited(body: dict[str, Any], source: str) -> list[dict[str, Any]]:
    assert not body["abstained"], body
    return [c for c in body["citations"] if c["source"] == source]


def test_answers_03_04_cite_the_right_section(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    with ingested("03", embedder, tmp_path / "03", llm_settings) as case:
        body = ask(case, "固有値とは何ですか？")
        assert [1 for c in cited(body, "notes/linear-algebra.md") if c["lines"] == [12, 12]]
    with ingested("04", embedder, tmp_path / "04", llm_settings) as case:
        body = ask(case, "ラッソ回帰にはどんな特徴がありますか？")
        lasso = cited(body, "notes/regression.md")
        assert [
            c for c in lasso if c["lines"] == [9, 9] and c["heading"] == "線形回帰のまとめ > 正則化"
        ]


@pytest.mark.parametrize(
    ("question", "value"),
    [
        ("第37週の小テストは何点でしたか？", "72"),
        ("第37週の学習時間は何分でしたか？", "85"),
        ("第37週の復習回数は何回でしたか？", "4"),
    ],
)
def test_answers_05_read_table_cells_by_their_column(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings, question: str, value: str
) -> None:
    with ingested("05", embedder, tmp_path, llm_settings) as case:
        body = ask(case, question)
        numbers = re.findall(r"\d+", re.sub(r"\[\d+\]|第\d+週", "", body["answer"]))
        assert value in numbers, body["answer"]
        spans = [c["lines"] for c in cited(body, "notes/study-log.md")]
        assert any(a <= 43 <= b for a, b in spans), spans


def test_answers_07_cite_one_copy_once(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    with ingested("07", embedder, tmp_path, llm_settings) as case:
        body = ask(case, "dying ReLU とは何ですか？")
        copies = cited(body, "notes/2024/activation.md") + cited(body, "notes/backup/activation.md")
        assert [c for c in copies if c["lines"] == [5, 6]]
        citations = [c["text"] for c in body["citations"]]
        assert len(citations) == len(set(citations))
        # the mechanism (gradient 0 for negative inputs) or its effect (the neuron stops
        # learning): the CPU model's second reading states the effect in its own words
        assert "0" in body["answer"]
        assert "勾配" in body["answer"] or "学習しなく" in body["answer"], body["answer"]


def test_answers_12_cite_a_sentence_not_the_paragraph(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    source = "notes/numerical-analysis.md"
    with ingested("12", embedder, tmp_path, llm_settings) as case:
        line5 = (case.folder / source).read_text(encoding="utf-8").split("\n")[4]
        far = ask(case, "初期値が解から遠いときはどうすればよいですか？")
        assert "二分法" in far["answer"] and "ニュートン法" in far["answer"], far["answer"]
        secant = ask(case, "割線法の収束の次数はおよそいくつですか？")
        assert "1.618" in secant["answer"], secant["answer"]
        for body, needle in ((far, "二分法で解を含む区間"), (secant, "1.618")):
            cites = cited(body, source)
            assert [c for c in cites if c["lines"] == [5, 5] and needle in c["text"]]
            assert all(c["text"] != line5 for c in cites)


def test_answers_13_never_come_from_hidden_html(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    with ingested("13", embedder, tmp_path, llm_settings) as case:
        when = ask(case, "GELU はいつ考案されましたか？")
        assert when["abstained"] and "1987" not in when["answer"]
        alias = ask(case, "GELU の別名は何ですか？")
        assert alias["abstained"] and "なめらか階段関数" not in alias["answer"]
        models = ask(case, "GELU はどんなモデルで使われていますか？")
        assert "BERT" in models["answer"] and "GPT" in models["answer"]
        assert [c for c in cited(models, "notes/gelu.html") if c["lines"] == [13, 13]]
