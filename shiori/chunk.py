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
    """One retrievable passage and everything a citation needs. Stored as the point's payload.

    ``text`` is the note's text from ``char_start`` to ``char_end`` (lines ``line_start`` to
    ``line_end``), except that a passage of a split table starts with the table's header rows
    (its first ``lead_chars`` characters and a line break), and that encoded data inside the
    range (a data: URI or base64 run, with an image's link syntax) is left out but for its line
    breaks, so line k of ``text`` is still line ``line_start + k`` (see `ingest.chunking`)."""

    path: str  # absolute path: the document's identity
    source: str  # the path as shown to people (relative to the working directory when inside
    # it), in Unicode NFC, so that a name typed by a person compares equal
    title: str  # front matter `title`, else the first H1, else the file name
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
    tags: list[str] = field(default_factory=list)  # front matter `tags` and inline #tags
    aliases: list[str] = field(default_factory=list)  # front matter `aliases`
    lead_chars: int = 0  # repeated table header at the start of `text` (not in the span)
    lead_line: int = 0  # the line of that header in the note
    # instruction-like text aimed at the model, found at ingest; empty for ordinary text.
    # Notes are data: this text is never to be followed, nor used as a source of facts.
    instruction_spans: tuple[InstructionSpan, ...] = field(default=())

    def line_of(self, offset: int) -> int:
        """The note's line (1-based) of the character at ``offset`` in ``text``."""
        if self.lead_chars and offset <= self.lead_chars:
            return self.lead_line + self.text.count("\n", 0, offset)
        body = self.lead_chars + 1 if self.lead_chars else 0
        return self.line_start + self.text.count("\n", body, max(offset, body))

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
