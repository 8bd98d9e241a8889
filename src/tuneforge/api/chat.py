"""POST /v1/chat/completions: run the engine on the worker, answer in one body or as server-sent events.

With tools, the reply is parsed in the template's tool format; a valid call becomes OpenAI `tool_calls` with
finish_reason "tool_calls". Streamed, the text before the call marker streams as content and the call is sent
as one delta once the reply is complete (text after a marker that is no valid call is sent as content).

A reasoning model's thinking (chat/reasoning.py) is `reasoning_content` beside `content`, in the message and in
stream deltas, as vLLM and DeepSeek's API send it; tool calls are looked for in the answer only. `enable_thinking`
(top level, or vLLM's `chat_template_kwargs`) switches thinking for one request."""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

from tuneforge.api.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ToolCall,
    Usage,
    error_body,
    new_id,
)
from tuneforge.chat.engine import GenerationInfo
from tuneforge.chat.stops import held_back
from tuneforge.chat.tools import call_marker, split_tool_calls
from tuneforge.errors import UserError

logger = logging.getLogger("tuneforge.api")
_DONE = object()


def generate_kwargs(req: ChatCompletionRequest) -> dict:
    """OpenAI sampling fields → generate() keywords; temperature 0 means greedy."""
    gen: dict = {}
    if req.temperature is not None:
        gen["do_sample"] = req.temperature > 0
        if req.temperature > 0:
            gen["temperature"] = req.temperature
    if req.top_p is not None:
        gen["top_p"] = req.top_p
        gen.setdefault("do_sample", True)
    if req.new_tokens is not None:
        gen["max_new_tokens"] = req.new_tokens
    return gen


def tools_json(req: ChatCompletionRequest) -> str | None:
    if not req.tools or req.tool_choice == "none":
        return None
    return json.dumps([tool.function.model_dump() for tool in req.tools], ensure_ascii=False)


def produce(engine, req: ChatCompletionRequest, messages: list[dict], cancel) -> Iterator[tuple]:
    """On the worker thread: ("reasoning" | "piece", choice, text) as the model writes (its thinking, its answer),
    then ("done", choice, GenerationInfo). An engine without `stream_parts` writes answers only. The n choices run
    one after another, or, on an engine that batches, as rows of one batch (their events interleaved)."""
    tools, gen = tools_json(req), generate_kwargs(req)
    if req.thinking is not None:
        gen["enable_thinking"] = req.thinking

    def one(index: int) -> Iterator[tuple]:
        info = GenerationInfo()
        kwargs = dict(tools=tools, stop=req.stop_list, cancel=cancel, info=info, **gen)
        if hasattr(engine, "stream_parts"):
            parts = engine.stream_parts(messages, **kwargs)
        else:
            parts = (("content", piece) for piece in engine.stream(messages, **kwargs))
        for kind, text in parts:
            yield ("reasoning" if kind == "reasoning" else "piece"), index, text
        yield "done", index, info

    if req.n == 1 or getattr(engine, "batcher", None) is None:
        for index in range(req.n):
            yield from one(index)
        return
    yield from _together([one(index) for index in range(req.n)], cancel)


def _together(streams: list[Iterator[tuple]], cancel) -> Iterator[tuple]:
    """Drive each stream on a thread of its own (so their rows share the engine's batch); yield events as they
    come. The first error ends them all (through `cancel`) and is raised here."""
    events: queue.Queue = queue.Queue()

    def drive(events_of: Iterator[tuple]):
        try:
            for event in events_of:
                events.put((event, None))
        except BaseException as exc:  # noqa: BLE001 (re-raised in the consumer's thread)
            events.put((None, exc))
        finally:
            events.put((_DONE, None))

    threads = [threading.Thread(target=drive, args=(s,), daemon=True) for s in streams]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            event, error = events.get()
            if error is not None:
                raise error
            if event is _DONE:
                running -= 1
                continue
            yield event
    finally:
        cancel.set()  # done, failed or abandoned: every choice still writing stops
        for thread in threads:
            thread.join()


def _tool_calls(calls: list[tuple[str, str]], with_index: bool = False) -> list[ToolCall]:
    return [
        ToolCall(
            id=f"call_{uuid.uuid4().hex[:24]}",
            function=FunctionCall(name=name, arguments=arguments),
            index=i if with_index else None,
        )
        for i, (name, arguments) in enumerate(calls)
    ]


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def complete(events: AsyncIterator[tuple], req: ChatCompletionRequest, model: str, tool_format: str, request):
    """Collect every choice into one ChatCompletion. Stops early (and stops generation) if the client leaves."""
    texts: dict[int, list[str]] = {}
    thoughts: dict[int, list[str]] = {}
    infos: dict[int, GenerationInfo] = {}
    try:
        async for kind, index, value in events:
            if kind == "piece":
                texts.setdefault(index, []).append(value)
            elif kind == "reasoning":
                thoughts.setdefault(index, []).append(value)
            else:
                infos[index] = value
            if await request.is_disconnected():
                return None
    finally:
        await events.aclose()
    choices = []
    for index in range(req.n):
        text, info = "".join(texts.get(index, [])), infos[index]
        reasoning = "".join(thoughts.get(index, [])) or None
        found = split_tool_calls(text, tool_format) if tools_json(req) else None
        if found:
            message = AssistantMessage(
                content=found[0] or None, reasoning_content=reasoning, tool_calls=_tool_calls(found[1])
            )
            choices.append(Choice(index=index, message=message, finish_reason="tool_calls"))
        else:
            message = AssistantMessage(content=text, reasoning_content=reasoning)
            choices.append(Choice(index=index, message=message, finish_reason=info.finish_reason))
    prompt = infos[0].prompt_tokens
    usage = _usage(prompt, sum(i.completion_tokens for i in infos.values()))
    return ChatCompletion(id=new_id("chatcmpl"), model=model, choices=choices, usage=usage)


class _ToolWatch:
    """Streamed text of one choice: pass it on until a tool-call marker begins, then hold the rest back."""

    def __init__(self, marker: str | None):
        self.marker, self.sent, self.held, self.locked = marker, "", "", False

    def feed(self, piece: str) -> str:
        if self.marker is None:  # no tools; "" = the call is the whole reply: hold it all back
            return piece
        self.held += piece
        if self.locked:
            return ""
        start = self.held.find(self.marker)
        self.locked = start >= 0
        cut = start if self.locked else len(self.held) - held_back(self.held, [self.marker])
        out, self.held = self.held[:cut], self.held[cut:]
        self.sent += out
        return out


async def stream(events: AsyncIterator[tuple], first: tuple, req: ChatCompletionRequest, model: str, tool_format: str):
    """Server-sent events: `data: {chunk}` per piece, a final chunk per choice with its finish_reason, the usage
    chunk when stream_options.include_usage, then `data: [DONE]`."""
    chunk_id = new_id("chatcmpl")
    marker = call_marker(tool_format) if tools_json(req) else None
    watches: dict[int, _ToolWatch] = {}
    prompt = completion = 0

    def sse(index: int | None = None, delta: Delta | None = None, finish: str | None = None, usage=None) -> str:
        choices = [] if index is None else [ChunkChoice(index=index, delta=delta or Delta(), finish_reason=finish)]
        chunk = ChatCompletionChunk(id=chunk_id, model=model, choices=choices, usage=usage)
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    def on_event(kind: str, index: int, value) -> Iterator[str]:
        nonlocal prompt, completion
        if index not in watches:
            watches[index] = _ToolWatch(marker)
            yield sse(index, Delta(role="assistant", content=""))
        watch = watches[index]
        if kind == "reasoning":
            yield sse(index, Delta(reasoning_content=value))
            return
        if kind == "piece":
            if text := watch.feed(value):
                yield sse(index, Delta(content=text))
            return
        prompt, completion = value.prompt_tokens, completion + value.completion_tokens
        found = split_tool_calls(watch.sent + watch.held, tool_format) if watch.locked else None
        if found:
            yield sse(index, Delta(tool_calls=_tool_calls(found[1], with_index=True)), "tool_calls")
            return
        if watch.held:
            yield sse(index, Delta(content=watch.held))
        yield sse(index, Delta(), value.finish_reason)

    try:
        for text in on_event(*first):
            yield text
        async for event in events:
            for text in on_event(*event):
                yield text
        if req.stream_options and req.stream_options.include_usage:
            yield sse(usage=_usage(prompt, completion))
        yield "data: [DONE]\n\n"
    except Exception as exc:  # headers are sent: the error goes in the stream
        logger.exception("stream failed")
        kind = "invalid_request_error" if isinstance(exc, UserError) else "server_error"
        yield f"data: {json.dumps(error_body(str(exc), kind))}\n\n"
    finally:
        await events.aclose()
