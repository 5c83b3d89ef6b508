"""rag.tables: a long table is shown to the model as its header and the rows the
question names; everything else passes through unchanged."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from rag.tables import MIN_ROWS, focus_tables

HEADER = "| 週 | 学習時間(分) | 小テスト(点) |\n|---|---|---|"


def table(rows: int) -> str:
    body = "\n".join(f"| 第{w}週 | {50 + w} | {90 - w} |" for w in range(1, rows + 1))
    return f"# 記録\n\n毎週の表。\n\n{HEADER}\n{body}\n\n表の後の文。"


@given(rows=st.integers(MIN_ROWS, 60), data=st.data())
def test_the_named_row_stays_with_its_header_and_the_rest_is_counted(
    rows: int, data: st.DataObject
) -> None:
    week = data.draw(st.integers(1, rows))
    shown = focus_tables(table(rows), f"第{week}週の小テストは何点でしたか？")
    kept = [line for line in shown.split("\n") if line.startswith("| 第")]
    # numbers match as whole numbers: week 8 does not keep the rows holding 58 or 89
    assert f"| 第{week}週 | {50 + week} | {90 - week} |" in kept
    # every other row kept holds the number as a whole cell value (week 5's 55 for "第55週")
    cells = [line.replace("第", " ").replace("週", " ") for line in kept]
    assert all(re.search(rf"\b{week}\b", cell) for cell in cells)
    assert HEADER in shown and shown.startswith("# 記録\n\n毎週の表。") and "表の後の文。" in shown
    assert f"… ({rows - len(kept)} other rows of this table)" in shown


def test_what_the_question_does_not_single_out_is_shown_whole() -> None:
    long = table(20)
    assert focus_tables(long, "いちばん長く勉強したのはどの週？") == long  # no row named
    assert focus_tables(table(MIN_ROWS - 1), "第3週の小テストは？") == table(MIN_ROWS - 1)
    assert focus_tables(long, "学習時間はどう変わった？") == long  # the header only
    prose = "第3週は休んだ。\n\n| a |\n|---|\n| 第3週 |"
    assert focus_tables(prose, "第3週は？") == prose  # a one-row table
