"""Which sparse tokenizer for Japanese? Paragraph retrieval on JSQuAD with BM25 only.

Scores exactly what Qdrant computes with the IDF modifier (idf = ln((N - n + 0.5)/(n + 0.5) + 1)
times the stored document value, summed over query terms), in NumPy/SciPy, so every variant is
measured in seconds without a model.

    python bench/sparse_jsquad.py [--data ../shared/data/jsquad/valid-v1.3.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from shiori.sparse import SparseEncoder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/jsquad/valid-v1.3.json"


def load(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    docs: list[str] = []
    questions: list[tuple[str, int]] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            doc_id = len(docs)
            docs.append(para["context"].replace("[SEP]", "\n"))
            questions.extend((qa["question"], doc_id) for qa in para["qas"])
    return docs, questions


def evaluate(encoder: SparseEncoder, docs: list[str], questions: list[tuple[str, int]]) -> dict:
    began = time.perf_counter()
    vocab: dict[int, int] = {}
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        vec = encoder.encode_document(doc)
        for term, value in zip(vec.indices, vec.values, strict=True):
            rows.append(i)
            cols.append(vocab.setdefault(term, len(vocab)))
            vals.append(value)
    matrix = csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)))
    df = np.diff(matrix.tocsc().indptr)
    n = len(docs)
    idf = np.log((n - df + 0.5) / (df + 0.5) + 1.0)
    hits = {1: 0, 5: 0, 10: 0}
    rr = 0.0
    for question, gold in questions:
        q = encoder.encode_query(question)
        ids = [vocab[t] for t in q.indices if t in vocab]
        scores = np.asarray(matrix[:, ids] @ idf[ids]).ravel() if ids else np.zeros(n)
        order = np.argsort(-scores, kind="stable")[:10]
        rank = next((r for r, d in enumerate(order, 1) if d == gold), None)
        if rank:
            rr += 1 / rank
            for k in hits:
                hits[k] += rank <= k
    total = len(questions)
    return {
        **{f"R@{k}": round(v / total, 4) for k, v in hits.items()},
        "MRR@10": round(rr / total, 4),
        "terms": len(vocab),
        "seconds": round(time.perf_counter() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    docs, questions = load(args.data)
    variants = {
        "CJK bigrams + unigrams, BM25 (default)": SparseEncoder(),
        "CJK bigrams only": SparseEncoder(unigrams=False),
        "bigrams + unigrams, b=0.5": SparseEncoder(b=0.5),
        "bigrams + unigrams, k1=1.5": SparseEncoder(k1=1.5),
    }
    print(f"JSQuAD valid: {len(docs)} paragraphs, {len(questions)} questions")
    print("| variant | R@1 | R@5 | R@10 | MRR@10 | terms |")
    print("|---|---|---|---|---|---|")
    for name, encoder in variants.items():
        r = evaluate(encoder, docs, questions)
        print(f"| {name} | {r['R@1']} | {r['R@5']} | {r['R@10']} | {r['MRR@10']} | {r['terms']} |")


if __name__ == "__main__":
    main()
