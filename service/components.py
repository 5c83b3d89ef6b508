"""The parts a running service shares: the runtime's (`runtime.parts.Runtime`) and the service's own
(feedback store, metrics, request limits, `shiori up`'s vLLM supervisor), built once at start-up
and used by every request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from runtime.parts import Runtime
from service.api.limits import GenerationSlots
from service.feedback import FeedbackStore
from service.metrics import Metrics
from shiori.config import Settings


@dataclass
class Components(Runtime):
    feedback: FeedbackStore
    metrics: Metrics = field(default_factory=Metrics)
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one ingest at a time
    generation_slots: GenerationSlots = field(default_factory=lambda: GenerationSlots(4, 5))
    # `shiori up`'s supervisor of the local vLLM (runtime.llm.supervisor), for /readyz
    llm_supervisor: Any = None

    @classmethod
    def extra_parts(cls, settings: Settings) -> dict[str, Any]:
        return {
            "feedback": FeedbackStore(settings.feedback_path),
            "generation_slots": GenerationSlots(
                settings.max_generations, settings.busy_retry_after_s
            ),
        }
