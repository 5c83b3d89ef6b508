"""Unit tests for shiori.sparse: tokenisation and BM25-style sparse vectors."""

from __future__ import annotations

import zlib

import pytest

from shiori.sparse import SparseEncoder, SparseVector, normalise, term_id, tokens

# --- normalisation and tokens -----------------------------------------------------------------


def test_nfkc_full_width_latin_and_digits_match_ascii():
    assert normalise("ＡＢＣ１２３") == "abc123"
    assert tokens("ＡＢＣ１２３") == tokens("abc123") == ["abc123"]
    assert tokens("ＢＥＲＴ　ｂａｓｅ") == ["bert", "base"]


def test_nfkc_half_width_katakana_matches_full_width():
    assert normalise("ｶﾀｶﾅ") == "カタカナ"
    assert normalise("ｶﾞｲﾄﾞ") == "ガイド"  # voiced marks combine
    assert tokens("ｶﾞｲﾄﾞ") == tokens("ガイド") == ["ガ", "イ", "ド", "ガイ", "イド"]


def test_cjk_runs_give_unigrams_then_bigrams():
    assert tokens("自然言語") == ["自", "然", "言", "語", "自然", "然言", "言語"]


def test_cjk_without_unigrams_keeps_single_characters():
    assert tokens("自然言語", unigrams=False) == ["自然", "然言", "言語"]
    assert tokens("株", unigrams=False) == ["株"]
    assert tokens("株", unigrams=True) == ["株"]


def test_hiragana_katakana_kanji_and_prolonged_mark_form_one_run():
    assert tokens("データは") == ["デ", "ー", "タ", "は", "デー", "ータ", "タは"]


def test_cjk_punctuation_splits_runs():
    # 、 and 。 are not part of a run, so no bigram spans them
    got = tokens("東京、大阪。")
    assert got == ["東", "京", "東京", "大", "阪", "大阪"]
    assert "京大" not in got


def test_latin_words_lower_cased_and_split_from_japanese():
    assert tokens("BERTは2018年に") == ["bert", "は", "2018", "年", "に", "年に"]


def test_latin_words_keep_inner_punctuation():
    assert tokens("GPT-4 and llama.cpp v3.5, C++ e5_large") == [
        "gpt-4",
        "llama.cpp",
        "v3.5",
        "c",
        "e5_large",
    ]
    assert tokens("GPT-4. Next") == ["gpt-4", "next"]  # a trailing '.' is not kept


def test_english_stop_words_dropped():
    assert tokens("The cat is on the mat and it was with a dog") == ["cat", "mat", "dog"]
    assert tokens("THE Of AND") == []


def test_empty_and_punctuation_only_text():
    assert tokens("") == []
    assert tokens("!!! ??? 。、「」") == []


# --- term ids ---------------------------------------------------------------------------------


def test_term_ids_are_crc32_of_utf8_and_stable():
    assert term_id("bert") == zlib.crc32(b"bert") == 3021358862
    assert term_id("言語") == zlib.crc32("言語".encode()) == 41234712
    assert term_id("bert") != term_id("bart")
    assert 0 <= term_id("任意") < 2**32


# --- encoder ----------------------------------------------------------------------------------


def doc_value(encoder: SparseEncoder, text: str, term: str) -> float:
    vec = encoder.encode_document(text)
    return dict(zip(vec.indices, vec.values, strict=True))[term_id(term)]


def test_document_vector_indices_sorted_unique_and_aligned():
    vec = SparseEncoder().encode_document("自然言語処理と自然言語理解 BERT bert Bert")
    assert vec.indices == sorted(set(vec.indices))
    assert len(vec.indices) == len(vec.values)
    assert set(vec.indices) == {term_id(t) for t in tokens("自然言語処理と自然言語理解 BERT")}
    assert all(v > 0 for v in vec.values)


def test_document_value_matches_bm25_formula():
    enc = SparseEncoder(k1=1.2, b=0.75, avg_len=300.0)
    text = "apple apple banana"  # 3 terms, apple twice
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 300.0)
    assert doc_value(enc, text, "apple") == pytest.approx(2 * 2.2 / (2 + norm))
    assert doc_value(enc, text, "banana") == pytest.approx(1 * 2.2 / (1 + norm))


def test_document_value_saturates_with_term_frequency():
    enc = SparseEncoder()
    values = [doc_value(enc, " ".join(["apple"] * n), "apple") for n in (1, 2, 5, 50, 500)]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert all(v < enc.k1 + 1 for v in values)
    # many occurrences approach the bound: saturation, not linear growth
    assert values[-1] > 2.0
    assert values[-1] / values[0] < 2.5


def test_document_value_saturation_with_fixed_length():
    # same document length, more occurrences: bounded by k1 + 1
    enc = SparseEncoder()
    filler = [f"w{i}" for i in range(100)]
    v1 = doc_value(enc, " ".join(["apple", *filler[1:]]), "apple")
    v10 = doc_value(enc, " ".join(["apple"] * 10 + filler[10:]), "apple")
    v90 = doc_value(enc, " ".join(["apple"] * 90 + filler[90:]), "apple")
    assert v1 < v10 < v90 < enc.k1 + 1


def test_longer_documents_give_smaller_values():
    enc = SparseEncoder()
    short = doc_value(enc, "apple pear", "apple")
    long = doc_value(enc, "apple " + " ".join(f"w{i}" for i in range(600)), "apple")
    assert long < short
    # with b = 0 the length does not matter
    flat = SparseEncoder(b=0.0)
    assert doc_value(flat, "apple pear", "apple") == pytest.approx(
        doc_value(flat, "apple " + " ".join(f"w{i}" for i in range(600)), "apple")
    )


def test_query_vector_all_ones_sorted_unique():
    vec = SparseEncoder().encode_query("BERT bert 自然言語 自然言語")
    assert vec.indices == sorted(set(vec.indices))
    assert vec.values == [1.0] * len(vec.indices)
    assert set(vec.indices) == {term_id(t) for t in ["bert", *tokens("自然言語")]}


def test_query_terms_match_document_terms_across_width_forms():
    enc = SparseEncoder()
    doc = enc.encode_document("ＢＥＲＴは言語モデルです")
    query = enc.encode_query("bert 言語")
    assert set(query.indices) <= set(doc.indices)


def test_unigrams_flag_is_applied_to_both_sides():
    enc = SparseEncoder(unigrams=False)
    assert enc.encode_query("言語").indices == [term_id("言語")]
    assert enc.encode_document("言語").indices == [term_id("言語")]


def test_empty_text_gives_empty_vectors():
    enc = SparseEncoder()
    assert enc.encode_document("") == SparseVector([], [])
    assert enc.encode_query("the of") == SparseVector([], [])
