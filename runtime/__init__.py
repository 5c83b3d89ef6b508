"""What the entry points run on: the shared parts built once (`runtime.parts.Runtime`:
settings, embedder, index, LLM client, answerer, ingestor) for the HTTP service, the CLI and
the evaluation alike, and the local vLLM launcher (`runtime.llm`). Nothing is imported here, so
that `runtime.llm` stays light."""
