"""The ingest cases of issue 25 about what notes hold (footnotes, pasted images, PDF pages whose
text cannot be extracted), each with its README's values, through the real parts: the real
embedding model, the embedded store, the ingest report and the HTTP API in process; the answers
(the READMEs' "B" parts) with the real vLLM CPU server.

Each case is ingested from its own folder (`../shared/cases/ingest/NN-*/`, the working
directory, so sources read `notes/…` as in the READMEs) into a fresh store, with the helpers of
`tests.integration.test_ingest_cases`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shiori.config import Settings
from shiori.embedding import Embedder
from tests.integration.test_ingest_cases import Case, ask, case_dir, cited, ingested, opened

pytestmark = pytest.mark.slow

CONTROL = re.compile("[\x00-\x08\x0e-\x1f]")
BASE64_PAYLOAD = re.compile(r"base64,[A-Za-z0-9+/=]{100}")
B64_RUN = re.compile(r"[A-Za-z0-9+/=]{100,}")


def note_lines(case: Case, source: str) -> list[str]:
    return (case.folder / source).read_text(encoding="utf-8").split("\n")


def holding(results: list[dict[str, Any]], line: int, text: str) -> list[dict[str, Any]]:
    """The results whose lines cover ``line`` and whose text holds ``text``."""
    return [r for r in results if r["lines"][0] <= line <= r["lines"][1] and text in r["text"]]


def warnings_for(case: Case, source: str) -> list[str]:
    return [w["warning"] for w in case.report.warnings if w["path"] == source]


# --- 24: footnote definitions -------------------------------------------------------------------


def test_24_footnotes_are_indexed_and_cited_with_their_lines(
    embedder: Embedder, tmp_path: Path
) -> None:
    source = "notes/attention.md"
    with ingested("24", embedder, tmp_path) as case:
        lines = note_lines(case, source)
        results = case.search("位置符号化 正弦波 学習 パラメータ 出典 論文 計算量", top_k=20)
        assert {r["source"] for r in results} == {source}
        for line, start, section in (
            (12, "出典はVaswani", "Transformer"),
            (13, "原論文の位置符号化は", "Transformer"),
            (14, "系列長をn", "計算量"),
        ):
            # the footnote's text, as the note writes it after `[^id]: `
            text = lines[line - 1].split("]: ", 1)[1]
            assert text.startswith(start)
            found = holding(results, line, text)
            assert found, (line, [(r["lines"], r["heading"]) for r in results])
            # under the heading of the section that refers to it (the README allows this or
            # where it is written): "原論文" means the Transformer paper only there
            assert {r["heading"] for r in found} == {f"注意機構のまとめ > {section}"}
        # the body passages are still there, under their own headings
        assert holding(results, 5, "自己注意だけで系列を処理する")[0]["heading"] == (
            "注意機構のまとめ > Transformer"
        )


def test_answers_24_the_year_comes_from_a_footnote(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    source = "notes/attention.md"
    with ingested("24", embedder, tmp_path, llm_settings) as case:
        year = ask(case, "Transformer の原論文は何年に発表されましたか？")
        # what ingest owes: the footnote (line 12) is retrieved and handed to the model
        contexts = [c for c in year["contexts"] if c["source"] == source]
        assert [c for c in contexts if c["lines"][0] <= 12 <= c["lines"][1]], contexts
        # (before footnotes took the heading path of their reference, the right draft
        # "Transformer の原論文は2017年に…" was withdrawn: the passage, under 計算量, never named
        # Transformer)
        shown = {k: year.get(k) for k in ("abstained", "reason", "draft", "unsupported")}
        assert not year["abstained"], shown
        assert "2017" in year["answer"], year["answer"]
        spans = [c["lines"] for c in cited(year, source)]
        assert any(a <= 12 <= b for a, b in spans), spans


def test_answers_24_no_learned_parameters_comes_from_a_footnote(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    source = "notes/attention.md"
    with ingested("24", embedder, tmp_path, llm_settings) as case:
        body = ask(case, "原論文の位置符号化には学習するパラメータがありますか？")
        # what ingest owes: the footnote (line 13) is retrieved and handed to the model
        contexts = [c for c in body["contexts"] if c["source"] == source]
        assert [c for c in contexts if c["lines"][0] <= 13 <= c["lines"][1]], contexts
        if body["abstained"] and body["reason"] == "unsupported":
            # seen once (bf16 CPU model): the draft "はい、…パラメータを持たない。" (yes + no)
            # was withdrawn by the grounding check; the evidence was there
            pytest.xfail(f"the answer was withdrawn as unsupported: {body.get('draft')!r}")
        assert re.search(r"ない|ありません|いいえ|固定|正弦", body["answer"]), body["answer"]
        spans = [c["lines"] for c in cited(body, source)]
        assert any(a <= 13 <= b for a, b in spans), spans


# --- 25: an image pasted as a base64 data: URI ----------------------------------------------------


def test_25_a_pasted_image_is_no_chunk_and_the_text_around_it_is(
    embedder: Embedder, tmp_path: Path
) -> None:
    source = "notes/learning-curve.md"
    with ingested("25", embedder, tmp_path) as case:
        assert case.report.chunks_written <= 3
        assert case.report.files_new == 1 and not case.report.failures
        # the report says what was left out, and where
        (warning,) = warnings_for(case, source)
        assert "line 7" in warning and "data: URI" in warning
        results = case.search("学習曲線の図 検証損失 エポック 早期終了", top_k=20)
        assert results
        for r in results:
            assert not BASE64_PAYLOAD.search(r["text"]) and not B64_RUN.search(r["text"])
            assert len(r["text"]) <= 2000
        lines = note_lines(case, source)
        for line in (5, 9, 10):
            found = holding(results, line, lines[line - 1].strip())
            assert found, (line, [(r["lines"], r["text"][:40]) for r in results])
            assert {r["heading"] for r in found} == {"学習曲線の記録 > 実験 3"}
        # every stored passage is within the embedder's budget, and the image's alt text is kept
        chunks = case.chunks()
        assert max(embedder.count_tokens([c.text for c in chunks])) <= 320
        assert any("学習曲線（実験3）" in c.text for c in chunks)


def test_answers_25_about_the_figure_without_its_payload(
    embedder: Embedder, tmp_path: Path, llm_settings: Settings
) -> None:
    with ingested("25", embedder, tmp_path, llm_settings) as case:
        body = ask(case, "実験3の学習曲線で、検証損失が最小になったのは何エポック目ですか？")
        assert "12" in re.findall(r"\d+", re.sub(r"\[\d+\]|実験\s*\d+", "", body["answer"]))
        spans = [c["lines"] for c in cited(body, "notes/learning-curve.md")]
        assert any(a <= 9 <= b for a, b in spans), spans
        assert not any(BASE64_PAYLOAD.search(c["text"]) for c in body["contexts"])


def test_25_an_image_inside_a_sentence_leaves_the_sentence_whole(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Issue 25 review: case 25's image moved into the middle of line 9's sentence: the
    sentence is one passage (the image reduced to its alt text), cited at line 9."""
    notes = tmp_path / "notes"
    notes.mkdir()
    lines = (case_dir("25") / "notes" / "learning-curve.md").read_text(encoding="utf-8")
    lines_ = lines.split("\n")
    image, line9 = lines_[6], lines_[8]
    cut = len(line9) // 2
    lines_[8] = line9[:cut] + image + line9[cut:]
    lines_[6] = "図は下の文の中にある。"
    (notes / "inline.md").write_text("\n".join(lines_), encoding="utf-8")
    with opened(tmp_path, embedder, tmp_path / "store", "c25i") as case:
        report = case.parts.ingestor.run([notes])
        assert report.files_new == 1 and not report.failures
        sentence = line9[:cut] + "![学習曲線（実験3）]" + line9[cut:]
        chunks = case.chunks()
        holding = [c for c in chunks if sentence.strip() in c.text]
        assert holding, [c.text for c in chunks]
        assert all(c.line_start <= 9 <= c.line_end for c in holding)
        assert not any(BASE64_PAYLOAD.search(c.text) for c in chunks)


# --- 28: a PDF page in a font without a Unicode map ---------------------------------------------


def test_28_a_pdf_page_that_cannot_be_extracted_is_named_not_indexed(
    embedder: Embedder, tmp_path: Path
) -> None:
    source = "notes/handout.pdf"
    with ingested("28", embedder, tmp_path) as case:
        assert case.report.files_new == 1 and not case.report.failures
        (warning,) = warnings_for(case, source)
        assert warning.startswith("page 2: ")
        assert "Unicode map" in warning and "OCR" in warning
        for chunk in case.chunks():
            assert not CONTROL.search(chunk.text), chunk
            assert chunk.page == 1  # page 2 has nothing readable to index
        results = case.search("誤差逆伝播法 勾配 学習率", top_k=20)
        assert results
        for r in results:
            assert not CONTROL.search(r["text"]), r
            assert r["page"] != 2 or "確率的勾配降下法では学習率を小さくする。" in r["text"]
        (page1,) = [r for r in results if "誤差逆伝播法で各層の重みの勾配を求める。" in r["text"]]
        assert page1["page"] == 1 and page1["source"] == source
