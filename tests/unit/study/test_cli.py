"""`shiori quiz` and `shiori eval generate` at the command line, where no model is needed:
--help teaches, a missing path is a usage error (exit 2) before anything is loaded."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shiori.cli import app


def test_quiz_help_teaches() -> None:
    result = CliRunner().invoke(app, ["quiz", "--help"])
    assert result.exit_code == 0
    for option in ("--n", "--heading", "--json", "--anki", "--tsv", "--no-check", "--start-llm"):
        assert option in result.output
    assert "shiori quiz notes/" in result.output


def test_missing_paths_are_usage_errors(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    quiz = CliRunner().invoke(app, ["quiz", gone])
    assert quiz.exit_code == 2 and "no such file or folder" in quiz.output
    generate = CliRunner().invoke(app, ["eval", "generate", gone, "--out", str(tmp_path / "g")])
    assert generate.exit_code == 2 and "no such file or folder" in generate.output
    assert not (tmp_path / "g").exists()
