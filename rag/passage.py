"""What retrieval hands to the rest of the answer engine: a chunk with the evidence of its
relevance."""

from __future__ import annotations

from dataclasses import dataclass

from shiori.index import Chunk, ChunkFilter

Filters = ChunkFilter  # sources, path prefix, title, tags


@dataclass(frozen=True)
class Passage:
    chunk: Chunk
    score: float  # the fused score (rank-based for RRF)
    similarity: float  # cosine(question, chunk) from the dense vectors
    term_overlap: float  # share of the question's distinct sparse terms found in the chunk
    # the stored chunks this passage was joined from (`packing.merge_adjacent`), in note order;
    # empty when it is one chunk
    parts: tuple[Chunk, ...] = ()
