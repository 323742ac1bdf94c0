"""The structured-output request is the OpenAI SDK's own strict format, built once; answers are validated here."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage
from openai.lib._parsing._completions import type_to_response_format_param

from agent.llm import Classification, FirstDraft, ModelUnavailable, ReplyDraft, ReturnDate, parse_answer, response_format
from graphs.nodes.drafting import SCHEMA


@pytest.mark.parametrize("schema", sorted({Classification, FirstDraft, ReplyDraft, ReturnDate, *SCHEMA.values()},
                                          key=lambda s: s.__name__), ids=lambda s: s.__name__)
def test_the_response_format_is_the_one_the_sdk_would_send(schema: type) -> None:
    # The request no longer goes through the SDK's `parse` (it re-walks the schema per request): same wire, built once.
    assert response_format(schema) == type_to_response_format_param(schema)


def test_answers_are_validated_and_refusals_and_bad_json_are_errors() -> None:
    good = AIMessage(content='{"return_date": "2026-12-07"}')
    assert str(parse_answer(ReturnDate, good).return_date) == "2026-12-07"
    with pytest.raises(ModelUnavailable, match="refused"):
        parse_answer(ReturnDate, AIMessage(content="", additional_kwargs={"refusal": "I can't help with that."}))
    for bad in ('{"return_date": "next week"}', '{"return_date": "2026-12-07"', "", "[]"):
        with pytest.raises(ModelUnavailable, match="no usable answer"):
            parse_answer(ReturnDate, AIMessage(content=bad))


async def test_calls_in_flight_are_capped_by_the_setting(model) -> None:
    # A local model serves a few requests at a time: the rest wait for a place, not against the client's timeout.
    from agent.config import Settings
    from agent.llm import LanguageModel

    fake, _script = model
    fake.latency_seconds = 0.3
    llm = LanguageModel(Settings(OPENAI_API_KEY="k", OPENAI_BASE_URL=fake.base_url, EA_LLM_CONCURRENCY=2,
                                 EA_LLM_MAX_RETRIES=0))
    before = len(fake.arrivals)
    await asyncio.gather(*(llm.structured(ReturnDate, "system", "When is she back?") for _ in range(4)))
    arrivals = sorted(fake.arrivals[before:])
    assert len(arrivals) == 4
    assert arrivals[1] - arrivals[0] < 0.15 and arrivals[2] - arrivals[0] > 0.25  # two at once, then the next two
