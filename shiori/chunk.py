"""A chunk: one retrievable passage and everything a citation needs (stored as payload)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class InstructionSpan:
    """A piece of a chunk's text that reads as an instruction to the model rather than note
    content (see `ingest.instructions`): ``text[start:end]`` of the chunk, end exclusive."""

    start: int
    end: int
    reason: str  # the rule that matched: override, prompt_leak, role_change, chat_markup,
    # addressed_to_model, answer_directive, hidden_address


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage and everything a citation needs. Stored as the point's payload."""

    path: str  # absolute path: the document's identity
    source: str  # the path as shown to people (relative to the working directory when inside it)
    title: str
    headings: list[str]
    line_start: int  # 1-based, inclusive
    line_end: int
    char_start: int  # offsets into the document text, end exclusive
    char_end: int
    text: str
    chunk_index: int
    content_hash: str
    file_hash: str = ""
    generation: str = ""
    page: int | None = None
    kind: str = "markdown"
    # instruction-like text aimed at the model, found at ingest; empty for ordinary text.
    # Notes are data: this text is never to be followed, nor used as a source of facts.
    instruction_spans: tuple[InstructionSpan, ...] = field(default=())

    @property
    def heading(self) -> str:
        return " > ".join(self.headings)

    @property
    def instruction_texts(self) -> list[str]:
        """The flagged pieces of the text, in order."""
        return [self.text[s.start : s.end] for s in self.instruction_spans]

    def payload(self, live: bool) -> dict[str, Any]:
        data = asdict(self)
        data["heading"] = self.heading
        data["instruction_spans"] = list(data["instruction_spans"])
        data["live"] = live
        return data

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        names = cls.__dataclass_fields__
        fields = {k: v for k, v in payload.items() if k in names}
        spans = fields.get("instruction_spans") or ()
        fields["instruction_spans"] = tuple(
            s if isinstance(s, InstructionSpan) else InstructionSpan(**s) for s in spans
        )
        return cls(**fields)
