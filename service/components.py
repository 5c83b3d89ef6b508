"""The parts a running service shares: built once at start-up, used by every request.

Like qdrant-client's one interface over local and remote stores, nothing here cares whether
Qdrant is embedded or a server, or which OpenAI-compatible server generates: settings decide.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI
from qdrant_client import QdrantClient

from ingest.pipeline import Ingestor
from service.api.limits import GenerationSlots
from service.feedback import FeedbackStore
from service.metrics import Metrics
from service.rag.answer import Answerer
from service.rag.retrieve import Retriever
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client


@dataclass
class Components:
    settings: Settings
    embedder: Embedder
    client: QdrantClient
    index: NoteIndex
    retriever: Retriever
    llm: AsyncOpenAI
    answerer: Answerer
    ingestor: Ingestor
    feedback: FeedbackStore
    metrics: Metrics = field(default_factory=Metrics)
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one ingest at a time
    generation_slots: GenerationSlots = field(default_factory=lambda: GenerationSlots(4, 5))
    # `shiori up`'s supervisor of the local vLLM (service.llm.supervisor), for /readyz
    llm_supervisor: Any = None

    @classmethod
    def build(cls, settings: Settings, embedder: Embedder | None = None) -> Components:
        """Open the store and load the models. Raises the index's own errors (locked store,
        unreachable server, wrong dimension) for the caller to report."""
        embedder = embedder or Embedder(settings)
        client = open_client(settings)
        try:
            index = NoteIndex(client, settings, embedder.dimension)
            index.ensure_collections()
            return cls.assemble(settings, embedder, index)
        except BaseException:
            client.close()
            raise

    @classmethod
    def assemble(cls, settings: Settings, embedder: Embedder, index: NoteIndex) -> Components:
        """Wire the rest around an open index and a loaded model (tests share theirs)."""
        index.warm()  # load the in-process search of an embedded store now
        embedder.embed_queries(["warm-up"])  # load the model now, not at the first question
        retriever = Retriever(index, embedder)
        llm = Answerer.client_for(settings)
        return cls(
            settings=settings,
            embedder=embedder,
            client=index.client,
            index=index,
            retriever=retriever,
            llm=llm,
            answerer=Answerer(settings, retriever, llm),
            ingestor=Ingestor(settings, index, embedder),
            feedback=FeedbackStore(settings.feedback_path),
            generation_slots=GenerationSlots(settings.max_generations, settings.busy_retry_after_s),
        )

    async def aclose(self) -> None:
        await self.llm.close()
        self.client.close()
