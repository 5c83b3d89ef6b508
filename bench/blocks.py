"""Benchmarks write their figures into docs/benchmarks.md between markers, replacing the last
run's block, so the document always holds the newest figures with the command behind them."""

from __future__ import annotations

from pathlib import Path


def write_block(doc_path: Path, begin: str, end: str, text: str, heading: str) -> None:
    """Replace the block between ``begin`` and ``end`` (``text`` includes both markers), or
    append it under ``heading`` when the document has none yet."""
    doc = doc_path.read_text(encoding="utf-8") if doc_path.exists() else ""
    if begin in doc and end in doc:
        head, _, rest = doc.partition(begin)
        doc = head + text + rest.partition(end)[2]
    else:
        doc += f"\n## {heading}\n\n{text}\n"
    doc_path.write_text(doc, encoding="utf-8")
