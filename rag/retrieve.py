"""Question → the most relevant live chunks: dense + sparse, fused in one Qdrant query.

Besides the fused rank, every passage carries its raw dense cosine similarity to the question
and the share of the question's terms it contains: evidence that abstention uses, since a
fused rank says which chunk is best, not whether any chunk is good enough.

Each step happens once: the question is embedded once and tokenised once (its sparse query's
term ids are the terms whose share is measured); copies of a passage are dropped once, by the
store (`NoteIndex.hybrid_query`, ``distinct``), and `Retriever.mentioning` drops them by the same
rule (`same_text`) across its searches, so packing does not de-duplicate again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from rag.passage import Filters, Passage
from rag.terms import mentions
from shiori.chunk import Chunk
from shiori.embedding import Embedder
from shiori.index import NoteIndex
from shiori.sparse import SparseEncoder, term_id, tokens


def same_text(chunk: Chunk) -> str:
    """The key under which two passages are one: their text (a note ingested from two folders,
    or copied, has the same passages at two paths). The store's ``distinct`` uses the same."""
    return chunk.text


class Retriever:
    """Holds the shared embedder, encoder and index; one per process."""

    def __init__(
        self,
        index: NoteIndex,
        embedder: Embedder,
        sparse: SparseEncoder | None = None,
        *,
        fusion: str = "dbsf",  # measured on JSQuAD: R@1 0.904 vs 0.881 for RRF
        prefetch: int = 40,
        term_probe: int = 3,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.sparse = sparse or SparseEncoder()
        self.fusion = fusion
        self.prefetch = prefetch
        self.term_probe = term_probe  # passages looked at per missing term

    def search(
        self, question: str, top_k: int = 5, filters: Filters | None = None
    ) -> list[Passage]:
        """At most ``top_k`` passages, best first, with distinct texts; filters are applied by
        the store. Raises what the embedder or the store raises."""
        query_vec = self.embedder.embed_queries([question])[0]
        query = self.sparse.encode_query(question)  # the question's only tokenisation
        query_terms = set(query.indices)
        hits = self.index.hybrid_query(
            query_vec.tolist(),
            query,
            top_k,
            prefetch=max(self.prefetch, top_k),
            fusion=self.fusion,
            flt=filters,
        )
        passages = []
        for chunk, score, vector in hits:
            # the dense vector is fetched for this cosine alone (a fused score is no similarity)
            similarity = float(np.dot(query_vec, np.asarray(vector))) if vector else 0.0
            # The chunk's terms from its heading and text as stored. Not its indexed sparse
            # vector: that was encoded from `ingest.pipeline.sparse_text` (title, heading path,
            # aliases, link labels), so the share would change and with it abstention.
            chunk_terms = {
                term_id(t) for t in tokens(f"{chunk.heading}\n{chunk.text}", self.sparse.unigrams)
            }
            overlap = len(query_terms & chunk_terms) / len(query_terms) if query_terms else 0.0
            passages.append(
                Passage(chunk=chunk, score=score, similarity=similarity, term_overlap=overlap)
            )
        return passages

    def mentioning(
        self, terms: Sequence[str], have: Sequence[Passage], filters: Filters | None = None
    ) -> list[Passage]:
        """Passages that mention terms the question names but ``have`` lacks, found by searching
        for each term alone (a long Japanese question can bury an English term: "Chain-of-thought
        プロンプティングを…"). They rank just below the best passage already found, so packing
        keeps them; none are made up: each one literally mentions its term. None repeats a
        passage of ``have`` or another one found, by place or by text (`same_text`)."""
        if not have:
            return []
        seen = {(p.chunk.path, p.chunk.chunk_index) for p in have}
        texts = {same_text(p.chunk) for p in have}
        found: list[Passage] = []
        for term in terms:
            for hit in self.search(term, self.term_probe, filters):
                key = (hit.chunk.path, hit.chunk.chunk_index)
                if key not in seen and same_text(hit.chunk) not in texts and mentions(hit, term):
                    seen.add(key)
                    texts.add(same_text(hit.chunk))
                    found.append(replace(hit, score=have[0].score))
                    break
        return found
