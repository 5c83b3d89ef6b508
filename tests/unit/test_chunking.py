"""Unit tests for ingest.chunking: segments, sentence units, packing and NoteSplitter."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import (
    NoteSplitter,
    Span,
    content_hash,
    line_starts,
    pack,
    segments,
    sentence_spans,
)
from ingest.structure import markdown_layout

NOTES = Path(__file__).resolve().parents[2] / "notes"
ELMO_BERT = NOTES / "01-elmo-bert.md"

JA_SENTENCE_END = "。！？」』）"


def char_count(texts):
    """A deterministic token counter: one token per character."""
    return [len(t) for t in texts]


def units(text: str) -> list[str]:
    """The units the splitter packs, in order (whole document)."""
    return [
        text[u.start : u.end] for seg in segments(text, markdown_layout(text)) for u in seg.units
    ]


def split(text: str, chunk_tokens: int = 320, overlap_tokens: int = 0, **metadata):
    splitter = NoteSplitter(char_count, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    return splitter.split(text, metadata)


def headings_of(text: str) -> list[tuple[str, ...]]:
    return [seg.headings for seg in segments(text, markdown_layout(text))]


# --- line_starts / segments -------------------------------------------------------------------


def test_line_starts_are_offsets_after_each_newline():
    assert line_starts("ab\ncd\n\nef") == [0, 3, 6, 7]
    assert line_starts("") == [0]


NESTED = """intro line

# A

a body

## B

b body
```python
# not a heading
## nor this
```

### C

c body

## D

d body

# E

e body
"""


def test_segments_heading_paths_follow_nesting():
    assert headings_of(NESTED) == [
        (),
        ("A",),
        ("A", "B"),
        ("A", "B", "C"),
        ("A", "D"),
        ("E",),
    ]


def test_segments_hold_exactly_the_text_between_headings():
    found = {}
    for seg in segments(NESTED, markdown_layout(NESTED)):
        found[seg.headings] = NESTED[seg.units[0].start : seg.units[-1].end]
    assert found[()] == "intro line"
    assert found[("A",)] == "a body"
    # the fenced "# not a heading" stays in B's body
    assert found[("A", "B")] == "b body\n```python\n# not a heading\n## nor this\n```"
    assert found[("A", "B", "C")] == "c body"
    assert found[("A", "D")] == "d body"
    assert found[("E",)] == "e body"


def test_headings_in_tilde_fence_ignored_and_empty_sections_dropped():
    text = "# Top\n## Empty\n## Full\n~~~\n# fenced\n~~~\ntext\n"
    assert headings_of(text) == [("Top", "Full")]
    assert "# fenced" in units(text)


def test_heading_syntax_is_commonmark():
    text = "## Closed ##\nx\n#NoSpace\ny\n    # indented code\nz\n###### Six\nw\n"
    assert headings_of(text) == [("Closed",), ("Closed", "Six")]
    closed = " ".join(units(text)[:1])
    assert "#NoSpace" in closed and "# indented code" in closed


def test_without_headings_is_one_segment():
    text = "just text\nmore text\n"
    assert headings_of(text) == [()]


def test_sibling_resets_deeper_levels():
    text = "# A\n### deep\nx\n## B\ny\n"
    assert headings_of(text) == [("A", "deep"), ("A", "B")]


# --- sentence_spans ---------------------------------------------------------------------------


def test_japanese_sentences_split_at_full_stops_with_closing_bracket():
    text = "これはペンです。「本当に？」そうです！「はい。」次の文。"
    assert units(text) == [
        "これはペンです。",
        "「本当に？」",
        "そうです！",
        "「はい。」",
        "次の文。",
    ]


def test_japanese_sentence_never_cut_in_the_middle():
    text = "自然言語処理では、文脈に応じて単語の表現を変える仕組みが重要である。次に進む。"
    got = units(text)
    assert got == [
        "自然言語処理では、文脈に応じて単語の表現を変える仕組みが重要である。",
        "次に進む。",
    ]
    for u in got:
        assert u[-1] in JA_SENTENCE_END


def test_english_sentences_split_at_terminal_punctuation():
    text = 'It works. Does it? Yes! He said "fine." Done.'
    assert units(text) == ["It works.", "Does it?", "Yes!", 'He said "fine."', "Done."]


def test_decimal_numbers_are_not_sentence_ends():
    text = "Pi is about 3.14 and version 1.5 is out. Next."
    assert units(text) == ["Pi is about 3.14 and version 1.5 is out.", "Next."]


def test_soft_wrapped_english_sentence_kept_whole():
    text = "This sentence is soft wrapped\nacross two lines. Next one\nis here too."
    assert units(text) == [
        "This sentence is soft wrapped\nacross two lines.",
        "Next one\nis here too.",
    ]


def test_soft_wrapped_japanese_sentence_kept_whole():
    text = "これは長い文なので\n途中で改行されている。"
    assert units(text) == ["これは長い文なので\n途中で改行されている。"]


def test_list_items_are_boundaries():
    text = (
        "Items\n- first item\n- second item\n・第三の項目\n1. numbered one\n2) numbered two\n* star"
    )
    assert units(text) == [
        "Items",
        "- first item",
        "- second item",
        "・第三の項目",
        "1. numbered one",
        "2) numbered two",
        "* star",
    ]


def test_wrapped_list_item_continuation_stays_with_item():
    text = "- a list item that\n  continues here\n- next"
    assert units(text) == ["- a list item that\n  continues here", "- next"]


def test_blank_lines_are_boundaries():
    text = "paragraph one without stop\n\nparagraph two\n\n\nthree"
    assert units(text) == ["paragraph one without stop", "paragraph two", "three"]


def test_table_rows_are_separate_units_and_the_header_is_one():
    text = "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n"
    assert units(text) == ["| a | b |\n|---|---|", "| 1 | 2 |", "| 3 | 4 |"]


def test_japanese_bullet_lines_are_separate_units():
    text = "買うもの\n・りんご\n・みかん\n　・ぶどう\n"
    assert units(text) == ["買うもの", "・りんご", "・みかん", "・ぶどう"]


def test_code_fence_lines_are_separate_units():
    text = "Code:\n```\nx = 1\ny = 2\n```\n"
    assert units(text) == ["Code:", "```", "x = 1", "y = 2", "```"]


def test_sentence_spans_respect_region_and_are_trimmed_and_ordered():
    text = "IGNORED. " + "  first one.  second one!\n\n third  " + " IGNORED."
    start = len("IGNORED. ")
    end = len(text) - len(" IGNORED.")
    spans = sentence_spans(text, start, end)
    assert [text[s.start : s.end] for s in spans] == ["first one.", "second one!", "third"]
    for s in spans:
        assert start <= s.start < s.end <= end
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start


def test_units_of_real_note_lose_no_text():
    text = ELMO_BERT.read_text(encoding="utf-8")
    layout = markdown_layout(text)
    heading_lines = {n for b in layout.blocks if b.kind == "heading" for n in range(b.start, b.end)}
    body = "".join(ln for n, ln in enumerate(text.split("\n")) if n not in heading_lines)
    pieces = [text[u.start : u.end] for seg in segments(text, layout) for u in seg.units]
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", body)
    for piece in pieces:
        assert piece == piece.strip() and piece
    flat = [u for seg in segments(text, layout) for u in seg.units]
    assert all(a.end <= b.start for a, b in itertools.pairwise(flat))


def test_sentence_spans_whitespace_only_region_is_empty():
    assert sentence_spans("  \n\n \t\n", 0, 7) == []
    assert sentence_spans("abc. def.", 4, 4) == []
    assert sentence_spans("abc. def.", 4, 9) == [Span(5, 9)]


# --- pack -------------------------------------------------------------------------------------


def test_pack_without_overlap_fills_greedily():
    assert pack([3, 3, 3, 3, 3], budget=6, overlap=0) == [(0, 2), (2, 4), (4, 5)]
    assert pack([1, 2, 3], budget=100, overlap=10) == [(0, 3)]
    assert pack([], budget=10, overlap=2) == []


def test_pack_respects_budget_exactly():
    counts = [4, 4, 2, 5, 5]
    ranges = pack(counts, budget=10, overlap=0)
    assert ranges == [(0, 3), (3, 5)]
    for a, b in ranges:
        assert sum(counts[a:b]) <= 10


def test_pack_single_oversize_unit_forms_its_own_range():
    assert pack([2, 50, 2], budget=10, overlap=0) == [(0, 1), (1, 2), (2, 3)]
    assert pack([50], budget=10, overlap=5) == [(0, 1)]
    assert pack([50, 60], budget=10, overlap=5) == [(0, 1), (1, 2)]


def test_pack_overlap_repeats_tail_units():
    counts = [2, 2, 2, 2, 2, 2]
    ranges = pack(counts, budget=6, overlap=2)
    assert ranges == [(0, 3), (2, 5), (4, 6)]
    # each new range starts with the previous range's last unit
    for (_, prev_end), (start, _) in itertools.pairwise(ranges):
        assert start == prev_end - 1


def test_pack_overlap_never_exceeds_overlap_tokens():
    counts = [3, 3, 3, 3, 3, 3, 3]
    ranges = pack(counts, budget=9, overlap=5)  # one 3-token unit fits, two would be 6
    assert ranges == [(0, 3), (2, 5), (4, 7)]


def test_pack_always_progresses_even_when_overlap_is_whole_range():
    # overlap larger than anything: the next range must still start after the previous start
    counts = [1, 1, 1, 1, 1]
    ranges = pack(counts, budget=2, overlap=100)
    starts = [a for a, _ in ranges]
    assert starts == sorted(set(starts))
    assert ranges[-1][1] == len(counts)


@pytest.mark.parametrize("seed", range(40))
def test_pack_properties_random(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    counts = [rng.choice([1, 2, 3, 5, 8, 13, 40]) for _ in range(n)]
    budget = rng.randint(5, 30)
    overlap = rng.randint(0, budget - 1)
    ranges = pack(counts, budget, overlap)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == n
    for a, b in ranges:
        assert a < b
        assert sum(counts[a:b]) <= budget or b - a == 1
        # greedy: the next unit did not fit
        assert b == n or sum(counts[a : b + 1]) > budget
    for (a0, b0), (a1, _b1) in itertools.pairwise(ranges):
        assert a0 < a1 <= b0  # progress, and no unit is skipped
        assert sum(counts[a1:b0]) <= overlap


def test_pack_every_range_adds_a_new_unit():
    # budget 320 / overlap 48 are the defaults: a 40-token sentence is repeated as overlap, but
    # the next 300-token sentence does not fit beside it, so (1, 2) is emitted on its own.
    ranges = pack([200, 40, 300], budget=320, overlap=48)
    ends = [b for _, b in ranges]
    assert ends == sorted(set(ends)), ranges  # actual: [(0, 2), (1, 2), (2, 3)]


def test_split_no_chunk_is_contained_in_the_previous_one():
    text = "Alpha beta gam.  Tiny. Omega omega omega.\n"  # units of 15, 5 and 18 characters
    nodes = split(text, chunk_tokens=20, overlap_tokens=5)
    # actual: ["Alpha beta gam.  Tiny.", "Tiny.", "Omega omega omega."]
    for prev, node in itertools.pairwise(nodes):
        assert node.metadata["char_end"] > prev.metadata["char_end"], [n.text for n in nodes]


# --- content_hash -----------------------------------------------------------------------------


def test_content_hash_depends_on_title_headings_and_text():
    base = content_hash("T", ["A", "B"], "body")
    assert base == content_hash("T", ["A", "B"], "body")
    assert len(base) == 32 and re.fullmatch(r"[0-9a-f]{32}", base)
    assert base != content_hash("T", ["A", "B"], "body!")
    assert base != content_hash("U", ["A", "B"], "body")
    assert base != content_hash("T", ["A"], "body")
    assert base != content_hash("T", ["AB"], "body")


# --- NoteSplitter -----------------------------------------------------------------------------


def inside_long_run(text: str, at: int, budget: int) -> bool:
    """``at`` is inside a run of more than ``budget`` characters with no sentence end, clause
    mark or space: the only place the splitter cuts between characters."""
    marks = "。．｡！？!?" + CLAUSE_MARKS
    a = at
    while a > 0 and not text[a - 1].isspace() and text[a - 1] not in marks:
        a -= 1
    b = at
    while b < len(text) and not text[b].isspace() and text[b] not in marks:
        b += 1
    return at - a > 0 and at < b and b - a > budget


def heading_path_before(lines: list[str], line_no: int) -> list[str]:
    """Independent heading tracker (the note has no code fences)."""
    path: list[tuple[int, str]] = []
    for line in lines[: line_no - 1]:
        m = re.match(r"^(#{1,6}) (.+)$", line)
        if m:
            level = len(m.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, m.group(2).strip())]
    return [h for _, h in path]


CLAUSE_MARKS = "、，､；：,;:"
CLAUSE_OR_SPACE = re.compile(rf"[{CLAUSE_MARKS}\s]")


@pytest.mark.parametrize(("chunk_tokens", "overlap"), [(320, 48), (120, 30), (60, 0), (40, 20)])
def test_split_real_note_properties(chunk_tokens, overlap):
    text = ELMO_BERT.read_text(encoding="utf-8")
    lines = text.split("\n")
    nodes = split(text, chunk_tokens, overlap, title="ELMo と BERT", path=str(ELMO_BERT))
    assert len(nodes) >= 5
    assert [n.metadata["chunk_index"] for n in nodes] == list(range(len(nodes)))
    covered: list[tuple[int, int]] = []
    for node in nodes:
        meta = node.metadata
        a, b = meta["char_start"], meta["char_end"]
        lead = meta["lead_chars"]
        # the chunk is the text of its span, after a repeated table header when it has one
        body = node.text[lead + 1 :] if lead else node.text
        assert body == text[a:b]
        if lead:
            header = node.text[:lead]
            assert header.startswith("|") and header.count("\n") == 1 and header in text
        assert (node.start_char_idx, node.end_char_idx) == (a, b)
        assert body == body.strip()
        # line numbers are 1-based and cover exactly the chunk's lines
        ls, le = meta["line_start"], meta["line_end"]
        assert 1 <= ls <= le <= len(lines)
        assert body.count("\n") == le - ls
        assert body.split("\n")[0] in lines[ls - 1]
        assert body.split("\n")[-1] in lines[le - 1]
        # never crosses a heading, and the heading path is the one in force at the chunk
        for line in lines[ls - 1 : le]:
            assert not line.startswith("#"), (line, meta)
        assert meta["headings"] == heading_path_before(lines, ls)
        # ends at a sentence end, a line end, or (a sentence over the budget) a clause mark or
        # a space; starts likewise
        # a space; or, inside a run longer than the budget with no such place, anywhere
        after = text[b : b + 1]
        assert (
            text[b - 1] in JA_SENTENCE_END + CLAUSE_MARKS
            or after in ("", "\n", " ")
            or inside_long_run(text, b, chunk_tokens)
        ), body
        before = text[:a].rstrip(" \t")
        assert (
            before == ""
            or before[-1] in JA_SENTENCE_END + "\n" + CLAUSE_MARKS
            or text[a - 1] == " "
            or inside_long_run(text, a, chunk_tokens)
        )
        # budget: only a table's row or header (never cut) may be over it
        if meta["tokens"] > chunk_tokens:
            assert all(line.startswith("|") for line in node.text.split("\n")), body
        # metadata carried through, and excluded from the embedded/LLM text
        assert meta["title"] == "ELMo と BERT" and meta["path"] == str(ELMO_BERT)
        assert meta["page"] is None
        assert "line_map" not in meta and "page_starts" not in meta
        assert set(node.excluded_embed_metadata_keys) == set(meta)
        assert meta["content_hash"] == content_hash("ELMo と BERT", meta["headings"], node.text)
        covered.append((a, b))
    # every visible character outside heading lines is inside some chunk
    inside = [False] * len(text)
    for a, b in covered:
        inside[a:b] = [True] * (b - a)
    offset = 0
    for line in text.split("\n"):
        if not line.startswith("#"):
            for i, ch in enumerate(line):
                assert ch.isspace() or inside[offset + i], line
        offset += len(line) + 1
    # chunks appear in document order
    assert [a for a, _ in covered] == sorted(a for a, _ in covered)


def test_split_real_note_overlap_repeats_text_between_neighbours():
    text = ELMO_BERT.read_text(encoding="utf-8")
    with_overlap = split(text, 120, 60, title="t")
    without = split(text, 120, 0, title="t")
    assert len(with_overlap) > len(without)
    overlapping = [
        (p, n)
        for p, n in itertools.pairwise(with_overlap)
        if p.metadata["headings"] == n.metadata["headings"]
        and n.metadata["char_start"] < p.metadata["char_end"]
    ]
    assert overlapping
    for p, n in overlapping:
        shared = text[n.metadata["char_start"] : p.metadata["char_end"]]
        assert p.text.endswith(shared) and n.text.startswith(shared)
        assert len(shared) <= 60
    for p, n in itertools.pairwise(without):
        assert n.metadata["char_start"] >= p.metadata["char_end"]


def test_split_japanese_chunks_end_at_sentence_ends():
    sentence = "これは文の例であり、十分に長いので予算を使い切る。"
    text = "# 見出し\n\n" + sentence * 10 + "\n"
    nodes = split(text, chunk_tokens=3 * len(sentence) + 5)
    assert len(nodes) == 4
    for node in nodes:
        assert node.text.endswith("。")
        assert node.text.startswith("これは")
        assert node.metadata["headings"] == ["見出し"]
        assert node.metadata["line_start"] == node.metadata["line_end"] == 3
    assert [n.metadata["tokens"] for n in nodes] == [3 * len(sentence)] * 3 + [len(sentence)]


def test_split_run_without_a_place_to_cut_is_cut_between_characters_within_the_budget():
    # the embedder would silently truncate a passage over the budget: a run with no space or
    # punctuation is cut between characters, as evenly as the budget allows, nothing lost
    long_sentence = "あ" * 200 + "。"
    text = f"短い文。{long_sentence}短い文二。"
    nodes = split(text, chunk_tokens=50)
    assert "".join(n.text for n in nodes) == text
    assert all(n.metadata["tokens"] <= 50 for n in nodes)
    assert nodes[0].text.startswith("短い文。") and nodes[-1].text.endswith("短い文二。")
    assert len(nodes) == 5  # 4 + 201 + 5 characters in chunks of at most 50


def test_split_table_row_over_the_budget_stays_whole():
    row = "| " + "長い" * 60 + " | x |"
    text = f"| a | b |\n|---|---|\n{row}\n"
    nodes = split(text, chunk_tokens=50)
    assert any(row in n.text for n in nodes)
    assert all(n.text.count("長い") in (0, 60) for n in nodes)


def test_split_long_sentence_is_cut_at_clauses_then_spaces():
    clauses = ["これは読点で区切られた節" + "あ" * 20 + "、"] * 6
    sentence = "".join(clauses)[:-1] + "。"
    nodes = split(f"# 見出し\n\n{sentence}\n", chunk_tokens=70)
    assert len(nodes) >= 3
    assert "".join(n.text for n in nodes) == sentence
    for node in nodes:
        assert node.metadata["tokens"] <= 70
        assert node.text.endswith(("、", "。"))
        assert node.metadata["line_start"] == node.metadata["line_end"] == 3
    english = " ".join(["word"] * 60) + "."
    spaced = split(english, chunk_tokens=50)
    assert len(spaced) >= 5 and all(n.metadata["tokens"] <= 50 for n in spaced)
    assert " ".join(n.text for n in spaced) == english


def test_full_width_and_half_width_terminals_end_sentences():
    text = "一つ目の文．二つ目の文｡三つ目！四つ目?五つ目．値は３．１４である．"
    assert units(text) == [
        "一つ目の文．",
        "二つ目の文｡",
        "三つ目！",
        "四つ目?",
        "五つ目．",
        "値は３．１４である．",
    ]


def test_split_never_crosses_headings():
    text = "# A\none. two.\n## B\nthree. four.\n# C\nfive.\n"
    nodes = split(text, chunk_tokens=1000)
    assert [(n.text, n.metadata["headings"]) for n in nodes] == [
        ("one. two.", ["A"]),
        ("three. four.", ["A", "B"]),
        ("five.", ["C"]),
    ]
    assert [(n.metadata["line_start"], n.metadata["line_end"]) for n in nodes] == [
        (2, 2),
        (4, 4),
        (6, 6),
    ]


def test_split_line_numbers_for_multiline_chunk():
    text = "intro\n\n# H\n\nline one\nline two.\n\n- item a\n- item b\n"
    nodes = split(text, chunk_tokens=1000)
    assert [n.text for n in nodes] == ["intro", "line one\nline two.\n\n- item a\n- item b"]
    assert (nodes[1].metadata["line_start"], nodes[1].metadata["line_end"]) == (5, 9)
    lines = text.splitlines()
    assert "\n".join(lines[4:9]) == nodes[1].text


def test_split_table_repeats_its_header_in_every_chunk_of_rows():
    rows = [f"| 第{n}週 | {50 + n} | {90 - n} | {n % 5} |" for n in range(1, 21)]
    header = "| 週 | 時間 | 点 | 回数 |\n|---|---|---|---|"
    text = "# 記録\n\n表の説明。\n\n" + header + "\n" + "\n".join(rows) + "\n\n後の文。\n"
    nodes = split(text, chunk_tokens=120, overlap_tokens=30)
    lines = text.split("\n")
    table_nodes = [n for n in nodes if "第" in n.text]
    assert len(table_nodes) >= 4
    seen_rows = set()
    for node in table_nodes:
        assert node.text.startswith(header) or node.text.startswith("表の説明。")
        assert header in node.text
        meta = node.metadata
        assert meta["tokens"] <= 120
        lead = meta["lead_chars"]
        body = node.text[lead + 1 :] if lead else node.text
        assert body == text[meta["char_start"] : meta["char_end"]]
        # lines are those of the rows (and text before them), never the header's
        span = lines[meta["line_start"] - 1 : meta["line_end"]]
        assert "\n".join(span) == body
        if lead:
            assert node.text[:lead] == header
            assert span[0].startswith("| 第")
        seen_rows.update(line for line in span if line.startswith("| 第"))
        # a chunk never ends on the header alone
        assert not node.text.endswith("|---|---|---|---|")
    assert seen_rows == set(rows)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_split_line_numbers_any_line_ending_after_reader_normalisation(newline):
    from ingest.readers import normalise_newlines

    raw = newline.join(["# H", "first.", "second", "", "third."]) + newline
    text = normalise_newlines(raw)
    nodes = split(text, chunk_tokens=6)
    assert [(n.text, n.metadata["line_start"]) for n in nodes] == [
        ("first.", 2),
        ("second", 3),
        ("third.", 5),
    ]


def test_split_content_hash_changes_with_text_only_where_text_changes():
    a = "# H\n\nAlpha sentence.\n\n# I\n\nBeta sentence.\n"
    b = a.replace("Beta", "Gamma")
    na, nb = split(a, title="t"), split(b, title="t")
    assert na[0].metadata["content_hash"] == nb[0].metadata["content_hash"]
    assert na[1].metadata["content_hash"] != nb[1].metadata["content_hash"]
    # the same text under another title hashes differently
    assert split(a, title="other")[0].metadata["content_hash"] != na[0].metadata["content_hash"]


def test_split_uses_html_line_map():
    text = "# Title\nFirst paragraph.\nSecond paragraph.\n## Sub\nThird paragraph.\n"
    line_map = [10, 12, 15, 20, 31]
    nodes = split(text, chunk_tokens=20, title="h", line_map=line_map, kind="html")
    assert [n.text for n in nodes] == ["First paragraph.", "Second paragraph.", "Third paragraph."]
    assert [(n.metadata["line_start"], n.metadata["line_end"]) for n in nodes] == [
        (12, 12),
        (15, 15),
        (31, 31),
    ]
    whole = split(text, chunk_tokens=1000, line_map=line_map)
    assert (whole[0].metadata["line_start"], whole[0].metadata["line_end"]) == (12, 15)
    for n in nodes:
        assert "line_map" not in n.metadata
        assert n.metadata["kind"] == "html"


def test_split_uses_pdf_page_starts():
    page1 = "Page one first sentence.\nPage one second sentence."
    page2 = "Page two sentence.\nAnother on page two."
    page3 = "Third page."
    text = page1 + "\n\n" + page2 + "\n\n" + page3 + "\n\n"
    page_starts = [0, len(page1) + 2, len(page1) + 2 + len(page2) + 2]
    nodes = split(text, chunk_tokens=30, page_starts=page_starts)
    by_text = {n.text: n.metadata["page"] for n in nodes}
    assert by_text == {
        "Page one first sentence.": 1,
        "Page one second sentence.": 1,
        "Page two sentence.": 2,
        "Another on page two.": 2,
        "Third page.": 3,
    }
    assert all("page_starts" not in n.metadata for n in nodes)


def test_split_empty_and_whitespace_text_gives_no_chunks():
    assert split("") == []
    assert split("  \n\n\t\n") == []
    assert split("# Only a heading\n") == []


def test_split_counter_called_once_with_all_units():
    calls: list[list[str]] = []

    def counter(xs):
        calls.append(list(xs))
        return [len(x) for x in xs]

    text = "# A\nOne. Two.\n# B\nThree.\n"
    NoteSplitter(counter, chunk_tokens=100, overlap_tokens=0).split(text, {})
    assert calls == [["One.", "Two.", "Three."]]


def test_get_nodes_from_documents_uses_split():
    from llama_index.core import Document

    doc = Document(text="# A\nOne sentence. Two sentence.\n", metadata={"title": "doc"})
    splitter = NoteSplitter(char_count, chunk_tokens=15, overlap_tokens=0)
    nodes = splitter.get_nodes_from_documents([doc])
    assert [n.get_content() for n in nodes] == ["One sentence.", "Two sentence."]
    assert all(n.metadata["headings"] == ["A"] for n in nodes)


def test_sentence_spans_of_a_fragment_cut_at_its_lines():
    """A chunk's text cut without its Markdown context (the answer checks do this)."""
    text = "Intro line\n- item one\n- item two\n| a | b |\n| 1 | 2 |\n```\nx = 1\n```\n\nlast．next"
    got = [text[s.start : s.end] for s in sentence_spans(text, 0, len(text))]
    assert got == [
        "Intro line",
        "- item one",
        "- item two",
        "| a | b |",
        "| 1 | 2 |",
        "```",
        "x = 1",
        "```",
        "last．",
        "next",
    ]


def test_a_table_chunk_maps_its_offsets_to_the_note_lines():
    from shiori.chunk import Chunk

    rows = [f"| r{n} | {n} |" for n in range(1, 31)]
    text = "# T\n\n| k | v |\n|---|---|\n" + "\n".join(rows) + "\n"
    nodes = split(text, chunk_tokens=60)
    later = next(n for n in nodes if n.metadata["lead_chars"])
    meta = later.metadata
    chunk = Chunk(
        "/p", "p", "T", meta["headings"], meta["line_start"], meta["line_end"],
        meta["char_start"], meta["char_end"], later.text, 0, "h",
        lead_chars=meta["lead_chars"], lead_line=meta["lead_line"],
    )  # fmt: skip
    lines = text.split("\n")
    assert chunk.lead_line == 3 and lines[chunk.lead_line - 1] == "| k | v |"
    offset = 0
    for piece in later.text.split("\n"):
        assert lines[chunk.line_of(offset) - 1] == piece
        offset += len(piece) + 1


# --- issue 25: footnotes, encoded data, PDF pages -----------------------------------------------


def test_split_indexes_footnote_definitions_under_the_heading_of_their_reference():
    # "原論文" and "二乗" only make sense in the section that refers to the footnote: its
    # definition is its own chunk (its own lines) under that section's heading path
    text = (
        "# 注意機構\n\n## Transformer\n\n位置は位置符号化で与える[^pe]。\n\n## 計算量\n\n"
        "二乗に比例する[^cost]。\n\n"
        "[^pe]: 原論文の位置符号化は学習するパラメータを持たない。\n"
        "[^cost]: 計算量はO(n^2d)になる。\n"
        "[^unused]: どこからも参照されない注。\n"
    )
    nodes = split(text, chunk_tokens=320)
    by_line = {(n.metadata["line_start"], n.metadata["line_end"]): n for n in nodes}
    assert sorted(by_line) == [(5, 5), (9, 9), (11, 11), (12, 12), (13, 13)]
    assert by_line[(11, 11)].metadata["headings"] == ["注意機構", "Transformer"]
    assert "学習するパラメータを持たない" in by_line[(11, 11)].text
    assert "O(n^2d)" in by_line[(12, 12)].text
    assert by_line[(12, 12)].metadata["headings"] == ["注意機構", "計算量"]
    # never referred to: under the heading where it is written
    assert "参照されない" in by_line[(13, 13)].text
    assert by_line[(13, 13)].metadata["headings"] == ["注意機構", "計算量"]


def _b64(n: int, seed: int = 3) -> str:
    import base64

    return base64.b64encode(random.Random(seed).randbytes(n)).decode()


B64_RUN = re.compile(r"[A-Za-z0-9+/=]{100,}")


def test_split_leaves_a_data_uri_image_out_and_keeps_its_alt_text():
    uri = "data:image/png;base64," + _b64(9000)
    text = (
        f"# 学習曲線の記録\n\n## 実験 3\n\n次の図は損失を示す。\n\n![学習曲線（実験3）]({uri})\n\n"
        "検証損失は 12 エポック目で最小になった。\nそこで patience を 3 にした。\n"
    )
    nodes = split(text, chunk_tokens=320)
    # one passage: the figure's alt text between the sentences around it, the payload left out
    assert [(n.metadata["line_start"], n.metadata["line_end"]) for n in nodes] == [(5, 10)]
    assert nodes[0].text == (
        "次の図は損失を示す。\n\n![学習曲線（実験3）]\n\n"
        "検証損失は 12 エポック目で最小になった。\nそこで patience を 3 にした。"
    )
    assert all(not B64_RUN.search(n.text) and "base64" not in n.text for n in nodes)
    assert all(n.metadata["headings"] == ["学習曲線の記録", "実験 3"] for n in nodes)


def test_split_text_on_both_sides_of_an_inline_image_is_one_chunk():
    uri = "data:image/jpeg;base64," + _b64(300)
    text = f"前の文。![図]({uri})後の文。\n"
    assert [n.text for n in split(text)] == ["前の文。![図]後の文。"]


def test_split_bare_base64_in_code_is_left_out():
    text = '```\nkey = "' + _b64(600) + '"\nprint(key)\n```\n'
    nodes = split(text, chunk_tokens=50)
    # the code around the run stays, its line whole; no chunk holds the run
    assert [n.text for n in nodes] == ['```\nkey = ""\nprint(key)\n```']


_URL_PART = st.one_of(
    st.from_regex(r"[A-Z]?[a-z]{2,10}[0-9]{0,2}", fullmatch=True),
    st.from_regex(r"[0-9a-f]{8,64}", fullmatch=True),
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["https://www.notion.so/", "https://github.com/", "www.", "s3://bucket/"]),
    st.lists(st.tuples(st.sampled_from(["/", "-", "_", "."]), _URL_PART), min_size=1, max_size=25),
)
def test_split_keeps_urls_whole_and_warns_of_nothing(head, parts):
    url = head + "".join(sep + part for sep, part in parts).lstrip("/-_.")
    text = f"# 資料\n\n講義ノートは {url} にある。\n\n次の文。\n"
    nodes = split(text, chunk_tokens=1000)
    assert any(url in n.text for n in nodes)
    assert markdown_layout(text).warnings == []


def test_split_a_reference_defined_data_uri_is_left_out():
    png = "data:image/png;base64," + _b64(9000)
    text = f"前の文。\n![図][fig3]\n\n[fig3]: {png}\n\n後の文。\n"
    nodes = split(text, chunk_tokens=1000)
    assert [n.text for n in nodes] == ["前の文。\n![図][fig3]", "後の文。"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '前の文。\n\n<img src="{uri}" alt="曲線">\n\n後の文。\n',
            ['前の文。\n\n alt="曲線">\n\n後の文。'],
        ),
        ('前の文。<img src="{uri}">後の文。\n', ["前の文。後の文。"]),
        ("前の文。<IMG SRC='{uri}'/>後の文。\n", ["前の文。後の文。"]),
    ],
)
def test_split_an_html_img_with_a_data_uri_leaves_no_tag_behind(template, expected):
    text = template.format(uri="data:image/png;base64," + _b64(600))
    assert [n.text for n in split(text)] == expected


def test_split_pdf_chunks_never_span_a_page_break():
    page1 = "誤差逆伝播法で各層の重みの勾配を求める。\n連鎖律を使う。"
    page2 = "確率的勾配降下法では学習率を小さくする。"
    text = page1 + "\n\n" + page2 + "\n\n"
    page_starts = [0, len(page1) + 2]
    nodes = split(text, chunk_tokens=1000, page_starts=page_starts, layout="paragraphs")
    assert [(n.text, n.metadata["page"], n.metadata["line_start"]) for n in nodes] == [
        (page1, 1, 1),
        (page2, 2, 4),
    ]
    # a page whose text runs straight into the next one (no blank line between) as well
    glued = "一ページ目の文。\n二ページ目の文。\n"
    nodes = split(glued, chunk_tokens=1000, page_starts=[0, 9], layout="paragraphs")
    assert [(n.text, n.metadata["page"]) for n in nodes] == [
        ("一ページ目の文。", 1),
        ("二ページ目の文。", 2),
    ]


# --- an image inside a sentence does not cut it (issue 25 review) --------------------------------


@pytest.mark.parametrize(
    ("template", "visible"),
    [
        (
            "検証損失は![図]({uri})のように 12 エポック目で最小になった。",
            "検証損失は![図]のように 12 エポック目で最小になった。",
        ),
        (
            "The loss {uri} fell until epoch 12.",  # a bare data: URI
            "The loss  fell until epoch 12.",
        ),
        (
            '検証損失は<img src="{uri}">のように下がった。',
            "検証損失はのように下がった。",
        ),
    ],
)
def test_split_a_sentence_around_an_inline_image_is_one_chunk(template: str, visible: str) -> None:
    text = "# 実験\n\n" + template.format(uri="data:image/png;base64," + _b64(900)) + "\n"
    (node,) = split(text)
    assert node.text == visible
    meta = node.metadata
    assert (meta["line_start"], meta["line_end"]) == (3, 3)
    # its span is the sentence's, image included
    assert text[meta["char_start"] : meta["char_end"]].startswith(visible[:4])
    assert text[meta["char_start"] : meta["char_end"]].endswith(visible[-4:])


def test_split_a_sentence_around_a_wrapped_image_keeps_its_lines() -> None:
    payload = _b64(57 * 6)
    wrapped = "\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    text = f"# 実験\n\n検証損失は ![図](data:image/png;base64,{wrapped}) のように\n下がった。\n"
    (node,) = split(text)
    meta = node.metadata
    last = text.count("\n") + 0  # the line of 下がった。
    assert (meta["line_start"], meta["line_end"]) == (3, last)
    assert "base64" not in node.text and not B64_RUN.search(node.text)
    assert node.text.startswith("検証損失は ![図]") and node.text.endswith("のように\n下がった。")
    # the text keeps the line breaks it stands for: a line of the text is a line of the note
    lines = text.split("\n")
    for offset in (node.text.index("のように"), node.text.index("下がった")):
        line = meta["line_start"] + node.text.count("\n", 0, offset)
        assert node.text[offset : offset + 3] in lines[line - 1]


SENTENCE_WORDS = ["行列", "固有値", "の", "は", "model", "loss", " "]


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.sampled_from(SENTENCE_WORDS), min_size=2, max_size=30),
    at=st.integers(0, 30),
    seed=st.integers(0, 2**16),
    wrap=st.booleans(),
)
def test_split_no_image_inside_a_sentence_cuts_it(
    words: list[str], at: int, seed: int, wrap: bool
) -> None:
    payload = _b64(600, seed)
    if wrap:
        payload = "\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    at = min(at, len(words))
    before, after = "".join(words[:at]), "".join(words[at:])
    sentence = f"{before}![図](data:image/png;base64,{payload}){after}。"
    text = f"# 節\n\n前の文。{sentence}次の文。\n"
    nodes = split(text, chunk_tokens=1000)
    whole = f"{before}![図]{after}。"
    # one chunk, the image reduced to its alt text, its line breaks kept (lines stay right)
    assert [n.text.replace("\n", "") for n in nodes] == ["前の文。" + whole + "次の文。"]
    assert nodes[0].text.count("\n") == payload.count("\n")
    assert (nodes[0].metadata["line_start"], nodes[0].metadata["line_end"]) == (
        3,
        text.count("\n"),
    )
