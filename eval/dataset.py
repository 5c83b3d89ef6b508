"""Golden sets: one JSON object per line, the questions an evaluation asks and what it expects.

    {"id": "ja-gemma-date",                 unique within the file
     "question": "Gemma が公開されたのはいつですか？",
     "reference_answer": "2024年2月21日",    null when the notes cannot answer it
     "reference_sources": ["notes/05-gemma.md"],   note paths as Shiori shows them (or chunk
                                            ids); [] when unanswerable
     "answerable": true,
     "language": "ja",                      the question's language: ja | en
     "category": "ja"}                      free label for breakdowns (optional)

The bundled set is `eval/datasets/notes.jsonl` (84 questions over `notes/`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class GoldenItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    reference_answer: str | None
    reference_sources: list[str] = Field(default_factory=list)
    answerable: bool
    language: Literal["ja", "en"]
    category: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> GoldenItem:
        if self.answerable and not self.reference_answer:
            raise ValueError("an answerable item needs a reference_answer")
        if not self.answerable and self.reference_answer:
            raise ValueError("an unanswerable item has reference_answer null")
        return self


class DatasetError(ValueError):
    """A golden set that cannot be used, with every problem and its line number."""


def load(path: Path) -> list[GoldenItem]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    items: list[GoldenItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = GoldenItem.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}"
                            for e in exc.errors())  # fmt: skip
            problems.append(f"line {number}: {why}")
            continue
        if item.id in seen:
            problems.append(f"line {number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if problems:
        raise DatasetError(f"{path}: " + "\n  ".join(["invalid golden set", *problems]))
    if not items:
        raise DatasetError(f"{path}: no items")
    return items


def save(items: Iterable[GoldenItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item.model_dump(), ensure_ascii=False) + "\n")


def select(
    items: list[GoldenItem], limit: int | None = None, sample: int | None = None, seed: int = 0
) -> list[GoldenItem]:
    """A slice of a large set: a seeded random sample, and/or the first ``limit``."""
    import random

    chosen = list(items)
    if sample is not None and sample < len(chosen):
        chosen = random.Random(seed).sample(chosen, sample)
    return chosen[:limit] if limit is not None else chosen
