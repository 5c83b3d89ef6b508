"""Feedback becomes golden-set lines that the evaluation loads as they are; POST /v1/feedback
and the conversation routes through the app with doubles for the model and retrieval."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from eval.dataset import load
from eval.runner import answer_check
from rag.answer import Answerer
from service.api.limits import GenerationSlots
from service.app import create_app
from service.feedback import (
    FeedbackError,
    FeedbackRequest,
    FeedbackStore,
    golden_item,
    specific_content,
)
from service.metrics import Metrics
from shiori.client import parse_sse
from shiori.config import Settings
from tests.unit.rag.test_conversation import (
    FOLLOW_UP,
    STANDALONE,
    Recorder,
    TwoNotes,
)

FEEDBACK_SCHEMA = Draft202012Validator(
    {
        "$ref": "#/components/schemas/FeedbackRequest",
        "components": create_app(Settings(qdrant=":memory:")).openapi()["components"],
    }
)
ANSWER = "Word2Vec は 2013 年に Google の研究チームが発表しました [1]。"
SOURCES = [{"source": "notes/word2vec.md", "lines": [3, 3], "heading": "Word2Vec"}]


def feedback(**fields: Any) -> FeedbackRequest:
    base = {
        "rating": "up",
        "question": STANDALONE,
        "answer": ANSWER,
        "abstained": False,
        "sources": SOURCES,
    }
    return FeedbackRequest.model_validate({**base, **fields})


def test_a_thumbs_up_keeps_the_answer_s_facts_as_checks() -> None:
    item = golden_item(feedback(message=FOLLOW_UP, model="qwen"))
    assert item.answerable and item.question == STANDALONE
    assert item.reference_answer == "Word2Vec は 2013 年に Google の研究チームが発表しました。"
    assert item.reference_sources == ["notes/word2vec.md"]
    assert {"2013", "Google"} <= set(item.must_contain)  # what the answer states
    assert "Word2Vec" not in item.must_contain  # the question says it already
    assert item.feedback is not None and item.feedback["message"] == FOLLOW_UP
    assert item.feedback["answer"] == ANSWER and item.feedback["sources"][0]["lines"] == [3, 3]
    # the same answer passes the item's checks; another year does not
    assert answer_check(item, ANSWER).passed
    assert not answer_check(item, "Word2Vec は 2014 年に Google が発表した。").passed


def test_a_correction_becomes_the_reference_and_the_wrong_fact_is_forbidden() -> None:
    wrong = "Word2Vec は 2014 年にスタンフォード大学が発表しました [1]。"
    item = golden_item(feedback(rating="down", answer=wrong, correction="2013 年、Google です。"))
    assert item.answerable and item.reference_answer == "2013 年、Google です。"
    assert item.must_contain == ["2013", "Google"]
    assert set(item.must_not_contain) == {"2014", "スタンフォード"}
    assert item.reference_sources == []  # the sources of a wrong answer are not the reference
    assert answer_check(item, ANSWER).passed and not answer_check(item, wrong).passed


def test_not_in_the_notes_makes_an_unanswerable_item() -> None:
    item = golden_item(feedback(rating="down", not_in_notes=True))
    assert not item.answerable and item.reference_answer is None and not item.must_contain
    assert "2013" in item.must_not_contain
    up = golden_item(
        feedback(
            answer="ノートにはこの質問の答えが見つかりませんでした。", abstained=True, sources=[]
        )
    )
    assert not up.answerable and up.category == "feedback-up"


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"rating": "down"}, "not_in_notes"),
        ({"rating": "down", "abstained": True}, "correction"),
        ({"rating": "down", "abstained": True, "not_in_notes": True}, "do answer it"),
        ({"rating": "down", "correction": "x", "not_in_notes": True}, "contradict"),
        ({"rating": "up", "answer": " [1] "}, "empty"),
    ],
)
def test_feedback_that_says_nothing_checkable_is_refused(fields: dict[str, Any], why: str) -> None:
    request = feedback().model_copy(update=fields)  # past the request model's own check
    with pytest.raises(FeedbackError, match=why):
        golden_item(request)
    with pytest.raises(ValidationError, match=why):  # the request model refuses it too
        feedback(**fields)


@settings(max_examples=60, deadline=None)
@given(
    rating=st.sampled_from(["up", "down"]),
    abstained=st.booleans(),
    correction=st.one_of(st.none(), st.text(min_size=1, max_size=40)),
    not_in_notes=st.booleans(),
    answer=st.one_of(st.text(max_size=80), st.sampled_from([" [1] ", "［２］\u3000", "[x]"])),
    question=st.one_of(st.just(STANDALONE), st.text(min_size=1, max_size=20)),
)
def test_every_accepted_feedback_is_a_line_the_evaluation_loads(
    tmp_path_factory: pytest.TempPathFactory,
    rating: str,
    abstained: bool,
    correction: str | None,
    not_in_notes: bool,
    answer: str,
    question: str,
) -> None:
    """And the request model accepts exactly what /openapi.json's schema calls valid, so a
    schema-valid request is never refused (schemathesis's check against the real service)."""
    body = {
        **feedback().model_dump(mode="json"),
        "rating": rating,
        "abstained": abstained,
        "correction": correction,
        "not_in_notes": not_in_notes,
        "answer": answer,
        "question": question,
    }
    schema_valid = FEEDBACK_SCHEMA.is_valid(body)
    try:
        request = FeedbackRequest.model_validate(body)
    except ValidationError:
        assert not schema_valid, body
        return
    assert schema_valid, body
    item = golden_item(request)
    path = tmp_path_factory.mktemp("fb") / "feedback.jsonl"
    asyncio.run(FeedbackStore(path).add(item))
    assert load(path) == [item]


def test_a_number_too_long_for_int_is_kept_as_written() -> None:
    long = "1" * 5000  # int() refuses strings of 4300+ digits
    assert specific_content(f"{long} と 8192", "q") == [long, ["8192", "8,192"]]


def test_lines_are_appended_whole_and_ids_stay_unique(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "deep" / "feedback.jsonl")
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps(golden_item(feedback()).model_dump()), encoding="utf-8")

    async def many() -> None:  # no final newline above: the next line still starts on its own
        await asyncio.gather(*(store.add(golden_item(feedback())) for _ in range(20)))

    asyncio.run(many())
    items = load(store.path)
    assert len(items) == 21 and len({i.id for i in items}) == 21


# --- the routes, with doubles for the model and retrieval ----------------------------------


def app_with(tmp_path: Path, llm: Recorder) -> Any:
    settings_ = Settings(qdrant=":memory:", feedback_path=tmp_path / "feedback.jsonl")
    notes = TwoNotes()
    parts = SimpleNamespace(
        settings=settings_,
        answerer=Answerer(settings_, notes, llm.client),  # type: ignore[arg-type]
        metrics=Metrics(),
        feedback=FeedbackStore(settings_.feedback_path),
        generation_slots=GenerationSlots(settings_.max_generations, settings_.busy_retry_after_s),
        notes=notes,
        retriever=notes,
    )
    app = create_app(settings_, parts)  # type: ignore[arg-type]
    app.state.components = parts
    return app


async def request(app: Any, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shiori") as http:
        return await http.request(method, path, json=body)


def test_post_feedback_writes_a_golden_line(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", ""))
    body = feedback(rating="down", correction="2013 年").model_dump(mode="json")
    r = asyncio.run(request(app, "POST", "/v1/feedback", body))
    assert r.status_code == 200, r.text
    (item,) = load(tmp_path / "feedback.jsonl")
    assert r.json()["id"] == item.id and item.must_contain == ["2013"]
    bare = asyncio.run(request(app, "POST", "/v1/feedback", {**body, "correction": None}))
    assert bare.status_code == 422 and "correction" in bare.json()["error"]["message"]
    assert len(load(tmp_path / "feedback.jsonl")) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"question": "\u3000 "},  # blank
        {"sources": [{**SOURCES[0], "score": 0.5}]},  # a field the model does not know
        {"abstained": "false"},  # strict: not a boolean
        {"history": [{"role": "user", "content": "x" * 8001}]},
    ],
)
def test_feedback_outside_the_schema_is_refused(tmp_path: Path, change: dict[str, Any]) -> None:
    app = app_with(tmp_path, Recorder("", ""))
    body = {**feedback().model_dump(mode="json"), **change}
    r = asyncio.run(request(app, "POST", "/v1/feedback", body))
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request", r.text
    assert not (tmp_path / "feedback.jsonl").exists()


def test_a_lone_surrogate_in_feedback_still_makes_a_readable_line(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", ""))
    raw = json.dumps(
        {**feedback().model_dump(mode="json"), "answer": "Word2Vec \ud800 2013 [1]"}
    ).encode()  # json.dumps escapes it as \\ud800, as a client may send it
    transport = httpx.ASGITransport(app=app)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://shiori") as http:
            headers = {"Content-Type": "application/json"}
            return await http.post("/v1/feedback", content=raw, headers=headers)

    r = asyncio.run(post())
    assert r.status_code == 200, r.text
    (item,) = load(tmp_path / "feedback.jsonl")
    assert "\ufffd" in item.reference_answer


CONVERSATION = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Skip-gram という学習方式があるのはどの手法ですか？"},
    {
        "role": "assistant",
        "content": "Word2Vec です（GloVe ではない）[1]。\n\nSources:\n[1] n/w.md:3",
    },
    {"role": "user", "content": FOLLOW_UP},
]


def test_the_openai_facade_answers_a_follow_up_with_the_conversation(tmp_path: Path) -> None:
    llm = Recorder(
        json.dumps({"question": STANDALONE}, ensure_ascii=False),
        "Word2Vec は 2013 年に発表された。[1]",
    )
    app = app_with(tmp_path, llm)
    r = asyncio.run(request(app, "POST", "/v1/chat/completions", {"messages": CONVERSATION}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == STANDALONE and not body["abstained"]
    text = body["choices"][0]["message"]["content"]
    assert "2013" in text and f"Question answered: {STANDALONE}" in text
    assert body["sources"][0]["source"] == "n/gemma.md"  # the double's passage
    assert app.state.components.notes.asked == [STANDALONE]
    metrics = app.state.components.metrics.render().decode()
    assert 'shiori_rewrites_total{status="rewritten"} 1.0' in metrics
    assert 'shiori_stage_seconds_count{stage="rewrite"} 1.0' in metrics
    # the rewrite saw the conversation without the system message and without the footnote
    prompt = llm.rewrites[0]["messages"][-1]["content"]
    assert "helpful" not in prompt and "notes/word2vec.md" not in prompt


def test_ask_with_history_streams_the_question_first(tmp_path: Path) -> None:
    llm = Recorder(
        json.dumps({"question": STANDALONE}, ensure_ascii=False),
        "Word2Vec は 2013 年に発表された。[1]",
    )
    app = app_with(tmp_path, llm)
    history = [m for m in CONVERSATION[1:3]]
    r = asyncio.run(
        request(app, "POST", "/v1/ask", {"question": FOLLOW_UP, "history": history, "stream": True})
    )
    events = list(parse_sse(iter(r.text.splitlines())))
    assert events[0] == ("question", {**events[0][1], "question": STANDALONE})
    assert events[0][1]["status"] == "rewritten" and events[0][1]["message"] == FOLLOW_UP
    name, final = events[-1]
    assert name == "final" and final["question"] == STANDALONE and "2013" in final["answer"]
    plain = asyncio.run(
        request(app, "POST", "/v1/ask", {"question": FOLLOW_UP, "history": history})
    )
    assert plain.json()["rewrite"]["status"] == "rewritten"
    wrong = asyncio.run(
        request(
            app,
            "POST",
            "/v1/ask",
            {"question": FOLLOW_UP, "history": [{"role": "system", "content": "x"}]},
        )
    )
    assert wrong.status_code == 422
