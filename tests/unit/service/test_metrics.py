"""The one place the routes count LLM failures."""

from __future__ import annotations

import pytest

from rag.answer import LLMUnavailableError
from service.metrics import Metrics


def test_llm_failures_are_counted_and_still_raised_other_errors_are_not_counted() -> None:
    metrics = Metrics()
    with pytest.raises(LLMUnavailableError), metrics.counting_llm_errors():
        raise LLMUnavailableError("the LLM at http://127.0.0.1:1/v1 does not answer")
    with pytest.raises(ValueError), metrics.counting_llm_errors():
        raise ValueError("not the LLM's fault")
    with metrics.counting_llm_errors():
        pass
    assert metrics.registry.get_sample_value("shiori_llm_errors_total") == 1
