"""The shared parts, built once and used by every question.

Like qdrant-client's one interface over local and remote stores, nothing here cares whether
Qdrant is embedded or a server, or which OpenAI-compatible server generates: settings decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from openai import AsyncOpenAI

from ingest.pipeline import Ingestor
from rag.answer import Answerer
from rag.retrieve import Retriever
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.grounding import Claim, GroundingVerifier
from shiori.index import NoteIndex, StoreEngine, open_client


@dataclass
class Runtime:
    """One embedding model, one Qdrant client, one async OpenAI client and what is wired on
    them. `service.components.Components` adds what only the HTTP service needs."""

    settings: Settings
    embedder: Embedder
    client: StoreEngine
    index: NoteIndex
    retriever: Retriever
    llm: AsyncOpenAI
    answerer: Answerer
    ingestor: Ingestor

    @classmethod
    def build(cls, settings: Settings, embedder: Embedder | None = None) -> Self:
        """Open the store and load the models. Raises the index's own errors (locked store,
        unreachable server, wrong dimension) and `shiori.models.ModelError` for the caller to
        report."""
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
    def assemble(cls, settings: Settings, embedder: Embedder, index: NoteIndex) -> Self:
        """Wire the rest around an open index and a loaded model (tests share theirs)."""
        index.warm()  # open the embedded store's segments now, not at the first query
        embedder.embed_queries(["warm-up"])  # load the model now, not at the first question
        retriever = Retriever(index, embedder)
        llm = Answerer.client_for(settings)
        grounding = GroundingVerifier(settings)
        if settings.verifier != "off" and grounding.available:
            grounding.score([Claim("warm-up", "", "warm-up", "warm-up")])  # load it now
        return cls(
            settings=settings,
            embedder=embedder,
            client=index.client,
            index=index,
            retriever=retriever,
            llm=llm,
            answerer=Answerer(settings, retriever, llm, grounding),
            ingestor=Ingestor(settings, index, embedder),
            **cls.extra_parts(settings),
        )

    @classmethod
    def extra_parts(cls, settings: Settings) -> dict[str, Any]:
        """Keyword arguments of the fields a subclass adds (none here)."""
        return {}

    async def aclose(self) -> None:
        await self.llm.close()
        self.client.close()
