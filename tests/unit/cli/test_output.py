"""The command's output prints note text as written: a note, a path or an answer holding
"[/INST]" or "[draft]" is text, never Rich markup (which crashed on a stray closing tag and
silently ate what looked like an opening one)."""

from __future__ import annotations

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from shiori.cli import common
from shiori.cli.study import _write
from study.items import StudyItem
from study.roundtrip import Quiz

MARKUP_LIKE = ["[/INST]", "[mask]", "[bold]x[/bold]", "notes/[draft]/a.md", "[/]", "[link=x]y"]


def _item(text: str) -> StudyItem:
    return StudyItem.make(
        question=f"{text} とは何ですか？",
        answer=f"{text} の答え",
        evidence=f"- {text} とは何かのタグである。",
        source=f"notes/{text}.md",
        heading=("見出し",),
        lines=(3, 3),
        page=None,
        language="ja",
        kind="definition",
    )


@pytest.mark.parametrize("text", MARKUP_LIKE)
def test_quiz_items_print_as_written(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    _write(Quiz(items=[_item(text)]), as_json=False, anki=None, tsv=None)
    printed = capsys.readouterr().out
    assert f"{text} とは何ですか？" in printed
    assert f"{text} の答え" in printed


@given(st.text(alphabet="[]/ab =", min_size=1, max_size=12))
def test_errors_and_progress_lines_print_as_written(text: str) -> None:
    with common.err.capture() as captured:
        common.say(f"ingest: {text}")
        with pytest.raises(typer.Exit):
            common.fail(f"no such heading: {text}")
    printed = captured.get()
    assert f"ingest: {text}" in printed
    assert f"no such heading: {text}" in printed
