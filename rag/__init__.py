"""The answer engine: question → evidence → a grounded answer with citations, or an abstention.

Independent of HTTP: its result is `rag.answer.Answer` (plain JSON by `Answer.to_json`), which
the API schemas, the CLI and the evaluation map from. It reads the index through the core
(`shiori.index`) and talks to any OpenAI-compatible LLM.
"""
