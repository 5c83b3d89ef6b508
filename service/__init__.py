"""The question-answering service: retrieval, grounded generation through vLLM, HTTP API."""
