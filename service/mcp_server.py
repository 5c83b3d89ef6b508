"""`shiori mcp`: the notes as a Model Context Protocol server, through the official `mcp` SDK.

Assistants that speak MCP (Claude Desktop, IDEs, agents) get three read-only tools:

- ``search``: the passages that best match a question (note, heading, lines, text);
- ``ask``: a grounded answer with its citations, each with the evidence sentences and their
  lines, or an abstention with the closest passages; a ``history`` makes follow-ups work;
- ``list_notes``: the ingested notes.

Results are structured content (each tool publishes its output schema) with the same facts as
readable text beside them. The server is a client of a running Shiori service (SHIORI_SERVER_URL,
SHIORI_API_KEY): the service owns the store and the models, and an assistant may start this
process at any time without opening either again. Transports: stdio (what assistants launch) and
streamable HTTP (``--http``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from rag.body import line_span, shown_passages, supported_evidence
from shiori.client import AsyncShioriClient, ServiceError, ServiceUnreachableError

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


class Evidence(BaseModel):
    """A sentence of the note that an answer sentence rests on."""

    text: str
    lines: tuple[int, int] = Field(description="its first and last line in the note, 1-based")


class NotePassage(BaseModel):
    """A passage of a note: what a citation points at."""

    n: int = Field(description="the number [n] in the answer (the rank, in search)")
    source: str = Field(description="the note's path")
    title: str
    heading: str = Field(description="heading path inside the note, ' > ' separated")
    lines: tuple[int, int] = Field(description="first and last line in the note, 1-based")
    page: int | None = Field(default=None, description="PDF page")
    text: str
    evidence: list[Evidence] = Field(
        default_factory=list, description="the sentences of this passage the answer rests on"
    )

    @classmethod
    def of(cls, data: dict[str, Any], evidence: list[Evidence] | None = None) -> NotePassage:
        return cls(
            n=data["n"],
            source=data["source"],
            title=data.get("title", ""),
            heading=data.get("heading", ""),
            lines=(data["lines"][0], data["lines"][1]),
            page=data.get("page"),
            text=data["text"],
            evidence=evidence or [],
        )

    def where(self) -> str:
        lines = line_span(*self.lines)
        heading = f" — {self.heading}" if self.heading else ""
        return f"[{self.n}] {self.source}:{lines}{heading}"


class AskResult(BaseModel):
    question: str = Field(description="the question answered (a follow-up made standalone)")
    answer: str = Field(description="the answer with [n] markers, or why there is none")
    abstained: bool = Field(description="true when the notes do not answer the question")
    reason: str
    citations: list[NotePassage] = Field(description="the passages the answer cites")
    closest: list[NotePassage] = Field(
        default_factory=list, description="for an abstention: the closest passages"
    )

    def as_text(self) -> str:
        lines = [self.answer]
        if self.citations:
            lines.append("\nSources:")
            for c in self.citations:
                said = "; ".join(
                    f"“{e.text.strip()}” (lines {e.lines[0]}-{e.lines[1]})" for e in c.evidence
                )
                lines.append(f"{c.where()}" + (f": {said}" if said else ""))
        if self.closest:
            lines.append("\nClosest passages:")
            lines.extend(c.where() for c in self.closest)
        return "\n".join(lines)


class SearchResult(BaseModel):
    results: list[NotePassage]

    def as_text(self) -> str:
        return "\n\n".join(f"{p.where()}\n{p.text.strip()}" for p in self.results) or "no match"


class Note(BaseModel):
    source: str
    title: str
    chunks: int = Field(description="passages indexed from it")
    tags: list[str] = Field(default_factory=list)


class NotesResult(BaseModel):
    collection: str
    chunks: int
    notes: list[Note]

    def as_text(self) -> str:
        listed = [f"{n.source}" + (f" — {n.title}" if n.title else "") for n in self.notes]
        return f"{len(self.notes)} notes, {self.chunks} passages:\n" + "\n".join(listed)


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


def ask_result(body: dict[str, Any]) -> AskResult:
    """The /v1/ask body as the tool's result: cited passages with their evidence sentences."""
    evidence: dict[int, list[Evidence]] = {}
    for e in supported_evidence(body):
        found = Evidence(text=e["text"], lines=(e["lines"][0], e["lines"][1]))
        if found not in evidence.setdefault(e["n"], []):
            evidence[e["n"]].append(found)
    return AskResult(
        question=body.get("question") or "",
        answer=body["answer"],
        abstained=body["abstained"],
        reason=body["reason"],
        citations=[NotePassage.of(c, evidence.get(c["n"])) for c in body["citations"]],
        closest=[NotePassage.of(c) for c in shown_passages(body)] if body["abstained"] else [],
    )


def _result(model: AskResult | SearchResult | NotesResult) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=model.as_text())],
        structured_content=model.model_dump(mode="json"),
    )


def build_server(connect: Callable[[], AsyncShioriClient], name: str = "shiori") -> MCPServer[Any]:
    """The MCP server; ``connect`` makes a client of the Shiori service (one per call, so the
    HTTP connections belong to the event loop that serves the call)."""
    server: MCPServer[Any] = MCPServer(
        name,
        title="Shiori — your study notes",
        instructions="Answers come only from the user's notes, each with the note, heading and "
        "lines it rests on. Use `ask` for questions, `search` for passages, `list_notes` to see "
        "what is there. An abstention means the notes do not answer the question.",
        version="0.1.0",
        log_level="WARNING",  # not a line per request to the service
    )

    async def call(method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        client = connect()
        try:
            body: dict[str, Any] = await getattr(client, method)(*args, **kwargs)
            return body
        except (ServiceError, ServiceUnreachableError) as exc:
            raise ToolError(str(exc)) from exc
        finally:
            await client.aclose()

    @server.tool(title="Ask the notes", annotations=READ_ONLY)
    async def ask(
        question: Annotated[str, Field(min_length=1, description="the question, in any language")],
        history: Annotated[
            list[Message] | None,
            Field(description="the conversation so far, oldest first, for follow-up questions"),
        ] = None,
        top_k: Annotated[int | None, Field(ge=1, description="passages to retrieve")] = None,
    ) -> Annotated[CallToolResult, AskResult]:
        """A grounded answer from the notes with citations (note, heading, lines and the
        evidence sentences), or an abstention with the closest passages."""
        options: dict[str, Any] = {}
        if history:
            options["history"] = [m.model_dump() for m in history]
        if top_k:
            options["top_k"] = top_k
        return _result(ask_result(await call("ask", question, **options)))

    @server.tool(title="Search the notes", annotations=READ_ONLY)
    async def search(
        question: Annotated[str, Field(min_length=1, description="what to look for")],
        top_k: Annotated[int | None, Field(ge=1, description="passages to return")] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """The passages of the notes that best match a question (no answer is generated)."""
        body = await call("search", question, **({"top_k": top_k} if top_k else {}))
        return _result(SearchResult(results=[NotePassage.of(r) for r in body["results"]]))

    @server.tool(title="List the notes", annotations=READ_ONLY)
    async def list_notes() -> Annotated[CallToolResult, NotesResult]:
        """The ingested notes: path, title, number of passages, tags."""
        body = await call("notes")
        notes = [
            Note(
                source=n["source"],
                title=n.get("title") or "",
                chunks=n["chunks"],
                tags=n.get("tags") or [],
            )
            for n in body["notes"]
        ]
        return _result(
            NotesResult(collection=body["collection"], chunks=body["chunks"], notes=notes)
        )

    return server
