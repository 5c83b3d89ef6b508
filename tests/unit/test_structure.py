"""Unit tests for ingest.structure: the block layout a CommonMark parser gives a note."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.structure import (
    CODE,
    ENCODED,
    HEADING,
    IMAGE,
    SKIP,
    TABLE_HEAD,
    TABLE_ROW,
    TEXT,
    inline_tags,
    markdown_layout,
    non_text_runs,
    paragraph_layout,
    readable,
)


def kinds(text: str) -> list[tuple[str, int, int]]:
    """(kind, first line, last line), 1-based inclusive, as an editor shows them."""
    return [(b.kind, b.start + 1, b.end) for b in markdown_layout(text).blocks]


def headings(text: str) -> list[tuple[int, str, int]]:
    return [
        (b.level, b.title, b.start + 1) for b in markdown_layout(text).blocks if b.kind == HEADING
    ]


# --- code fences: any length, either character ---------------------------------------------


@pytest.mark.parametrize(
    ("outer", "inner"),
    [("````", "```"), ("~~~", "```"), ("```", "~~~"), ("~~~~~", "~~~"), ("`````", "````")],
)
def test_a_fence_closes_only_on_its_own_character_and_length(outer, inner):
    text = (
        f"# Top\n\n{outer}markdown\n{inner}python\n# comment, not a heading\n{inner}\n"
        f"{outer}\n\n## Next\n\nbody\n"
    )
    assert headings(text) == [(1, "Top", 1), (2, "Next", 9)]
    assert (CODE, 3, 7) in kinds(text)


def test_an_unclosed_fence_runs_to_the_end_of_the_document():
    text = "# Top\n\n```\n# not a heading\n"
    assert headings(text) == [(1, "Top", 1)]


def test_indented_fence_and_longer_closing_fence():
    text = "  ```\n  # inside\n  ``````\n# after\n"
    assert headings(text) == [(1, "after", 4)]


# --- setext headings and thematic breaks ---------------------------------------------------


def test_setext_headings_and_a_thematic_break():
    text = "Title\n=====\n\nintro\n\nPart one\n--------\n\ntext\n\n---\n\nPart two\n-\n\nmore\n"
    assert headings(text) == [(1, "Title", 1), (2, "Part one", 6), (2, "Part two", 13)]
    assert markdown_layout(text).title == "Title"
    # the --- after a blank line is a thematic break: no block, no heading
    assert all(not (b.start <= 10 < b.end) for b in markdown_layout(text).blocks)


def test_multi_line_setext_heading_is_one_heading():
    text = "A heading that\nwraps\n===\nbody\n"
    assert headings(text) == [(1, "A heading that wraps", 1)]


def test_heading_text_is_plain_text():
    text = "# The *best* `code` [link](http://x) and [[Note|label]]\n"
    assert headings(text) == [(1, "The best code link and label", 1)]


def test_headings_inside_quotes_and_lists_are_text():
    text = "> # quoted\n\n- # in a list\n"
    assert headings(text) == []
    assert [k for k, _, _ in kinds(text)] == [TEXT, TEXT]


# --- front matter ---------------------------------------------------------------------------


def test_yaml_front_matter_gives_title_tags_aliases_and_is_skipped():
    text = (
        "---\ntitle: 線形代数\ntags: [数学, '#線形代数']\naliases:\n  - linalg\n"
        "# a YAML comment\n---\n\n# 本文の見出し\n\ntext #inline-tag\n"
    )
    layout = markdown_layout(text)
    assert layout.title == "線形代数"
    assert layout.tags == ["数学", "線形代数", "inline-tag"]
    assert layout.aliases == ["linalg"]
    assert kinds(text)[0] == (SKIP, 1, 7)
    assert headings(text) == [(1, "本文の見出し", 9)]


def test_toml_front_matter():
    text = '+++\ntitle = "確率"\ntags = ["数学"]\n# comment\n+++\n\nbody\n'
    layout = markdown_layout(text)
    assert (layout.title, layout.tags) == ("確率", ["数学"])
    assert kinds(text) == [(SKIP, 1, 5), (TEXT, 7, 7)]


def test_string_tags_and_single_alias():
    layout = markdown_layout("---\ntags: a, b c\nalias: one\n---\nx\n")
    assert (layout.tags, layout.aliases) == (["a", "b", "c"], ["one"])


def test_invalid_front_matter_is_read_as_markdown_with_a_warning():
    layout = markdown_layout("---\ntitle: [unclosed\n---\n# Real\ntext\n")
    assert layout.title == "Real"
    assert SKIP not in [b.kind for b in layout.blocks]  # nothing of the note is lost
    assert layout.warnings and "not valid YAML" in layout.warnings[0]


def test_a_note_opening_with_a_thematic_break_is_no_front_matter():
    text = "---\n\n# 見出し\n\n- 項目です。\n\n---\n\n本文。\n"
    assert headings(text) == [(1, "見出し", 3)]
    assert [k for k, _, _ in kinds(text)] == [HEADING, TEXT, TEXT]
    assert markdown_layout(text).warnings == []


def test_dashes_later_in_a_note_are_not_front_matter():
    text = "intro\n\n---\ntitle: x\n---\n"
    assert markdown_layout(text).title == ""
    assert SKIP not in [k for k, _, _ in kinds(text)]


# --- tables, HTML, text title ---------------------------------------------------------------


def test_table_header_and_rows():
    text = "before\n\n| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |\n\nafter\n"
    assert kinds(text) == [
        (TEXT, 1, 1),
        (TABLE_HEAD, 3, 4),
        (TABLE_ROW, 5, 5),
        (TABLE_ROW, 6, 6),
        (TEXT, 8, 8),
    ]
    blocks = markdown_layout(text).blocks
    assert blocks[1].table == blocks[2].table == blocks[3].table == 1


@pytest.mark.parametrize(
    "html",
    [
        "<!-- a private remark -->",
        "<!--\nspread over\nlines\n-->",
        "<div hidden>secret</div>",
        '<p style="display: none">secret</p>',
        "<section style='visibility:hidden'>secret</section>",
        '<div aria-hidden="true">secret</div>',
    ],
)
def test_comments_and_hidden_html_blocks_are_skipped(html):
    text = f"# H\n\nbefore\n\n{html}\n\nafter\n"
    skipped = [b for b in markdown_layout(text).blocks if b.kind == SKIP]
    assert len(skipped) == 1
    assert skipped[0].end - skipped[0].start == html.count("\n") + 1


def test_visible_html_block_is_text():
    assert kinds("<div>shown</div>\n") == [(TEXT, 1, 1)]


def test_plain_text_title_line():
    text = "ベイズの定理\n\n事後確率は尤度と事前確率の積に比例する。\n"
    layout = markdown_layout(text, text_title=True)
    assert layout.title == "ベイズの定理"
    assert headings(text) == []  # only for plain text
    assert layout.blocks[0].kind == HEADING
    sentence_first = markdown_layout("これは文です。\n\n次の段落。\n", text_title=True)
    assert sentence_first.title == "" and sentence_first.blocks[0].kind == TEXT


# --- Obsidian syntax ------------------------------------------------------------------------


def test_wikilinks_read_as_their_labels():
    assert readable("see [[Attention|注意機構]] and [[BERT]] or [[Note#Part]]") == (
        "see 注意機構 and BERT or Note Part"
    )
    assert readable("![[image.png]] stays out of the way") == "image.png stays out of the way"


def test_inline_tags():
    assert inline_tags("学習 #機械学習 #ml/nlp and #1 or a#b (#括弧)") == [
        "機械学習",
        "ml/nlp",
        "括弧",
    ]


def test_tags_in_code_are_not_tags():
    layout = markdown_layout("`#notatag` and\n\n```\n#nottag\n```\n\n#real\n")
    assert layout.tags == ["real"]


# --- footnotes (issue 25, case 24) ------------------------------------------------------------


def test_footnote_definitions_without_spaces_are_text_where_they_are_written():
    # a CommonMark parser alone reads `[^id]:text-without-spaces` as a link reference
    # definition, which produces nothing: the footnote would never be indexed
    text = (
        "# 注意機構\n\n## Transformer\n\n本文[^a]。\n\n## 計算量\n\n本文[^b]。\n\n"
        "[^a]: 出典はVaswaniらが2017年に発表した論文。\n"
        "[^b]: 計算量はO(n^2d)になる。\n"
    )
    assert kinds(text) == [
        (HEADING, 1, 1),
        (HEADING, 3, 3),
        (TEXT, 5, 5),
        (HEADING, 7, 7),
        (TEXT, 9, 9),
        (TEXT, 11, 11),
        (TEXT, 12, 12),
    ]


def test_footnotes_in_the_middle_stay_in_their_section_and_unreferenced_ones_are_kept():
    text = (
        "# A\n\n[^x]: 参照されない脚注も内容である。\n"
        "    二段落目は字下げで続く。\n\n# B\n\n本文^[インライン脚注] です。\n"
    )
    blocks = markdown_layout(text).blocks
    assert [(b.kind, b.start + 1, b.end) for b in blocks] == [
        (HEADING, 1, 1),
        (TEXT, 3, 4),
        (HEADING, 6, 6),
        (TEXT, 8, 8),
    ]
    # blocks in document order: nothing moved to the end, as the plugin would by default
    assert [b.start for b in blocks] == sorted(b.start for b in blocks)


def test_a_footnote_reference_in_a_heading_is_not_its_title():
    assert headings("# 結果[^1]\n\n[^1]: 注。\n") == [(1, "結果", 1)]


# --- encoded data that is not text (issue 25, case 25) ----------------------------------------


def _payload(n: int, seed: int = 1) -> str:
    import base64

    return base64.b64encode(random.Random(seed).randbytes(n)).decode()


def test_a_data_uri_image_is_non_text_and_named_in_a_warning():
    uri = "data:image/png;base64," + _payload(3000)
    text = f"# 図\n\n前の文。\n\n![学習曲線]({uri})\n\n後の文。\n"
    layout = markdown_layout(text)
    assert len(layout.non_text) == 1
    run = layout.non_text[0]
    assert text[run.start : run.end] == uri and run.line == 5 and run.kind == IMAGE
    assert len(layout.warnings) == 1
    assert "line 5" in layout.warnings[0] and "data: URI" in layout.warnings[0]


def test_a_wrapped_data_uri_is_one_run():
    lines = [_payload(57 * 8)[i : i + 76] for i in range(0, 608, 76)]
    text = '<img src="data:image/png;base64,' + "\n".join(lines) + '">\n\n次の文。\n'
    (run,) = non_text_runs(text)
    assert text[run.start : run.end].endswith(lines[-1])


@pytest.mark.parametrize(
    ("run", "encoded"),
    [
        (_payload(300), True),  # bare base64, 400 characters
        (_payload(90), False),  # 120 characters: a token or key a person may quote
        ("0123456789abcdef" * 16, True),  # a hex dump
        ("0123456789abcdef" * 8, False),  # a SHA-512 sum
        ("a" * 40, False),  # too short
        ("/path/to-some/very-long/slug-of-lowercase-words-and-hyphens" * 2, False),
        ("=" * 120, False),  # a separator line
        (_payload(60), False),  # 80 characters: left as text
    ],
)
def test_bare_runs_that_are_not_text(run, encoded):
    found = non_text_runs(f"前の文 {run} 後の文")
    assert bool(found) == encoded
    if encoded:
        assert found[0].kind == ENCODED


# --- URLs, paths and identifiers are text (review of issue 25) --------------------------------

_SEGMENT = st.one_of(
    st.from_regex(r"[A-Z]?[a-z]{2,12}[0-9]{0,3}", fullmatch=True),
    st.from_regex(r"(?:[A-Z][a-z]{2,8}[0-9]?){1,4}", fullmatch=True),
    st.from_regex(r"[a-z]{1,4}[0-9]{1,4}[a-z]?", fullmatch=True),
    st.from_regex(r"[0-9a-f]{8,64}", fullmatch=True),
    st.from_regex(r"[A-Z]{2,6}", fullmatch=True),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
)
_URL = st.builds(
    lambda scheme, host, parts, seps: (
        scheme + host + "".join(sep + part for sep, part in zip(seps, parts, strict=False))
    ),
    st.sampled_from(["https://", "http://www.", "www.", "obsidian://", "s3://", ""]),
    st.sampled_from(["www.notion.so", "github.com", "wandb.ai", "outputs", "runs/ja"]),
    st.lists(_SEGMENT, min_size=1, max_size=40),
    st.lists(st.sampled_from(["/", "-", "_", "/", "-", "_", "."]), min_size=40, max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(_URL)
def test_urls_and_paths_of_words_and_hex_are_text(url):
    text = f"資料は {url} にある。\n"
    layout = markdown_layout(text)
    assert layout.non_text == [] and layout.warnings == []


@pytest.mark.parametrize(
    "text",
    [
        "https://www.notion.so/myteam/Machine-Learning-Lecture-Notes-Week3-"
        "8f3b2c1d9e7a4b6c8d0e2f4a6b8c0d2e?pvs=4&" + "Machine-Learning-Lecture-Notes-Week3-" * 5,
        "https://github.com/huggingface/transformers/blob/"
        + "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c/src/transformers/models/bert/"
        "modeling_bert.py#L200-L260" * 2,
        "https://drive.google.com/drive/folders/1aBcD3eFgHiJkLmNoPqRsTuVwXyZ01234?usp=sharing"
        + "&resourcekey=0-AbCdEfGhIjKlMnOpQrStUv" * 6,
        "outputs/bert-base-japanese-v3_JGLUE-MARC-ja_lr2e-5_bs32_ep3_seed42/checkpoint-12000/"
        "pytorch_model.bin" * 3,
        "wandb/run-20231105_123456-3k9x8z7q/files/media/images/"
        "eval_confusion_matrix_1200_8f3b2c1d9e7a4b6c8d0e.png" * 3,
        "sha256:" + "8f3b2c1d9e7a4b6c8d0e2f4a6b8c0d2e" * 2 + " と git " + "3f2a1b4c5d" * 4,
    ],
)
def test_long_urls_paths_and_hashes_are_text(text):
    note = f"# 実験\n\n{text}\n\n```\n{text}\n```\n"
    layout = markdown_layout(note)
    assert layout.non_text == [] and layout.warnings == []


def test_data_uris_of_any_encoding_and_in_reference_definitions_are_non_text():
    svg = "data:image/svg+xml;charset=utf-8,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org" + (
        "%2F2000%2Fsvg%22%3E%3Cpath%20d%3D%22M0%200L10%2010%22%2F%3E" * 5
    )
    png = "data:image/png;base64," + _payload(9000)
    text = f"前の文。\n\n![図][fig3] と ![線]({svg})\n\n[fig3]: {png}\n\n後の文。\n"
    layout = markdown_layout(text)
    assert [text[r.start : r.end] for r in layout.non_text] == [svg, png]
    assert all(r.kind == IMAGE for r in layout.non_text)
    assert len(layout.warnings) == 1 and "2 inline image(s)" in layout.warnings[0]


def test_ordinary_notes_have_no_non_text():
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[2] / "notes").glob("*.md"):
        layout = markdown_layout(path.read_text(encoding="utf-8"))
        assert layout.non_text == [] and not any("not text" in w for w in layout.warnings)


# --- PDF paragraphs: page breaks (issue 25, case 28) ------------------------------------------


def test_paragraph_layout_breaks_at_page_starts():
    text = "page one line\nstill page one\npage two line\n"
    assert [(b.kind, b.start, b.end) for b in paragraph_layout(text).blocks] == [(TEXT, 0, 3)]
    assert [(b.kind, b.start, b.end) for b in paragraph_layout(text, frozenset({2})).blocks] == [
        (TEXT, 0, 2),
        (SKIP, 2, 2),
        (TEXT, 2, 3),
    ]


# --- a wrapped data: URI ends where its payload ends (issue 25 review) --------------------------


def _wrapped(n: int = 57 * 8, width: int = 76, seed: int = 4) -> list[str]:
    payload = _payload(n, seed)
    return [payload[i : i + width] for i in range(0, len(payload), width)]


@pytest.mark.parametrize(
    "following",
    [
        "ScaledDotProductAttention は注意機構の実装である。",
        "BertForMaskedLM_checkpoint_v2 を読み込む。",
        "transformer_encoder_layer_norm_eps=1e-6 とした。",
        "ScaledDotProductAttention",  # an identifier alone on its line
        "3f2a9c1e7b4d5a6c8e9f0a1b2c3d4e5f6a7b8c9d",  # a git hash alone on its line
    ],
)
def test_a_wrapped_bare_data_uri_leaves_the_next_ordinary_line_whole(following: str) -> None:
    lines = _wrapped()
    text = "data:image/png;base64," + "\n".join(lines) + "\n" + following + "\n"
    (run,) = non_text_runs(text)
    assert text[run.start : run.end].endswith(lines[-1])
    assert text[run.end :] == "\n" + following + "\n"


IDENTIFIER_WORDS = ["Scaled", "Dot", "Product", "Attention", "Bert", "For", "Masked", "LM",
                    "layer", "norm", "eps", "v2", "Encoder", "GPT", "Decoder", "2024"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(IDENTIFIER_WORDS), min_size=3, max_size=8),
    glue=st.sampled_from(["", "_", "-"]),
    rest=st.sampled_from(["", " は重要である。", " を使う", "(x)"]),
    seed=st.integers(0, 2**16),
)
def test_no_identifier_after_a_wrapped_payload_is_taken_for_base64(
    words: list[str], glue: str, rest: str, seed: int
) -> None:
    """Identifiers of 16+ base64-alphabet characters, alone or starting a line, after a payload
    wrapped at 76 characters: the run ends with the payload, the line is text."""
    identifier = glue.join(words)
    lines = _wrapped(seed=seed)
    following = identifier + rest
    text = "前の文。\ndata:image/png;base64," + "\n".join(lines) + "\n" + following + "\n"
    (run,) = non_text_runs(text)
    assert text[run.end :] == "\n" + following + "\n"


def test_a_wrapped_payload_whose_last_line_goes_on_with_text_ends_there() -> None:
    lines = _wrapped(57 * 5 + 20)
    text = "前の文 data:image/png;base64," + "\n".join(lines) + " と貼った。\n次の行。\n"
    (run,) = non_text_runs(text)
    assert text[run.start : run.end].endswith(lines[-1])
    assert text[run.end :] == " と貼った。\n次の行。\n"
