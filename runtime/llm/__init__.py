"""The local vLLM server (CPU build) as tooling: set up, started unless an LLM already answers,
supervised and stopped. The service itself only speaks the OpenAI API to whatever
SHIORI_LLM_URL names."""
