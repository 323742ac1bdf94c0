"""The language model: any OpenAI-compatible endpoint through langchain-openai, built lazily."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from agent import failpoints, metrics
from agent.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

HOW_TO_CONFIGURE = (
    "No language model is configured. Set OPENAI_API_KEY (OpenAI), or OPENAI_BASE_URL for an "
    "OpenAI-compatible server such as Ollama (http://127.0.0.1:11434/v1) or vLLM, and EA_LLM_MODEL, "
    "then restart; parked threads continue by themselves."
)


class ModelUnavailable(RuntimeError):
    """The model is not configured or failed; the thread is parked with this message."""


class FirstDraft(BaseModel):
    """A first email: the model writes only the subject and the body."""

    subject: str = Field(description="Short, specific subject line, no clickbait, no emojis.")
    body: str = Field(description="Plain-text body without greeting-less openings, without a signature.")


class ReplyDraft(BaseModel):
    """A reply or follow-up: the subject is fixed by the thread, the model writes the body."""

    body: str = Field(description="Plain-text body, without a signature.")


class Intent(StrEnum):
    """What a reply means for the outreach."""

    interested = "interested"
    question = "question"
    objection = "objection"
    not_interested = "not_interested"
    unsubscribe = "unsubscribe"
    out_of_office = "out_of_office"
    wrong_person = "wrong_person"
    meeting_request = "meeting_request"
    auto_reply = "auto_reply"
    bounce = "bounce"
    unclear = "unclear"


class Classification(BaseModel):
    """The decision about one reply."""

    intent: Intent
    confidence: float = Field(ge=0, le=1, description="0..1, how sure the classification is.")
    reason: str = Field(description="One sentence: why, citing the reply.")
    out_of_office_until: date | None = Field(
        description="The stated return date for out-of-office replies (YYYY-MM-DD), else null."
    )


class ReturnDate(BaseModel):
    """The return date an away message states."""

    return_date: date | None = Field(description="The date the person is back (YYYY-MM-DD), or null if not stated.")


class LanguageModel:
    """Structured calls to the configured chat model; the client is created on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._chat: Any = None
        self._structured: dict[type, Any] = {}
        self._gate: asyncio.Semaphore | None = None

    @property
    def name(self) -> str:
        """The model name recorded with each decision."""
        return self._settings.llm_model

    @property
    def configured(self) -> bool:
        """Whether a model endpoint is configured at all."""
        return self._settings.llm_configured

    def _client(self) -> Any:
        if not self.configured:
            raise ModelUnavailable(HOW_TO_CONFIGURE)
        if self._chat is None:
            from langchain_openai import ChatOpenAI

            s = self._settings
            self._chat = ChatOpenAI(
                model=s.llm_model,
                api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else "not-needed",
                base_url=s.openai_base_url,
                timeout=s.llm_timeout_seconds,
                max_retries=s.llm_max_retries,
                temperature=0.4,
            )
        return self._chat

    def _place(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A place among the calls in flight (EA_LLM_CONCURRENCY; a local model serves a few at a time)."""
        limit = self._settings.llm_concurrency
        if not limit:
            return contextlib.nullcontext()
        if self._gate is None:
            self._gate = asyncio.Semaphore(limit)
        return self._gate

    async def structured(self, schema: type[T], system: str, user: str) -> T:
        """Ask for one object of the schema; transient errors are retried by the client."""
        result, _usage = await self.structured_with_usage(schema, system, user)
        return result

    async def structured_with_usage(self, schema: type[T], system: str, user: str) -> tuple[T, Usage]:
        """Like structured, with the tokens the endpoint reported and the call's latency."""
        chat = self._structured.get(schema)
        if chat is None:  # one bound client per schema; the request's response_format is built once
            chat = self._structured[schema] = self._client().bind(extra_body={"response_format": response_format(schema)})
        async with self._place():
            started = time.perf_counter()
            failpoints.reached("before_model_call")
            try:
                with metrics.model_call(schema.__name__):
                    message = await chat.ainvoke([("system", system), ("human", user)])
            except Exception as exc:  # any client or network failure parks the thread
                log.warning("model call failed: %s", exc.__class__.__name__)
                raise ModelUnavailable(f"The language model failed ({exc.__class__.__name__}: {str(exc)[:300]}).") \
                    from exc
        usage = Usage.of(message, seconds=time.perf_counter() - started)
        metrics.model_tokens(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
        failpoints.reached("after_model_call")
        return parse_answer(schema, message), usage


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """The strict json_schema response format of a schema, as the OpenAI SDK would send it.

    Sent as is (extra_body) rather than through the SDK's `parse`, which re-walks the whole schema on every request
    (about a tenth of a reply's CPU in bench/pipeline's profile); `parse_answer` validates the answer instead.
    """
    return {"type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": _strict(schema.model_json_schema()), "strict": True}}


def _strict(node: Any) -> Any:
    """Structured Outputs' strict form: every object closed (additionalProperties false), every property required."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
            node["required"] = list(node["properties"])
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def parse_answer(schema: type[T], message: Any) -> T:
    """The schema's object from the model's message; a refusal or an answer that does not validate is an error."""
    refusal = (getattr(message, "additional_kwargs", None) or {}).get("refusal")
    if refusal:
        raise ModelUnavailable(f"The language model refused ({str(refusal)[:300]}).")
    content = message.content if isinstance(message.content, str) else ""
    try:
        return schema.model_validate_json(content)
    except ValidationError as exc:
        raise ModelUnavailable(f"The language model returned no usable answer ({str(exc)[:300]}).") from exc


@dataclass(frozen=True)
class Usage:
    """Tokens and time of one model call, as the endpoint reported them (0 when it reported none)."""

    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0

    @classmethod
    def of(cls, message: Any, *, seconds: float) -> Usage:
        """The usage block of a LangChain AIMessage (its usage_metadata), if any."""
        meta = getattr(message, "usage_metadata", None) or {}
        return cls(int(meta.get("input_tokens") or 0), int(meta.get("output_tokens") or 0), seconds)

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens
