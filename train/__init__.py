"""Models Shiori trains for itself (none can be downloaded here): the grounding verifier."""
