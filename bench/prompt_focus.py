"""What the focused prompt leaves out (issue 22, shorter prompts), without a language model.

The bundled notes are ingested into a fresh embedded store; every question of the golden set
that reaches generation (not refused by the retrieval gates) is prepared as `/v1/ask` prepares
it, and its prompt built twice over the same passages: whole passages and focused ones
(`rag.focus`). Printed: prompt tokens (the embedding model's tokenizer, system + user message)
both ways, and for answerable items with `must_contain` checks, how many prompts hold every
required term (any one of its alternatives), both ways, naming the items the focus loses.

    python bench/prompt_focus.py [--dataset eval/datasets/notes.jsonl] [--notes notes]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from eval.dataset import load
from ingest.pipeline import Ingestor
from rag.prompt import build_messages
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client

REPO = Path(__file__).resolve().parents[1]


def holds(text: str, required: list[str | list[str]]) -> bool:
    lower = text.lower()
    return all(
        any(a.lower() in lower for a in (r if isinstance(r, list) else [r])) for r in required
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=REPO / "eval" / "datasets" / "notes.jsonl")
    parser.add_argument("--notes", type=Path, default=REPO / "notes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prompt-focus-"))
    settings = Settings(
        qdrant=str(work / "store"), collection="notes", llm_url="http://127.0.0.1:9/v1"
    )
    embedder = Embedder(settings)
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    Ingestor(settings, index, embedder).run([args.notes])
    index.client.close()
    parts = Components.build(settings, embedder)
    tokens: dict[str, list[int]] = {"whole": [], "focused": []}
    held = {"whole": 0, "focused": 0}
    checked, lost = 0, []
    for item in load(args.dataset):
        draft = asyncio.run(parts.answerer.prepare(item.question))
        if draft.messages is None:
            continue
        chunks = [p.chunk for p in draft.passages]
        user = {}
        for way in tokens:
            focus_on = way == "focused"
            style, language = parts.answerer.style, draft.language
            messages = build_messages(item.question, chunks, style, language, focused=focus_on)
            tokens[way].append(sum(embedder.count_tokens([m["content"] for m in messages])))
            user[way] = messages[-1]["content"]
        if item.answerable and item.must_contain:
            checked += 1
            for way in held:
                held[way] += holds(user[way], item.must_contain)
            if holds(user["whole"], item.must_contain) and not holds(
                user["focused"], item.must_contain
            ):
                lost.append(item.id)
    whole, focused = (statistics.mean(tokens[w]) for w in ("whole", "focused"))
    print(f"{len(tokens['whole'])} prompts; tokens, mean: whole {whole:.0f}, focused {focused:.0f}")
    print(
        f"answerable items with required terms: {checked}; all terms in the prompt: "
        f"whole {held['whole']}, focused {held['focused']}; lost by the focus: {lost or 'none'}"
    )
    asyncio.run(parts.aclose())


if __name__ == "__main__":
    main()
