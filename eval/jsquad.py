"""SQuAD-format data (JSQuAD) as a Shiori evaluation: one note per paragraph, its questions as
golden items whose reference source is that note and reference answer the first gold span."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eval.dataset import GoldenItem
from ingest.pipeline import display_path


def build(squad_json: Path, corpus_dir: Path) -> list[GoldenItem]:
    """Write the paragraphs to ``corpus_dir`` (once; unchanged files are left alone, so
    re-ingesting them costs nothing) and return the questions as golden items."""
    data = json.loads(squad_json.read_text(encoding="utf-8"))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    items: list[GoldenItem] = []
    n = 0
    for article in data["data"]:
        for para in article["paragraphs"]:
            title, sep, text = para["context"].partition(" [SEP] ")
            if not sep:  # plain SQuAD: no title inside the context
                title, text = article.get("title", f"paragraph {n}"), para["context"]
            doc = corpus_dir / f"{n:05d}.txt"
            body = f"{title}\n{text}\n"
            if not doc.exists() or doc.read_text(encoding="utf-8") != body:
                doc.write_text(body, encoding="utf-8")
            source = display_path(doc.resolve())
            for qa in para["qas"]:
                answers = [a["text"] for a in qa.get("answers", []) if a.get("text")]
                impossible = bool(qa.get("is_impossible")) or not answers
                items.append(
                    GoldenItem(
                        id=str(qa["id"]),
                        question=qa["question"],
                        reference_answer=None if impossible else answers[0],
                        reference_sources=[] if impossible else [source],
                        answerable=not impossible,
                        language="ja"
                        if any("\u3040" <= c <= "\u9fff" for c in qa["question"])
                        else "en",
                        category="jsquad",
                    )
                )
            n += 1
    return items


def corpus_dir_for(squad_json: Path, cache: Path) -> Path:
    digest = hashlib.sha256(squad_json.read_bytes()).hexdigest()[:12]
    return cache / "eval-corpora" / f"{squad_json.stem}-{digest}"
