"""Question → grounded answer with verified citations, or an abstention with the closest sources.

retrieve → evidence gate → pack → prompt → LLM (OpenAI-compatible, vLLM) → parse markers → drop
markers to nowhere → verify each sentence → abstain if the model refused or nothing it wrote
is supported. Every step's outcome is in the result, so callers (HTTP, CLI, evaluation) can
show or measure it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx
from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI

from rag.abstain import (
    AbstentionPolicy,
    abstention_text,
    missing_terms,
    model_refused,
    weak_evidence,
)
from rag.conversation import Condenser, Rewrite, Turn
from rag.packing import pack
from rag.prompt import NOT_FOUND, PromptStyle, build_messages, language_of
from rag.retrieve import Filters, Passage, Retriever
from rag.verdict import Verifier
from rag.verify import SentenceCheck, SubjectCheck
from shiori.config import Settings, reveal
from shiori.grounding import GroundingVerifier


class LLMUnavailableError(RuntimeError):
    """The generation server did not answer (down, timing out, or refusing us)."""


@dataclass(kw_only=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    # "answered", "weak_evidence", "missing_term", "model_refused", "unsupported", "off_subject"
    reason: str
    passages: list[Passage]  # packed into the prompt, in order ([n] = index + 1)
    cited: list[int]  # source numbers the final answer cites
    checks: list[SentenceCheck]
    invalid_markers: list[int]
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    draft: str | None = None  # the model's own text, before checks (None: it was not asked)
    signals: dict[str, float] = field(default_factory=dict)  # the scores behind the decision
    subject: SubjectCheck | None = None  # is the evidence about what was asked
    rewrite: Rewrite | None = None  # a follow-up message made standalone (None: no history)

    def _citations(self) -> list[dict[str, Any]]:
        evidence: dict[int, list[str]] = {n: [] for n in self.cited}
        for check in self.checks:
            for e in check.evidence:
                evidence.setdefault(e.source, []).append(e.text)
        return [citation_json(n, self.passages[n - 1], evidence[n]) for n in self.cited]

    def to_json(self) -> dict[str, Any]:
        """The answer as plain JSON data: the body of `/v1/ask` (whose schema,
        `service.api.schemas.AskResponse`, documents each field), of `shiori ask --json` and of
        an evaluation record. Source numbers ``n`` are the [n] of the answer text."""
        contexts = [source_json(n, p) for n, p in enumerate(self.passages, 1)]
        subject = (
            None
            if self.subject is None
            else {
                "coverage": self.subject.coverage,
                "missing": list(self.subject.missing),
                "names_missing": list(self.subject.names_missing),
                "passed": self.subject.passed,
                "similarity": self.subject.similarity,
            }
        )
        return {
            "question": self.question,
            "rewrite": None if self.rewrite is None else self.rewrite.to_json(),
            "answer": self.answer,
            "abstained": self.abstained,
            "reason": self.reason,
            "citations": [] if self.abstained else self._citations(),
            "contexts": contexts,
            "sentences": [sentence_json(c, self.passages) for c in self.checks],
            "subject": subject,
            "unsupported": [c.text for c in self.checks if not c.supported],
            "invalid_markers": self.invalid_markers,
            "model": self.model,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            },
            "timings": self.timings,
            "draft": self.draft,
            "signals": self.signals,
        }


def source_json(n: int, p: Passage) -> dict[str, Any]:
    """A passage as JSON: what a citation points at, with its flagged text's offsets into the
    text it shows (`service.api.schemas.InstructionSpanOut`)."""
    c = p.chunk
    return {
        "n": n,
        "source": c.source,
        "title": c.title,
        "heading": c.heading,
        "lines": [c.line_start, c.line_end],
        "page": c.page,
        "text": c.text,
        "score": round(p.score, 4),
        "similarity": round(p.similarity, 4),
        "instruction_spans": [
            {"start": s.start, "end": s.end, "reason": s.reason} for s in c.instruction_spans
        ],
    }


def citation_json(n: int, p: Passage, evidence: Sequence[str]) -> dict[str, Any]:
    """What the answer cites of passage [n]: of a passage joined from adjacent chunks
    (`packing.merge_adjacent`), the one stored chunk that holds all of ``evidence`` (the texts
    of the evidence sentences the answer rests on there), so that a citation is as narrow as
    the note's chunking allows (its text, lines and flagged spans that chunk's own); else the
    whole passage."""
    holding = [c for c in p.parts if evidence and all(e in c.text for e in evidence)]
    if not holding:
        return source_json(n, p)
    return source_json(n, replace(p, chunk=holding[0], parts=()))


def sentence_json(c: SentenceCheck, passages: Sequence[Passage]) -> dict[str, Any]:
    """An answer sentence, its evidence sentences (each with the note, heading path and its own
    lines) and the checks on it."""
    return {
        "text": c.text,
        "sources": c.markers,
        "support": c.support,
        "similarity": c.similarity,
        "supported": c.supported,
        "verifier": c.verifier,
        "attributed": c.attributed,
        "content": list(c.content),
        "content_missing": list(c.content_missing),
        "evidence": [
            {
                "n": e.source,
                "source": passages[e.source - 1].chunk.source,
                "heading": e.heading,
                "text": e.text,
                "lines": [e.line_start, e.line_end],
                "page": passages[e.source - 1].chunk.page,
            }
            for e in c.evidence
        ],
    }


@dataclass(frozen=True)
class Progress:
    """What the answer path is doing, streamed before the answer's text so that a reader sees
    something at once: ``found`` (retrieval done: ``passages`` packed for the model, or the
    closest ones when the evidence is too weak to ask it), ``writing`` (the model has the
    prompt; ``reading`` is 2 for the second reading after a refusal), ``checking`` (the model
    is done; the checks and the verifier run)."""

    stage: str
    passages: int = 0
    reading: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "passages": self.passages, "reading": self.reading}


@dataclass(kw_only=True)
class Draft:
    """A question made ready for the model: its packed passages and messages (None when the
    retrieval evidence is too weak to ask the model at all: `gate` says why)."""

    question: str
    language: str
    passages: list[Passage]
    messages: list[dict[str, str]] | None
    began: float
    retrieved: float
    gate: str = "weak_evidence"
    missing: list[str] = field(default_factory=list)
    searched: float | None = None  # when retrieval began (None: at ``began``)
    rewrite: Rewrite | None = None
    # the messages of the second reading, sent when the model refuses (`prompt.RETRY_RULES`)
    retry: list[dict[str, str]] | None = None


class Answerer:
    """Shared across requests: holds the retriever and one async LLM client."""

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        llm: AsyncOpenAI,
        grounding: GroundingVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        self.style = PromptStyle(settings.llm_prompt_style)
        self.policy = AbstentionPolicy.from_settings(settings)
        self.verifier = Verifier.from_settings(settings, retriever.embedder, grounding)
        self.condenser = Condenser(
            llm,
            settings.llm_model,
            history_messages=settings.rewrite_history_messages,
            max_question_chars=settings.max_question_chars,
        )

    @classmethod
    def client_for(cls, settings: Settings) -> AsyncOpenAI:
        key = reveal(settings.llm_api_key) or "none"
        return AsyncOpenAI(
            base_url=settings.llm_url, api_key=key, timeout=settings.llm_timeout_s, max_retries=0
        )

    # --- the three steps ---------------------------------------------------------------------
    async def condense(self, message: str, history: Sequence[Turn]) -> Rewrite:
        """The standalone question for a message of a conversation (see
        `rag.conversation`); raises `LLMUnavailableError` when the model is needed and
        does not answer."""
        try:
            return await self.condenser.condense(message, history)
        except (APIConnectionError, APITimeoutError, APIStatusError) as exc:
            raise self._unavailable(exc) from exc

    async def prepare(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        *,
        language: str | None = None,
        began: float | None = None,
    ) -> Draft:
        """Retrieve (in a worker thread: embedding is CPU work), gate, pack, build the prompt.
        ``language`` is the answer's (default: the question's); ``began`` when the work on the
        question started (default: now)."""
        searched = time.perf_counter()
        began = searched if began is None else began
        found = await anyio.to_thread.run_sync(
            self.retriever.search, question, top_k or self.settings.top_k, filters
        )
        language = language or language_of(question)
        if weak_evidence(found, self.policy):
            return Draft(
                question=question,
                language=language,
                passages=found,
                messages=None,
                began=began,
                retrieved=time.perf_counter(),
                searched=searched,
            )
        missing = missing_terms(question, found) if self.policy.require_specific_terms else []
        if missing:  # look for the named thing itself before concluding the notes lack it
            rescued = await anyio.to_thread.run_sync(
                self.retriever.mentioning, missing, found, filters
            )
            found = [found[0], *rescued, *found[1:]]
            missing = missing_terms(question, found)
        if missing:
            return Draft(
                question=question,
                language=language,
                passages=found,
                messages=None,
                began=began,
                retrieved=time.perf_counter(),
                gate="missing_term",
                missing=missing,
                searched=searched,
            )
        passages = pack(
            found,
            self.settings.context_tokens,
            self.retriever.embedder.count_tokens,
            self.settings.min_relative_score,
        )
        chunks = [p.chunk for p in passages]
        messages = build_messages(
            question, chunks, self.style, language, focused=self.settings.prompt_focus
        )
        # the second reading shows whole passages: the first may have refused because the
        # focused text left out the sentence that answers
        retry = (
            build_messages(question, chunks, self.style, language, may_refuse=False)
            if self.settings.retry_refusals
            else None
        )
        return Draft(
            question=question,
            language=language,
            passages=passages,
            messages=messages,
            began=began,
            retrieved=time.perf_counter(),
            searched=searched,
            retry=retry,
        )

    def _request(self, draft: Draft, retry: bool = False) -> dict[str, Any]:
        return {
            "model": self.settings.llm_model,
            "messages": draft.retry if retry else draft.messages,
            "temperature": 0,
            "max_tokens": self.settings.llm_max_tokens,
        }

    def _unavailable(self, exc: Exception) -> LLMUnavailableError:
        if isinstance(exc, APIStatusError):
            why = f"answered {exc.status_code}: {exc.message}"
        elif isinstance(exc, APITimeoutError | httpx.TimeoutException):
            why = f"timed out after {self.settings.llm_timeout_s:g} s (SHIORI_LLM_TIMEOUT_S)"
        else:
            why = f"did not answer: {exc}"
        return LLMUnavailableError(f"LLM at {self.settings.llm_url} {why}")

    async def finish(
        self,
        draft: Draft,
        raw: str | None,
        usage: tuple[int, int] = (0, 0),
        retried: bool = False,
    ) -> Answer:
        """Judge the model's text (None: it was never asked) into the final answer;
        ``retried``: the text is the second reading's, after the model refused."""
        generated = time.perf_counter()
        result = Answer(
            question=draft.question,
            answer="",
            abstained=True,
            reason=draft.gate,
            passages=draft.passages,
            cited=[],
            checks=[],
            invalid_markers=[],
            model=self.settings.llm_model,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            rewrite=draft.rewrite,
        )
        if raw is None:
            result.answer = abstention_text(draft.language, draft.missing)
        else:
            result.draft = raw
            await anyio.to_thread.run_sync(self._judge, result, raw, draft.language)
        result.signals = signals(result, draft.missing)
        if raw is not None:
            result.signals["retried"] = float(retried)
        done = time.perf_counter()
        searched = draft.began if draft.searched is None else draft.searched
        result.timings = {
            "retrieve_ms": _ms(draft.retrieved - searched),
            "generate_ms": _ms(generated - draft.retrieved),
            "verify_ms": _ms(done - generated),
            "total_ms": _ms(done - draft.began),
        }
        if draft.rewrite is not None and draft.rewrite.ms:
            result.timings["rewrite_ms"] = draft.rewrite.ms
        return result

    async def _draft(
        self,
        message: str,
        top_k: int | None,
        filters: Filters | None,
        history: Sequence[Turn],
    ) -> Draft:
        """Condense the message when it has a history, then prepare the standalone question:
        retrieval, the gates, the prompt and the checks all see that question; the answer
        keeps the language of the message."""
        began = time.perf_counter()
        if not history:
            return await self.prepare(message, top_k, filters, began=began)
        rewrite = await self.condense(message, history)
        draft = await self.prepare(
            rewrite.question, top_k, filters, language=rewrite.language, began=began
        )
        draft.rewrite = rewrite
        return draft

    # --- entry points ------------------------------------------------------------------------
    async def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """Answer ``question``; with ``history`` (the earlier turns of its conversation) a
        follow-up is first made standalone, and the answer says which question it answered."""
        draft = await self._draft(question, top_k, filters, history)
        if draft.messages is None:
            return await self.finish(draft, None)
        text, tokens = await self._complete(draft)
        retried = model_refused(text) and draft.retry is not None
        if retried:
            text, more = await self._complete(draft, retry=True)
            tokens = (tokens[0] + more[0], tokens[1] + more[1])
        return await self.finish(draft, text, tokens, retried)

    async def _complete(self, draft: Draft, retry: bool = False) -> tuple[str, tuple[int, int]]:
        try:
            completion = await self.llm.chat.completions.create(**self._request(draft, retry))
        except (APIConnectionError, APITimeoutError, APIStatusError) as exc:
            raise self._unavailable(exc) from exc
        usage = completion.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        return completion.choices[0].message.content or "", tokens

    async def stream(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
    ) -> AsyncIterator[str | Rewrite | Progress | Answer]:
        """With ``history``, first the `Rewrite` (which question is being answered); `Progress`
        as each stage begins; then the model's text as it comes (str deltas), then the judged
        `Answer`.

        The final answer is authoritative: it may differ from the streamed text (markers
        repaired, or withdrawn as unsupported). A refusal ("NOT_FOUND") is held back rather than
        streamed, and the second reading (`Draft.retry`) streamed in its place; when nothing was
        streamed, the final answer text is sent as one delta."""
        draft = await self._draft(question, top_k, filters, history)
        if draft.rewrite is not None:
            yield draft.rewrite
        if draft.messages is None:
            yield Progress("found", len(draft.passages))
            final = await self.finish(draft, None)
            yield final.answer
            yield final
            return
        first_token: float | None = None
        tokens = (0, 0)
        retried = False
        while True:
            parts: list[str] = []
            sent = 0
            async for event in self._events(draft, retried):
                if event is None:  # the model has the prompt (a refused connection raised)
                    if not retried:
                        yield Progress("found", len(draft.passages))
                    yield Progress("writing", len(draft.passages), 2 if retried else 1)
                    continue
                if isinstance(event, tuple):
                    tokens = (tokens[0] + event[0], tokens[1] + event[1])
                    continue
                first_token = first_token or time.perf_counter()
                parts.append(event)
                text = "".join(parts)
                if (sent == 0 and NOT_FOUND.startswith(text.strip())) or NOT_FOUND in text:
                    continue  # may be (or is) a refusal: hold it back
                yield text[sent:]
                sent = len(text)
            if retried or sent or draft.retry is None or not model_refused("".join(parts)):
                break
            retried = True  # nothing of a refusal was streamed: read again, streaming that
        yield Progress("checking", len(draft.passages), 2 if retried else 1)
        final = await self.finish(draft, "".join(parts), tokens, retried)
        if first_token is not None:
            final.timings["first_token_ms"] = _ms(first_token - draft.began)
        if sent == 0:
            yield final.answer
        yield final

    async def _events(
        self, draft: Draft, retry: bool
    ) -> AsyncIterator[str | tuple[int, int] | None]:
        """One streamed generation: None once the server has accepted the request, then text
        deltas, and the usage (prompt, completion tokens)."""
        try:
            response = await self.llm.chat.completions.create(
                **self._request(draft, retry), stream=True, stream_options={"include_usage": True}
            )
            yield None
            async for event in response:
                if event.usage:
                    yield (event.usage.prompt_tokens, event.usage.completion_tokens)
                if event.choices and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        # mid-stream, the SDK lets httpx's own errors through (a read timeout, a dropped peer)
        except (APIConnectionError, APITimeoutError, APIStatusError, httpx.TransportError) as exc:
            raise self._unavailable(exc) from exc

    def _judge(self, result: Answer, raw: str, language: str) -> None:
        verdict = self.verifier.judge(result.question, raw, result.passages, language)
        result.reason, result.answer = verdict.reason, verdict.answer
        result.abstained = verdict.abstained
        result.checks, result.subject = verdict.checks, verdict.subject
        result.cited, result.invalid_markers = verdict.cited, verdict.invalid_markers


def signals(result: Answer, missing: Sequence[str] = ()) -> dict[str, float]:
    """The scores the decision to answer or abstain rests on, for the evaluation's
    risk–coverage curves: retrieval evidence, missing terms, and the answer's support."""
    found = result.passages
    out = {
        "best_similarity": max((p.similarity for p in found), default=0.0),
        "best_term_overlap": max((p.term_overlap for p in found), default=0.0),
        "missing_terms": float(len(missing)),
    }
    if result.checks:
        supports = [c.support for c in result.checks]
        similarities = [c.similarity for c in result.checks]
        out |= {
            "support_min": min(supports),
            "support_mean": sum(supports) / len(supports),
            "similarity_max": max(similarities),
            "supported_share": sum(c.supported for c in result.checks) / len(result.checks),
            "content_missing": float(sum(len(c.content_missing) for c in result.checks)),
        }
        scores = [c.verifier for c in result.checks if c.verifier is not None]
        if scores:
            out |= {"verifier_min": min(scores), "verifier_mean": sum(scores) / len(scores)}
    if result.subject is not None:
        out |= {
            "subject_coverage": result.subject.coverage,
            "subject_names_missing": float(len(result.subject.names_missing)),
            "subject_similarity": result.subject.similarity,
        }
    return {k: round(v, 4) for k, v in out.items()}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
