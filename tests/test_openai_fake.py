"""Tests that the real ChatOpenAI client works against the local FakeOpenAI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

try:
    from tests.fakes.openai_fake import FakeOpenAI
except ImportError:  # tests/ is not a package; pytest puts tests/ itself on sys.path
    from fakes.openai_fake import FakeOpenAI


class Draft(BaseModel):
    """A structured email draft."""

    subject: str
    body: str
    score: int


DRAFT = {"subject": "Hi Ada", "body": "Loved your talk.", "score": 7}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make_llm(fake: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    options: dict[str, Any] = {"max_retries": 0, "timeout": 10, **kwargs}
    return ChatOpenAI(model="gpt-4o-mini", api_key="test", base_url=fake.base_url, **options)


def http(fake: FakeOpenAI, method: str, path: str, data: bytes | None = None) -> tuple[int, dict]:
    url = fake.base_url.removesuffix("/v1") + path
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_plain_invoke_returns_text_and_records_messages(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "Hello from the fake"
    result = make_llm(fake).invoke([SystemMessage("Be brief."), HumanMessage("Say hi")])
    assert result.content == "Hello from the fake"
    assert result.response_metadata["model_name"] == "gpt-4o-mini"
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.usage_metadata is not None and result.usage_metadata["total_tokens"] > 0
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi"},
    ]
    assert "tools" not in sent and "response_format" not in sent


def test_structured_output_json_schema(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: DRAFT
    structured = make_llm(fake).with_structured_output(Draft, method="json_schema")
    result = structured.invoke("Draft an email to Ada")
    assert result == Draft(**DRAFT)
    response_format = fake.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Draft"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"subject", "body", "score"}


def test_structured_output_json_schema_include_raw_sees_refusal_field(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: DRAFT
    structured = make_llm(fake).with_structured_output(Draft, method="json_schema", include_raw=True)
    result = structured.invoke("Draft an email to Ada")
    assert result["parsing_error"] is None
    assert result["parsed"] == Draft(**DRAFT)
    assert json.loads(result["raw"].content) == DRAFT


def test_structured_output_function_calling(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: DRAFT
    structured = make_llm(fake).with_structured_output(Draft, method="function_calling")
    result = structured.invoke("Draft an email to Ada")
    assert result == Draft(**DRAFT)
    sent = fake.requests[0]
    assert [t["function"]["name"] for t in sent["tools"]] == ["Draft"]
    assert sent["tool_choice"]["function"]["name"] == "Draft"


def test_bound_tools_use_forced_tool_choice(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: {"query": "ada"}
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("first_tool", "search")
    ]
    message = make_llm(fake).bind_tools(tools, tool_choice="search").invoke("find ada")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("search", {"query": "ada"})]
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_fail_next_raises_without_retries(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "ok"
    fake.fail_next(1, 500, "boom")
    with pytest.raises(openai.InternalServerError) as info:
        make_llm(fake, max_retries=0).invoke("hi")
    assert info.value.status_code == 500
    assert "boom" in str(info.value)
    assert len(fake.requests) == 1
    assert make_llm(fake).invoke("hi again").content == "ok"  # the failure was consumed


def test_fail_next_recovers_with_one_retry(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "second time lucky"
    fake.fail_next(1, 500)
    assert make_llm(fake, max_retries=1).invoke("hi").content == "second time lucky"
    assert len(fake.requests) == 2
    assert fake.requests[0]["messages"] == fake.requests[1]["messages"]


def test_fail_next_with_rate_limit_status(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "ok"
    fake.fail_next(2, 429, "slow down")
    with pytest.raises(openai.RateLimitError):
        make_llm(fake).invoke("hi")


def test_fail_always_until_recover(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "back"
    fake.fail_always(503)
    with pytest.raises(openai.InternalServerError):
        make_llm(fake, max_retries=2).invoke("hi")
    assert len(fake.requests) == 3
    fake.recover()
    assert make_llm(fake).invoke("hi").content == "back"


def test_missing_responder_fails_loudly(fake: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="no responder configured"):
        make_llm(fake).invoke("hi")


def test_responder_exception_becomes_500(fake: FakeOpenAI) -> None:
    def broken(body: dict) -> str:
        raise KeyError("missing")

    fake.responder = broken
    with pytest.raises(openai.InternalServerError, match="responder raised KeyError"):
        make_llm(fake).invoke("hi")


def test_stream_yields_content(fake: FakeOpenAI) -> None:
    text = "Dear Ada, I loved your talk on engines."
    fake.responder = lambda body: text
    chunks = list(make_llm(fake).stream("write"))
    assert len(chunks) > 2
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert "".join(str(c.content) for c in chunks) == text
    assert fake.requests[0]["stream"] is True


def test_stream_with_usage(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "counted"
    chunks = list(make_llm(fake, stream_usage=True).stream("write"))
    merged = sum(chunks[1:], chunks[0])
    assert merged.content == "counted"
    assert merged.usage_metadata is not None and merged.usage_metadata["output_tokens"] > 0
    assert fake.requests[0]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_stream_structured_output(fake: FakeOpenAI, method: str) -> None:
    fake.responder = lambda body: DRAFT
    structured = make_llm(fake).with_structured_output(Draft, method=method)
    results = list(structured.stream("Draft an email"))
    assert results[-1] == Draft(**DRAFT)


async def test_ainvoke(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: f"echo: {body['messages'][-1]['content']}"
    result = await make_llm(fake).ainvoke("ping")
    assert result.content == "echo: ping"
    assert len(fake.requests) == 1


async def test_async_structured_and_stream(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: DRAFT if "response_format" in body else "streamed words here"
    llm = make_llm(fake)
    assert await llm.with_structured_output(Draft, method="json_schema").ainvoke("x") == Draft(**DRAFT)
    chunks = [chunk async for chunk in llm.astream("y")]
    assert "".join(str(c.content) for c in chunks) == "streamed words here"


def test_models_unknown_path_and_bad_json(fake: FakeOpenAI) -> None:
    status, body = http(fake, "GET", "/v1/models")
    assert status == 200 and body["object"] == "list" and len(body["data"]) == 1
    status, body = http(fake, "GET", "/v1/nope")
    assert status == 404 and "message" in body["error"]
    status, body = http(fake, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert fake.requests == []


def test_context_manager_stops_server() -> None:
    with FakeOpenAI(lambda body: "x") as server:
        url = server.base_url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        llm = make_llm(server)
        assert llm.invoke("warm the connection pool").content == "x"
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/models", timeout=2)
    with pytest.raises(openai.APIConnectionError):
        llm.invoke("a pooled keep-alive connection must not reach a stopped fake")


def test_subprocess_reaches_fake_via_openai_base_url(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "from another process"
    code = (
        "from langchain_openai import ChatOpenAI; "
        "print(ChatOpenAI(model='gpt-4o-mini', max_retries=0).invoke('hi').content)"
    )
    env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "test"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "from another process"
    assert fake.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
