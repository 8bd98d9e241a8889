"""The Hugging Face chat engine: the training template renders the prompt, tokens stream as they come.

Messages are OpenAI-style dicts. A message's `content` is a string, or a list of OpenAI content parts:
`{"type": "text", "text": ...}` and `{"type": "image_url", "image_url": {"url": ...}}` whose url is a file path or a
base64 data URL (`data:image/png;base64,...`). Images go to a vision-language model (chat/vision_inputs.py); a
text-only model refuses them in one line."""

from __future__ import annotations

import copy
import json
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Event, Thread
from typing import TYPE_CHECKING

from tuneforge.chat.batching import Batcher, Row, can_batch
from tuneforge.chat.reasoning import (
    ReasoningSplitter,
    is_reasoning,
    prompt_opens_thought,
    split_pieces,
    thought_tags,
)
from tuneforge.chat.stops import StopFilter
from tuneforge.chat.vision_inputs import VisionPrompts, message_content, refuse_images, to_model
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.media import check_placeholders
from tuneforge.data.template import template_for
from tuneforge.errors import UserError
from tuneforge.model.adapters import adapter_paths, load_adapters
from tuneforge.model.loader import load_model, load_tokenizer
from tuneforge.model.new_tokens import resize_embeddings
from tuneforge.model.param_status import print_param_status
from tuneforge.model.vision_parts import is_vision_config
from tuneforge.utils.devices import has_cuda, resolve_dtype
from tuneforge.utils.logging import get_logger
from tuneforge.utils.run_folder import template_from_run

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)


def _tool_call_json(calls: list[dict]) -> str:
    """OpenAI `tool_calls` of an assistant message → the JSON a `function` turn holds."""
    out = []
    for call in calls:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"tool call arguments are not JSON: {arguments[:80]!r}", fix="send arguments as a JSON object"
                ) from exc
        out.append({"name": function.get("name"), "arguments": arguments})
    return json.dumps(out, ensure_ascii=False)


def to_conversation(
    messages: list[dict], system: str | None = None, tools: str | None = None, reply: bool = False
) -> Conversation:
    """OpenAI-style messages → a Conversation. An assistant message with `tool_calls` becomes a function turn;
    tool results in a row become one observation turn. The last message must be a prompt (user or tool), or with
    `reply=True` the assistant's reply (for scoring). An assistant's `reasoning_content` becomes its reasoning (the
    template keeps or drops it, as it does in training). A `content` list of OpenAI parts becomes its text with an
    `<image>` placeholder where each image_url part stands, and the images (paths / data URLs) in `images`."""
    roles = {
        "user": "user",
        "assistant": "assistant",
        "tool": "observation",
        "observation": "observation",
        "function": "function",
    }
    turns, images = [], []
    for i, message in enumerate(messages):
        role = message.get("role")
        content, pictures = message_content(message.get("content"), f"message {i}")
        if role in ("system", "developer"):
            if pictures:
                raise UserError("a system message holds images", where=f"message {i}", fix="send them in a user turn")
            system = content
            continue
        if role not in roles:
            raise UserError(f"message {i} has unknown role {role!r}", fix="use user, assistant, tool or system")
        images += pictures
        if role == "assistant" and message.get("tool_calls"):
            turns.append(Message("function", _tool_call_json(message["tool_calls"])))
        elif roles[role] == "observation" and turns and turns[-1].role == "observation":
            turns[-1].content += "\n" + content
        elif role == "assistant":
            turns.append(Message("assistant", content, message.get("reasoning_content") or None))
        else:
            turns.append(Message(roles[role], content))
    if reply and (not turns or turns[-1].role not in ("assistant", "function")):
        raise UserError("the last message must be the assistant's reply", fix="end messages with an assistant turn")
    if not reply and (not turns or turns[-1].role not in ("user", "observation")):
        raise UserError("the last message must come from the user (or a tool)", fix="end messages with a user turn")
    conv = Conversation(messages=turns, system=system or "", tools=tools or "", images=images)
    if images:
        check_placeholders(conv)  # a typed "<image>" beside the pictures: one placeholder too many
    return conv


@dataclass
class GenerationInfo:
    """Filled in by `HuggingFaceEngine.stream(info=...)`: token counts and why the reply ended."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop": end of turn or a stop string; "length": max_new_tokens reached


def _counting_streamer(tokenizer, hidden: frozenset[int] = frozenset(), **kwargs):
    """A TextIteratorStreamer that also counts the generated tokens and keeps the last one. Tokens in `hidden` are
    counted but not written (the stop tokens, when the text keeps special tokens)."""
    from transformers import TextIteratorStreamer  # heavy (torch): only a process that generates imports it

    class Counting(TextIteratorStreamer):
        tokens, last_token = 0, None

        def put(self, value):
            if not (self.skip_prompt and self.next_tokens_are_prompt):
                ids = value.reshape(-1).tolist()
                self.tokens += len(ids)
                self.last_token = ids[-1] if ids else self.last_token
                if hidden:
                    kept = [i for i in ids if i not in hidden]
                    if not kept:
                        return
                    value = value.new_tensor(kept)
            super().put(value)

    return Counting(tokenizer, **kwargs)


def _stop_when(*events: Event):
    """A StoppingCriteria that ends generation once any of the events is set (checked after every token)."""
    import torch
    from transformers import StoppingCriteria

    class WhenSet(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = any(e is not None and e.is_set() for e in events)
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return WhenSet()


class HuggingFaceEngine:
    """Chat with a model (and its adapters). `stream` / `stream_parts` / `chat` / `chat_parts` take OpenAI-style
    messages whose `content` is a string or a list of text and image_url parts (module docstring): the contract the
    CLI, the API and the Web UI share."""

    def __init__(self, cfg: RunConfig):
        if cfg.model.infer_backend != "huggingface":
            raise UserError(
                f"infer_backend '{cfg.model.infer_backend}' needs its package and a CUDA GPU",
                where="infer_backend",
                fix="use infer_backend: huggingface",
            )
        self.cfg = cfg
        adapters = adapter_paths(cfg.model)
        self.tokenizer = load_tokenizer(cfg.model)
        self.tokenizer.padding_side = "left"
        # the config's tool_format / enable_thinking / preserve_thinking apply, as in training
        self.template = template_for(cfg.data, self.tokenizer, name=cfg.data.template or template_from_run(adapters))
        self.template.fix_tokenizer(self.tokenizer)
        model = load_model(cfg.model, resolve_dtype(cfg.model.infer_dtype, "infer_dtype"), for_training=False)
        resize_embeddings(model, self.tokenizer, cfg.model)  # as training did: new tokens, a template's stop words
        self.vision = VisionPrompts(cfg) if is_vision_config(model.config) else None  # None: a text-only model
        if adapters:
            model = load_adapters(model, adapters, is_trainable=False)
            if cfg.model.quantization_bit is None:
                model = model.merge_and_unload()  # one matmul per layer instead of two
        self.device = "cuda" if has_cuda() else "cpu"
        # quantization_device_map: auto has placed the layers already
        self.model = (model if getattr(model, "hf_device_map", None) else model.to(self.device)).eval()
        print_param_status(self.model, cfg.model.print_param_status)
        # replies decode together on one scheduler thread (chat/batching.py); 1: each reply alone through generate
        self.max_batch_size = cfg.model.infer_batch_size
        self.batcher = (
            Batcher(self.model, self.max_batch_size, self.tokenizer.pad_token_id) if self.max_batch_size > 1 else None
        )
        if self.batcher is not None:  # an engine let go (the Web UI loads another model): its thread ends too
            weakref.finalize(self, self.batcher.close).atexit = False  # at exit the daemon thread just stops

    @property
    def tool_format(self) -> str:
        """How this model writes tool calls: a data/tool_formats name (the template's, or the config's tool_format)."""
        return self.template.tool_format

    @property
    def context_length(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def template_for_request(self, enable_thinking: bool | None = None):
        """The template with thinking switched on or off for one request: a copy, so the shared template (and
        the requests that run after this one) never see the switch. None: the configured template as it is."""
        if enable_thinking is None or enable_thinking == getattr(self.template, "enable_thinking", None):
            return self.template
        template = copy.copy(self.template)
        object.__setattr__(template, "enable_thinking", enable_thinking)
        return template

    def prompt_ids(
        self,
        messages: list[dict],
        system: str | None = None,
        tools: str | None = None,
        *,
        enable_thinking: bool | None = None,
    ) -> list[int]:
        return self._prompt(messages, system, tools, enable_thinking)[0]

    def _prompt(self, messages, system, tools, enable_thinking) -> tuple[list[int], ReasoningSplitter | None, dict]:
        """The prompt's ids, the splitter of the reply's thinking from its answer (None: all answer), and the image
        inputs generate takes beside the ids (pixel_values, ...; {} without images)."""
        template = self.template_for_request(enable_thinking)
        conv = to_conversation(messages, system, tools)
        # thinking off: the template ends the prompt with the empty thought (LF's reasoning templates, or a
        # tokenizer's chat_template given enable_thinking), so the model answers at once
        if self.vision is None:
            refuse_images(conv)
            ids, images = template.encode_prompt(self.tokenizer, conv, self.cfg.data.default_system), {}
        else:
            ids, images = self.vision.encode(conv, template, self.tokenizer)
        tags = thought_tags(template)
        opens = prompt_opens_thought(self.tokenizer.decode(ids[-32:], skip_special_tokens=False), tags)
        return ids, (ReasoningSplitter(tags, in_thought=opens) if is_reasoning(template) or opens else None), images

    def _generate_kwargs(self, prompt_len: int, **overrides) -> dict:
        kw = self.cfg.generation.to_generate_kwargs()
        kw.update({k: v for k, v in overrides.items() if v is not None})
        if not kw.get("do_sample"):
            for key in ("temperature", "top_p", "top_k"):
                kw.pop(key, None)
        room = self.context_length and self.context_length - prompt_len
        if room is not None and room < 1:
            raise UserError(
                f"the prompt is {prompt_len} tokens and the model's context is {self.context_length}",
                fix="send a shorter conversation",
            )
        if room is not None and overrides.get("max_new_tokens") is None:
            kw["max_new_tokens"] = min(kw["max_new_tokens"], room)  # the default answer fills what is left
        elif room is not None and kw["max_new_tokens"] > room:
            raise UserError(
                f"the prompt ({prompt_len} tokens) + max_new_tokens ({kw['max_new_tokens']}) exceed the model's "
                f"context of {self.context_length} tokens",
                where="max_tokens",
                fix=f"ask for at most {room} new tokens",
            )
        kw["eos_token_id"] = self.template.stop_token_ids(self.tokenizer)
        kw["pad_token_id"] = self.tokenizer.pad_token_id
        return kw

    def stream(
        self,
        messages: list[dict],
        system: str | None = None,
        tools: str | None = None,
        *,
        stop: list[str] | None = None,
        cancel: Event | None = None,
        info: GenerationInfo | None = None,
        enable_thinking: bool | None = None,
        **gen,
    ) -> Iterator[str]:
        """Yield the reply piece by piece as the model writes it (its thinking included, as written).

        `stop`: strings that end the reply (left out of it). `cancel`: set it to stop generating after the current
        token. `info`: filled in with token counts and the finish reason. `enable_thinking`: switch a reasoning
        template's thinking for this request (None: as configured). Closing the iterator stops generation."""
        ids, splitter, images = self._prompt(messages, system, tools, enable_thinking)
        yield from self._generate(ids, splitter, stop, cancel, info, gen, images)

    def stream_parts(
        self,
        messages: list[dict],
        system: str | None = None,
        tools: str | None = None,
        *,
        stop: list[str] | None = None,
        cancel: Event | None = None,
        info: GenerationInfo | None = None,
        enable_thinking: bool | None = None,
        **gen,
    ) -> Iterator[tuple[str, str]]:
        """Like `stream`, as ("reasoning" | "content", text): a reasoning template's thinking apart from the
        answer (chat/reasoning.py); any other template's reply is all content."""
        ids, splitter, images = self._prompt(messages, system, tools, enable_thinking)
        yield from split_pieces(self._generate(ids, splitter, stop, cancel, info, gen, images), splitter)

    def model_inputs(
        self,
        messages: list[dict],
        system: str | None = None,
        tools: str | None = None,
        *,
        enable_thinking: bool | None = None,
    ) -> dict:
        """The tensors `generate` reads for these messages: input_ids, attention_mask, and a vision model's image
        inputs (pixel_values, image_grid_thw, ...)."""
        ids, _, images = self._prompt(messages, system, tools, enable_thinking)
        return self._inputs(ids, images)

    def _inputs(self, ids: list[int], images: dict) -> dict:
        import torch

        input_ids = torch.tensor([ids], device=self.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), **to_model(images, self.model)}

    def _special_thought_words(self, splitter: ReasoningSplitter | None) -> bool:
        """Whether a thought word holds a special token (gpt-oss' <|channel|>, Gemma 4's <|channel>), which
        skip_special_tokens would drop from the text: then the text keeps special tokens, less the stop tokens."""
        if splitter is None:
            return False
        specials = [t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special]
        return any(s in tag for tag in (splitter.opening, splitter.closing) for s in specials)

    def _generate(self, ids: list[int], splitter, stop, cancel, info, gen: dict, images: dict) -> Iterator[str]:
        kwargs = self._generate_kwargs(len(ids), **gen)
        info = info if info is not None else GenerationInfo()
        info.prompt_tokens = len(ids)
        skip_special = self.cfg.generation.skip_special_tokens
        hidden: frozenset[int] = frozenset()
        if skip_special and self._special_thought_words(splitter):
            skip_special, hidden = False, frozenset(kwargs["eos_token_id"])
        streamer = _counting_streamer(self.tokenizer, hidden, skip_prompt=True, skip_special_tokens=skip_special)
        done, stops = Event(), StopFilter(stop)
        errors: list[BaseException] = []
        row = None
        # a vision model's positions are its own (mrope): its replies run alone, as do beam searches, and replies
        # of a model put in place after loading (the batcher decodes the one it was given)
        batched = self.batcher is not None and self.batcher.model is self.model and self.vision is None
        if batched and can_batch(kwargs):
            row = Row(ids, kwargs, streamer, lambda: done.is_set() or (cancel is not None and cancel.is_set()))
            self.batcher.submit(row)
            finished = row.finished
        else:
            kwargs.update(self._inputs(ids, images), streamer=streamer, stopping_criteria=[_stop_when(done, cancel)])

            def work():
                try:
                    self.model.generate(**kwargs)
                except BaseException as exc:  # re-raised in the caller's thread
                    errors.append(exc)
                    streamer.end()

            if self.batcher is not None:  # images, beams: alone, on the thread that owns the model
                finished = self.batcher.run_alone(work)
            else:
                finished = Event()
                Thread(target=lambda: (work(), finished.set()), daemon=True).start()
        try:
            for piece in streamer:
                if text := stops.feed(piece):
                    yield text
                if stops.hit:
                    done.set()  # the rest of the stream is drained and dropped
            if text := stops.flush():
                yield text
        finally:
            done.set()
            finished.wait()
            info.completion_tokens = streamer.tokens
        if row is not None and row.error is not None:
            errors.append(row.error)
        if errors:
            raise errors[0]
        ended = stops.hit or streamer.last_token in kwargs["eos_token_id"] or (cancel is not None and cancel.is_set())
        info.finish_reason = "stop" if ended or streamer.tokens < kwargs["max_new_tokens"] else "length"

    def chat(self, messages: list[dict], system: str | None = None, tools: str | None = None, **gen) -> str:
        return "".join(self.stream(messages, system, tools, **gen))

    def chat_parts(
        self, messages: list[dict], system: str | None = None, tools: str | None = None, **gen
    ) -> tuple[str | None, str]:
        """(reasoning, answer) of one reply; reasoning is None when the reply holds no thought."""
        parts = list(self.stream_parts(messages, system, tools, **gen))
        reasoning = [text for kind, text in parts if kind == "reasoning"]
        return ("".join(reasoning) if reasoning else None), "".join(t for kind, t in parts if kind == "content")
