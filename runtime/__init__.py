"""What the entry points run on: the shared parts built once (settings, embedder, index, LLM
client, answerer, ingestor) for the HTTP service, the CLI and the evaluation alike, and the
local vLLM launcher (`runtime.llm`)."""

from runtime.parts import Runtime

__all__ = ["Runtime"]
