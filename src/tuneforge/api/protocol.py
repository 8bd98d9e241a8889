"""Request and response bodies of the OpenAI chat API (the part we serve), plus /v1/score for reward models."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

IMAGE_URL_FORM = "data:image/png;base64,..."


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


# ---- requests -------------------------------------------------------------------------------------------------------
class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI fields we do not use (seed, user, ...) are accepted


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCall(BaseModel):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall
    index: int | None = None  # in streamed deltas


class ChatMessage(Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    reasoning_content: str | None = None  # an assistant's thinking, as this API returned it
    reasoning: str | None = None  # the same, by vLLM's newer name

    @field_validator("content")
    @classmethod
    def _known_parts(cls, value):
        """Content parts: text, and images as base64 data URLs (the server reads no file paths and downloads
        nothing). The engine reads the parts (chat/vision_inputs.py)."""
        for part in value if isinstance(value, list) else []:
            kind = part.get("type")
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise ValueError("a text part needs a string 'text'")
            elif kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if not isinstance(url, str) or not url.startswith("data:image/"):
                    raise ValueError(f"an image_url part's url must be a base64 data URL ({IMAGE_URL_FORM})")
            else:
                raise ValueError(f"content part type {kind!r} is not supported: send text and image_url parts")
        return value

    def to_engine(self) -> dict:
        out: dict[str, Any] = {"role": self.role, "content": self.content or ""}
        if self.tool_calls:
            out["tool_calls"] = [call.model_dump() for call in self.tool_calls]
        if self.role == "assistant" and (self.reasoning_content or self.reasoning):
            out["reasoning_content"] = self.reasoning_content or self.reasoning
        return out


class FunctionDefinition(Request):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class Tool(Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class StreamOptions(Request):
    include_usage: bool = False


class ChatCompletionRequest(Request):
    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None  # "none" hides the tools; other values are not enforced
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # thinking on / off for this request (reasoning templates): vLLM's chat_template_kwargs, or the field itself
    enable_thinking: bool | None = None
    chat_template_kwargs: dict[str, Any] | None = None

    @field_validator("chat_template_kwargs")
    @classmethod
    def _thinking_is_bool(cls, value):
        if value and value.get("enable_thinking") is not None and not isinstance(value["enable_thinking"], bool):
            raise ValueError("enable_thinking must be true or false")
        return value

    @property
    def thinking(self) -> bool | None:
        """The request's enable_thinking (the top-level field first); None: as the server's template says."""
        if self.enable_thinking is not None:
            return self.enable_thinking
        return (self.chat_template_kwargs or {}).get("enable_thinking")

    @property
    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    @property
    def new_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ScoreRequest(Request):
    """Each input is a text scored as it is, or a conversation (a list of messages ending with the reply)."""

    model: str = ""
    input: str | list[str | list[ChatMessage]] | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)  # one conversation

    def items(self) -> list[str | list[dict]]:
        if (self.input is None) == (self.messages is None):
            raise ValueError("send either `input` (texts or conversations) or `messages` (one conversation)")
        raw = [self.messages] if self.messages is not None else self.input
        raw = [raw] if isinstance(raw, str) else raw
        if not raw:
            raise ValueError("`input` is empty")
        return [item if isinstance(item, str) else [m.to_engine() for m in item] for item in raw]


# ---- responses ------------------------------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = None  # a reasoning model's thinking (left out when there is none)
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "tuneforge"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Score(BaseModel):
    object: Literal["score"] = "score"
    index: int
    score: float


class ScoreResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[Score]
    usage: Usage


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None):
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
