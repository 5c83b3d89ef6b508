"""Follow-up questions with doubles: which messages stand alone, the rewrite request and its
checks, and that retrieval, the checks and the answer all see the standalone question (the
model and retrieval are stand-ins here; tests/integration/test_conversation.py runs them real)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import AsyncOpenAI

from eval.dataset import load
from rag.answer import Answer, Answerer, LLMUnavailableError, Progress
from rag.conversation import (
    Condenser,
    Rewrite,
    RewriteError,
    RewriteStatus,
    Turn,
    cleaned,
    parse_rewrite,
    rule_rewrite,
    stands_alone,
    sure_rewrite,
)
from shiori.config import Settings
from tests.conftest import REPO
from tests.unit.service.test_answer_stream import FakeEmbedder, passage

WORD2VEC = "Word2Vec は 2013 年に Google の研究チームが発表した単語埋め込みの手法である。"
GLOVE = "GloVe は 2014 年にスタンフォード大学の研究者が発表した単語埋め込みの手法である。"
# the answer names two methods: which one "その手法" means is for the model to read
HISTORY = (
    Turn("user", "Skip-gram という学習方式があるのはどの手法ですか？"),
    Turn("assistant", "Word2Vec です（GloVe ではありません）[1]。"),
)
# …where it names one, a rule resolves the reference and no model is asked
ONE_NAME = (
    Turn("user", "Skip-gram という学習方式があるのはどの手法ですか？"),
    Turn("assistant", "Word2Vec です [1]。"),
)
FOLLOW_UP = "その手法は何年に発表されましたか？"
STANDALONE = "Word2Vec は何年に発表されましたか？"

FOLLOW_UPS = [
    FOLLOW_UP,
    "何年に発表されましたか？",
    "Who published it, and in which year?",
    "When was that published?",
    "And GloVe?",
    "GloVe は？",
    "では GloVe はどうですか？",
    "Why?",
    "いつ？",
    "発表した大学はどこですか？",
    "What did the paper propose?",
    "Which one is older?",
    "その論文の著者は誰ですか？",
    "GloVe と比べるとどうですか？",
]
STANDALONES = [
    STANDALONE,
    "Gemma が公開されたのはいつですか？",
    "LoRA の r とは何ですか？",
    "What is LoRA?",
    "When was GloVe published?",
    "Which method learns vectors that use a co-occurrence matrix?",
    "In QLoRA, how many weights share one scaling constant in its own block?",
    "Llama 2 が発表されたのは何年何月何日か。",
    "Transformer の原論文と BERT は、それぞれどの学会で発表されたか。",
    "Chain-of-thought プロンプティングを2022年に示したのは、どこの誰らか。",
]


@pytest.mark.parametrize("message", FOLLOW_UPS)
def test_a_message_that_leans_on_the_conversation_is_seen(message: str) -> None:
    assert not stands_alone(message)


@pytest.mark.parametrize("message", STANDALONES)
def test_a_message_that_names_its_subject_stands_alone(message: str) -> None:
    assert stands_alone(message)


GEMMA = (
    Turn("user", "初代 Gemma が公開されたのはいつですか？"),
    Turn("assistant", "2024年2月21日です [1]。"),
)


@pytest.mark.parametrize(
    ("message", "alone"),
    [
        ("トークナイザは何を使っていますか？", False),  # whose tokenizer: the turns say Gemma's
        ("What is the vocabulary size of the tokenizer?", False),
        ("知識蒸留とは何ですか？", False),  # names nothing: the model decides (and keeps it)
        ("LoRA の r とは何ですか？", True),  # names its subject
        ("When was Llama 2 released?", True),
    ],
)
def test_a_message_that_names_nothing_leans_on_turns_that_name_their_subject(
    message: str, alone: bool
) -> None:
    assert stands_alone(message)  # on its own, each is a question
    assert stands_alone(message, GEMMA) is alone


BUNDLED = [i.question for i in load(REPO / "eval" / "datasets" / "notes.jsonl")]


def test_nearly_every_bundled_question_skips_the_rewrite() -> None:
    """The golden set's questions are all standalone: a rewrite for them costs a model call
    for nothing (one is allowed: 'What is it called when…' points with a bare 'it')."""
    rewritten = [q for q in BUNDLED if not stands_alone(q)]
    assert len(rewritten) <= 1, rewritten


@given(
    st.sampled_from([q for q in BUNDLED if stands_alone(q)]),
    st.sampled_from(["And ", "Also, ", "では", "ちなみに、", "じゃあ"]),
)
def test_continuing_an_earlier_question_always_asks_for_a_rewrite(q: str, opening: str) -> None:
    assert not stands_alone(opening + q)


@given(st.sampled_from(["それ", "その手法", "その論文"]), st.sampled_from(["は", "が", "の"]))
def test_a_japanese_message_that_opens_by_pointing_back_asks_for_a_rewrite(
    pointer: str, particle: str
) -> None:
    assert not stands_alone(f"{pointer}{particle}何年に発表されましたか？")


def test_footnotes_markers_and_withdrawn_drafts_leave_the_history() -> None:
    said = "Word2Vec です [1]。\n\nSources:\n[1] notes/word2vec.md:3 — Word2Vec: “…”"
    assert cleaned(Turn("assistant", said), 400) == "Word2Vec です。"
    redone = "GloVe [1]\n\nChecked answer: Word2Vec です [1]。\n\nSources:\n[1] notes/w.md:3"
    assert cleaned(Turn("assistant", redone), 400) == "Word2Vec です。"
    assert cleaned(Turn("user", "あ" * 50), 10) == "あ" * 9 + "…"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("Word2Vec です", "not JSON"),
        ('{"q": "x"}', "no question"),
        ('{"question": "  "}', "no question"),
        ('{"question": "' + "x" * 50 + '"}', "over the limit"),
        ('{"question": "Word2Vec です。"}', "repeats an earlier answer"),
        ('{"question": "When was Word2Vec published?"}', "English rewrite of a Japanese"),
    ],
)
def test_an_unusable_rewrite_is_refused(reply: str, why: str) -> None:
    with pytest.raises(RewriteError, match=why):
        parse_rewrite(reply, FOLLOW_UP, ONE_NAME, max_chars=40)


# --- the model and retrieval as doubles -------------------------------------------------------


class Recorder:
    """An OpenAI-compatible endpoint: rewrites (asked with a JSON schema) get ``rewrite``,
    answers get ``answer``; every request body is kept."""

    def __init__(self, rewrite: str, answer: str, status: int = 200) -> None:
        self.rewrite, self.answer, self.status = rewrite, answer, status
        self.requests: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "boom"}})
        text = self.rewrite if "response_format" in body else self.answer
        usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
        if body.get("stream"):
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": text}}],
            }
            tail = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [],
                "usage": usage,
            }
            sse = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(tail)}\n\ndata: [DONE]\n\n"
            return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": usage,
            },
        )

    @property
    def client(self) -> AsyncOpenAI:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return AsyncOpenAI(base_url="http://fake/v1", api_key="k", http_client=http)

    @property
    def rewrites(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "response_format" in r]


class TwoNotes:
    """Finds the note a question names; both for a question that names neither. Records what
    it was asked."""

    embedder = FakeEmbedder()
    term_probe = 3

    def __init__(self) -> None:
        self.asked: list[str] = []

    def search(self, question: str, top_k: int, filters: Any = None) -> list[Any]:
        self.asked.append(question)
        w2v, glove = passage(WORD2VEC, 0, (3, 3)), passage(GLOVE, 1, (3, 3))
        if "GloVe" in question:
            return [glove]
        return [w2v] if "Word2Vec" in question else [glove, w2v]

    def mentioning(self, *_: Any) -> list[Any]:
        return []


def answerer(llm: Recorder) -> tuple[Answerer, TwoNotes]:
    notes = TwoNotes()
    return Answerer(Settings(), notes, llm.client), notes  # type: ignore[arg-type]


def test_a_follow_up_is_answered_as_its_standalone_question() -> None:
    llm = Recorder(
        json.dumps({"question": STANDALONE}, ensure_ascii=False),
        "Word2Vec は 2013 年に発表された。[1]",
    )
    a, notes = answerer(llm)
    answer = asyncio.run(a.ask(FOLLOW_UP, history=HISTORY))
    # retrieval and the checks saw the standalone question, not the message
    assert notes.asked == [STANDALONE]
    assert answer.question == STANDALONE and not answer.abstained, answer.to_json()
    assert "2013" in answer.answer and answer.cited == [1]
    body = answer.to_json()
    assert body["question"] == STANDALONE
    assert body["rewrite"]["message"] == FOLLOW_UP and body["rewrite"]["status"] == "rewritten"
    assert body["timings"]["rewrite_ms"] >= 0 and body["rewrite"]["completion_tokens"] == 12
    # the rewrite was asked for as structured output, with the conversation in the prompt
    (rewrite,) = llm.rewrites
    assert rewrite["response_format"]["type"] == "json_schema"
    assert rewrite["response_format"]["json_schema"]["schema"]["required"] == ["question"]
    assert "Skip-gram" in rewrite["messages"][-1]["content"]
    assert FOLLOW_UP in rewrite["messages"][-1]["content"]
    # the answer prompt holds the standalone question only
    (generation,) = [r for r in llm.requests if "response_format" not in r]
    assert STANDALONE in generation["messages"][-1]["content"]
    assert FOLLOW_UP not in json.dumps(generation, ensure_ascii=False)


def test_a_message_that_stands_alone_is_not_rewritten() -> None:
    llm = Recorder('{"question": "never asked"}', "GloVe は 2014 年に発表された。[1]")
    a, notes = answerer(llm)
    answer = asyncio.run(a.ask("GloVe は何年に発表されましたか？", history=HISTORY))
    assert llm.rewrites == [] and notes.asked == ["GloVe は何年に発表されましたか？"]
    assert answer.rewrite is not None and answer.rewrite.status is RewriteStatus.STANDALONE
    assert "rewrite_ms" not in answer.timings and "2014" in answer.answer


def test_without_history_nothing_changes() -> None:
    llm = Recorder('{"question": "never asked"}', "Word2Vec は 2013 年に発表された。[1]")
    a, _ = answerer(llm)
    answer = asyncio.run(a.ask(FOLLOW_UP))
    assert llm.rewrites == [] and answer.rewrite is None and answer.to_json()["rewrite"] is None
    assert answer.question == FOLLOW_UP


def test_an_unusable_rewrite_falls_back_to_the_subject_or_the_message_and_says_so() -> None:
    llm = Recorder("not json at all", "NOT_FOUND")
    a, notes = answerer(llm)
    answer = asyncio.run(a.ask(FOLLOW_UP, history=HISTORY))
    assert notes.asked == ["Word2Vecは何年に発表されましたか？"] and answer.abstained
    assert answer.rewrite is not None and answer.rewrite.status is RewriteStatus.BY_RULE
    assert "not JSON" in answer.to_json()["rewrite"]["detail"]
    # a conversation that names nothing: the message as it was
    nameless = (Turn("user", "何年？"), Turn("assistant", "長い" * 30))
    a, notes = answerer(Recorder("not json at all", "NOT_FOUND"))
    answer = asyncio.run(a.ask(FOLLOW_UP, history=nameless))
    assert notes.asked == [FOLLOW_UP]
    assert answer.rewrite is not None and answer.rewrite.status is RewriteStatus.FAILED


def test_the_answer_keeps_the_language_of_the_message() -> None:
    """An English follow-up whose rewrite carries a Japanese name is still answered in English."""
    llm = Recorder('{"question": "Who published 栞 and when?"}', "NOT_FOUND")
    a, _ = answerer(llm)
    history = (Turn("user", "What is 栞?"), Turn("assistant", "A bookmark [1]."))
    answer = asyncio.run(a.ask("Who published it?", history=history))
    # the first reading and, after its NOT_FOUND, the second: both in the message's language
    generations = [r for r in llm.requests if "response_format" not in r]
    assert len(generations) == 2
    assert all("Answer in English" in g["messages"][0]["content"] for g in generations)
    assert answer.abstained and "notes do not answer" in answer.answer


def test_the_stream_names_the_question_before_the_answer() -> None:
    llm = Recorder(
        json.dumps({"question": STANDALONE}, ensure_ascii=False),
        "Word2Vec は 2013 年に発表された。[1]",
    )
    a, _ = answerer(llm)

    async def collect() -> list[Any]:
        return [item async for item in a.stream(FOLLOW_UP, history=HISTORY)]

    items = asyncio.run(collect())
    assert isinstance(items[0], Rewrite) and items[0].question == STANDALONE
    assert isinstance(items[-1], Answer) and items[-1].question == STANDALONE
    texts = [i for i in items[1:-1] if not isinstance(i, Progress)]
    assert all(isinstance(i, str) for i in texts) and "2013" in "".join(texts)
    stages = [i.stage for i in items if isinstance(i, Progress)]
    assert stages == ["found", "writing", "checking"]


def test_a_rewrite_the_model_cannot_make_is_the_llm_s_fault() -> None:
    a, _ = answerer(Recorder("", "", status=500))
    with pytest.raises(LLMUnavailableError, match="answered 500"):
        asyncio.run(a.ask(FOLLOW_UP, history=HISTORY))


def test_only_the_recent_turns_reach_the_rewrite() -> None:
    llm = Recorder('{"question": "x"}', "")
    condenser = Condenser(llm.client, "m", history_messages=2)
    old = [Turn("user", f"古い質問{i}") for i in range(10)]
    request = condenser.request([*old, *HISTORY], FOLLOW_UP)
    prompt = request["messages"][-1]["content"]
    assert "古い質問" not in prompt and "Skip-gram" in prompt and "Word2Vec です" in prompt


GEMMA = (
    Turn("user", "初代 Gemma が公開されたのはいつですか？"),
    Turn("assistant", "2024年2月21日 [1]"),
)
LATER = (Turn("user", "そのモデルの文脈長は何トークンですか？"), Turn("assistant", "8,192 です"))


@pytest.mark.parametrize(
    ("history", "message", "standalone"),
    [
        (HISTORY, FOLLOW_UP, "Word2Vecは何年に発表されましたか？"),  # the short answer names it
        (GEMMA, LATER[0].content, "Gemmaの文脈長は何トークンですか？"),
        (
            GEMMA + LATER,
            "トークナイザは何を使っていますか？",
            "Gemma のトークナイザは何を使っていますか？",
        ),
    ],
)
def test_an_english_rewrite_of_a_japanese_follow_up_falls_back_to_the_subject(
    history: tuple[Turn, ...], message: str, standalone: str
) -> None:
    assert rule_rewrite(message, history) == standalone
    llm = Recorder(json.dumps({"question": "What is it?"}), "x")
    condenser = Condenser(llm.client, "m")
    rewrite = asyncio.run(condenser.condense(message, history))
    assert rewrite.status == RewriteStatus.BY_RULE and rewrite.question == standalone
    if sure_rewrite(message, history) is None:  # the model was asked, and rewrote in English
        assert "English rewrite" in rewrite.detail
    else:  # one thing named, pointed back to: no model asked at all
        assert llm.rewrites == [] and "not asked" in rewrite.detail
    # English: a reference is replaced; a message without one is the model's job
    assert rule_rewrite("When was it published?", history) == (
        f"When was {'Word2Vec' if history is HISTORY else 'Gemma'} published?"
    )
    assert rule_rewrite("Why?", history) is None
    # the model kept the reference, or returned the message as it was: the rule too
    for kept in ("What published it?", message):
        llm = Recorder(json.dumps({"question": kept}, ensure_ascii=False), "x")
        rewrite = asyncio.run(Condenser(llm.client, "m").condense(message, history))
        assert rewrite.status == RewriteStatus.BY_RULE and rewrite.question == standalone


@pytest.mark.parametrize(
    ("history", "message", "standalone"),
    [
        (ONE_NAME, FOLLOW_UP, "Word2Vecは何年に発表されましたか？"),
        (ONE_NAME, "Who published it?", "Who published Word2Vec?"),
        (GEMMA, LATER[0].content, "Gemmaの文脈長は何トークンですか？"),
    ],
)
def test_a_reference_to_the_one_thing_named_asks_no_model(
    history: tuple[Turn, ...], message: str, standalone: str
) -> None:
    llm = Recorder('{"question": "never asked"}', "x")
    rewrite = asyncio.run(Condenser(llm.client, "m").condense(message, history))
    assert llm.rewrites == [] and llm.requests == []
    assert rewrite.status == RewriteStatus.BY_RULE and rewrite.question == standalone
    assert rewrite.ms == 0 and rewrite.prompt_tokens == 0
    # two things named, or no reference word: the model reads it
    assert sure_rewrite(message, HISTORY) is None
    assert sure_rewrite("何年に発表されましたか？", ONE_NAME) is None
    assert rule_rewrite(message, (Turn("user", "何年？"), Turn("assistant", "長い" * 30))) is None
