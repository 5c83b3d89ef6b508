"""The bundled golden set's answer checks: present, grounded in the notes, and able to fail.

`eval/datasets/notes.jsonl` decides which answers count as correct (and so the hallucination
rate), so its `must_contain` / `must_contain_any` / `must_not_contain` fields are tested here
against the notes they were written from and against hand-written right and wrong answers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from eval.dataset import GoldenItem, load
from eval.metrics import AnswerCheck, check_answer, fold
from ingest.readers import read_document

REPO = Path(__file__).resolve().parents[3]
ITEMS = {item.id: item for item in load(REPO / "eval" / "datasets" / "notes.jsonl")}
ANSWERABLE = [i for i in ITEMS.values() if i.answerable]
UNANSWERABLE = [i for i in ITEMS.values() if not i.answerable]


def check(item_id: str, answer: str) -> AnswerCheck:
    item = ITEMS[item_id]
    return check_answer(answer, item.must_contain, item.must_contain_any, item.must_not_contain)


def alternatives(entry: str | list[str]) -> list[str]:
    return [entry] if isinstance(entry, str) else entry


@cache
def note_text(source: str) -> str:
    """A note as Shiori reads it (the PDF through the ingest reader, not its source), folded."""
    return fold(read_document(REPO / source).text)


def test_every_answerable_item_has_positive_checks() -> None:
    assert len(ANSWERABLE) == 60 and len(UNANSWERABLE) == 24
    assert [i.id for i in ANSWERABLE if not i.has_positive_checks] == []


@pytest.mark.parametrize(
    "item", [i for i in ITEMS.values() if i.reference_answer], ids=lambda i: i.id
)
def test_the_reference_answer_passes_its_own_checks(item: GoldenItem) -> None:
    assert item.reference_answer is not None
    assert check(item.id, item.reference_answer) == AnswerCheck(passed=True)


@pytest.mark.parametrize("item", ANSWERABLE, ids=lambda i: i.id)
def test_every_required_fact_is_written_in_the_items_notes(item: GoldenItem) -> None:
    """Each must_contain entry (and the must_contain_any list) has a form found verbatim in
    the item's reference notes: the checks state what the notes say, not what we remember."""
    notes = "".join(note_text(s) for s in item.reference_sources)
    groups = [alternatives(e) for e in item.must_contain]
    groups += [item.must_contain_any] if item.must_contain_any else []
    assert [g for g in groups if not any(fold(o) in notes for o in g)] == []


@pytest.mark.parametrize("item", ANSWERABLE, ids=lambda i: i.id)
def test_no_accepted_form_is_itself_forbidden(item: GoldenItem) -> None:
    accepted = [o for e in item.must_contain for o in alternatives(e)] + item.must_contain_any
    clashes = [(f, o) for f in item.must_not_contain for o in accepted if fold(f) in fold(o)]
    assert clashes == []


# correct answers phrased otherwise than the reference: the other language, full-width digits,
# spelled-out dates, added explanation: the checks must not reject them
RIGHT = [
    ("ja-elmo-architecture", "ELMo は2層の biLSTM をベースにしています[1]。"),
    ("ja-bert-mlm-ratio", "入力トークンの１５％を予測対象として選びます[1]。"),
    ("ja-gpt2-vocab", "GPT-2 の語彙数は 50257 です[1]。"),
    ("ja-llama-65b-tokens", "65B モデルは約 1.4 兆トークンで学習されました[1]。"),
    ("ja-llama2-date", "Llama 2 は 2023 年 7 月 18 日に発表されました[1]。"),
    ("ja-gemma-date", "初代 Gemma は２０２４年２月２１日に公開されました[1]。"),
    ("ja-lora-b-init", "B はゼロで初期化し、A はランダムなガウス分布で初期化します[1]。"),
    ("ja-instructgpt-rm-size", "報酬モデルは60億パラメータ（6B）です[1]。"),
    ("ja-bpe-inventor", "フィリップ・ゲイジが1994年に発表しました[1]。"),
    ("en-claude3-date", "Anthropic announced the Claude 3 family on March 4, 2024 [1]."),
    ("en-claude3-date", "It was announced on the 4th of March 2024 [1]."),
    ("en-claude21-context", "Claude 2.1 offered a 200,000-token context window [1]."),
    ("en-intrinsic-hallucination", "It is output that conflicts with the given document [1]."),
    ("en-pdf-zero-shot-cot", "They added \u201cLet\u2019s think step by step\u201d [1]."),
    ("eo-bert-large-params", "BERT-Large has about 340 million parameters [1]."),
    ("eo-chatgpt-release", "ChatGPT was released on November 30, 2022 [1]."),
    ("eo-gemma-name", 'It comes from the Latin gemma, meaning "precious stone" [1].'),
    ("eo-jglue-creators", "Researchers from Yahoo Japan and Waseda University [1]."),
    ("eo-sentencepiece-space", "SentencePiece replaces a space with \u2581 (U+2581) [1]."),
    ("je-claude35-date", "Claude 3.5 Sonnet は2024年6月20日にリリースされました[1]。"),
    ("je-claude35-date", "2024年6月です[1]。"),
    ("je-qlora-65b-gpu", "48GB の GPU 1枚でファインチューニングできるとしています[1]。"),
    ("je-mata-avianca", "マタ対アビアンカ事件（Mata v. Avianca）です[1]。"),
    ("je-pdf-top-p", "nucleus（核）サンプリングと呼ばれます[1]。"),
    ("je-pdf-cot-authors", "Google の Wei らが2022年に示しました[1]。"),
    ("mn-venues-transformer-bert", "Transformer は NIPS 2017、BERT は NAACL 2019 です[1][2]。"),
    ("mn-context-llama2-gemma", "Gemma: 8,192 tokens; Llama 2: 4,096, so Gemma is longer [1][2]."),
    ("mn-guanaco-base-date", "Guanaco は LLaMA がベースで、2023年2月24日に発表されました[1][2]。"),
    ("mn-attention-gemma2b-llama2-70b", "Multi-query attention for Gemma 2B, GQA for 70B [1][2]."),
    ("mn-sd-vs-chatgpt", "Stable Diffusion（2022年8月）の方が先で、ChatGPT は11月です[1][2]。"),
    ("mn-sd-vs-chatgpt", "Stable Diffusion の一般公開の方が先です[1][2]。"),
    ("mn-opus-benchmark-size", "GSM8K, which has about 8500 problems [1][2]."),
    ("pp-attention-scaling", "内積が大きすぎると softmax が飽和し勾配が消えるのを防ぐため[1]。"),
    ("pp-mrr-example", "(1 + 1/3 + 0) / 3 = 4/9 です[1]。"),
    ("pp-paged-optimisers", "Paged optimizers, using NVIDIA unified memory [1]."),
]


@pytest.mark.parametrize(("item_id", "answer"), RIGHT)
def test_a_correct_answer_in_other_words_passes(item_id: str, answer: str) -> None:
    assert ITEMS[item_id].answerable
    assert check(item_id, answer).passed, check(item_id, answer)


# answers giving the neighbour's value (another model, another row, another year of the same
# section), or a string that holds the right needle inside a wrong one
WRONG = [
    ("ja-transformer-dmodel", "d_model は1024です[1]。"),
    ("ja-transformer-bleu-ende", "big モデルは BLEU 41.8 を記録しました[1]。"),
    ("ja-gpt2-vocab", "語彙数は32,000です[1]。"),
    ("ja-llama-65b-tokens", "約1兆トークンで学習されました[1]。"),
    ("ja-llama-65b-tokens", "約2兆トークンです（1.4兆ではなく）[1]。"),
    ("ja-llama2-date", "2023年2月24日に発表されました[1]。"),
    ("ja-gemma-date", "2024年6月に公開されました[1]。"),
    ("ja-gemma-context", "文脈長は4,096トークンです[1]。"),
    ("ja-ddpm-steps", "ステップ数は20〜50です[1]。"),
    ("ja-sd-text-encoder", "OpenCLIP です[1]。"),
    ("ja-gan-inventor", "Kingma と Welling です[1]。"),
    ("ja-instructgpt-rm-size", "175B です[1]。"),
    ("ja-humaneval-size", "817問からなります[1]。"),
    ("en-claude3-date", "Anthropic announced it on 14 March 2024 [1]."),
    ("en-claude3-date", "The first Claude model came in March 2023 [1]."),
    ("en-claude21-context", "Claude 2.1 offered 100K tokens [1]."),
    ("en-intrinsic-hallucination", "The output adds claims that cannot be checked [1]."),
    ("en-pdf-factual-temperature", "Use 0.7 to 1.0 [1]."),
    ("eo-bert-large-params", "BERT-Large has 110M parameters [1]."),
    ("eo-gemma-name", "It means 'twins' [1]."),
    ("eo-lora-venue", "It was accepted at ICLR 2014 [1]."),
    ("eo-lora-venue", "It was accepted at NeurIPS 2023 [1]."),
    ("eo-mmlu-subjects", "It covers 38 categories [1]."),
    ("eo-sentencepiece-space", "It uses the ## prefix [1]."),
    ("je-anthropic-founded", "Anthropic は2023年に設立されました[1]。"),
    ("je-claude35-date", "2024年3月4日にリリースされました[1]。"),
    ("je-pdf-cot-authors", "Kojima らです[1]。"),
    ("mn-context-llama2-gemma", "Gemma has 8,192 tokens and Llama 2 has 2,048 [1][2]."),
    ("mn-guanaco-base-date", "Llama 2 がベースで、2023年7月18日に発表されました[1][2]。"),
    ("mn-sd-vs-chatgpt", "ChatGPT が先です（2022年11月30日、Stable Diffusion は8月）[1]。"),
    ("pp-bert-nsp-random", "15%です[1]。"),
    ("pp-distilbert", "約60%です[1]。"),
    ("pp-attention-scaling", "勾配爆発を防ぐためです[1]。"),
    ("pp-sd-compression", "約64分の1になります[1]。"),
    ("pp-mrr-example", "(1 + 1/3) / 2 = 約0.667 です[1]。"),
    ("pp-claude-smallest", "Claude 3 Opus [1]."),
]


@pytest.mark.parametrize(("item_id", "answer"), WRONG)
def test_a_neighbours_value_fails(item_id: str, answer: str) -> None:
    assert ITEMS[item_id].answerable
    assert not check(item_id, answer).passed


# what a made-up answer to each unanswerable question would say: the neighbour the notes do
# hold (Gemma 2's date for Gemma 3), or the outside-knowledge value the model might recall
MADE_UP = {
    "un-gemma3-release": "Gemma 3 は2024年6月に公開されました[1]。",
    "un-llama4-sizes": "Llama 4 には 8B と 70B があります[1]。",
    "un-mistral-context": "Mistral 7B supports 8,192 tokens [1].",
    "un-gemma2-27b-tokens": "約6兆トークンで学習されました[1]。",
    "un-claude35-haiku-date": "Claude 3.5 Haiku was released on 20 June 2024 [1].",
    "un-claude3-haiku-price": "It costs $0.25 per million input tokens [1].",
    "un-bert-pretrain-days": "約3.5日かかりました[1]。",
    "un-elmo-hidden-size": "各層の隠れ次元は768です[1]。",
    "un-sd3-release": "Stable Diffusion 3 は2022年8月に発表されました[1]。",
    "un-sdxl-params": "The SDXL U-Net has 2.6B parameters [1].",
    "un-qlora-learning-rate": "They used a learning rate of 1e-4 [1].",
    "un-dpo-beta-value": "β = 0.1 が使われました[1]。",
    "un-instructgpt-ppo-prompts": "約3.3万件のプロンプトが使われました[1]。",
    "un-hellaswag-year": "HellaSwag was published in 2020 [1].",
    "un-ddim-authors": "DDIM は Ho らが提案しました[1]。",
    "un-hnsw-authors": "HNSW was proposed by Meta [1].",
    "un-pdf-tree-of-thoughts": "Wei and colleagues at Google introduced it [1].",
    "un-pdf-top-k-value": "The note recommends a top-k of 60 [1].",
    "un-rag-chunk-size": "512トークンがよいとされています[1]。",
    "un-gpt4o-release": "GPT-4o は2023年3月14日に発表されました[1]。",
    "un-jsquad-size": "JSQuAD には817問が含まれています[1]。",
    "un-general-capital-australia": "The capital of Australia is Canberra.",
    "un-general-fuji-height": "富士山の標高は3,776メートルです。",
    "un-general-pride-prejudice": "Jane Austen wrote it.",
}


def test_every_unanswerable_item_with_forbidden_values_is_in_the_table() -> None:
    assert sorted(MADE_UP) == sorted(i.id for i in UNANSWERABLE if i.must_not_contain)


@pytest.mark.parametrize(("item_id", "answer"), sorted(MADE_UP.items()))
def test_a_made_up_answer_with_the_neighbours_value_is_caught(item_id: str, answer: str) -> None:
    assert not ITEMS[item_id].answerable
    verdict = check(item_id, answer)
    assert not verdict.passed and verdict.forbidden
    # a plain abstention says none of it
    assert check(item_id, "NOT_FOUND").passed
