"""The Hugging Face chat engine: the training template renders the prompt, tokens stream as they come."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING

import yaml

from tuneforge.data.conversation import Conversation, Message
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)


def template_from_run(adapter_paths: list[str]) -> str | None:
    """The template a LoRA run was trained with, read from the config.yaml beside its adapter."""
    for path in reversed(adapter_paths):
        for folder in (Path(path), Path(path).parent):
            file = folder / "config.yaml"
            if file.is_file():
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
                if isinstance(data, dict) and data.get("template"):
                    return data["template"]
    return None


def to_conversation(messages: list[dict], system: str | None = None, tools: str | None = None) -> Conversation:
    roles = {
        "user": "user",
        "assistant": "assistant",
        "tool": "observation",
        "observation": "observation",
        "function": "function",
    }
    turns = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            system = message.get("content") or ""
            continue
        if role not in roles:
            raise UserError(f"message {i} has unknown role {role!r}", fix="use user, assistant, tool or system")
        turns.append(Message(roles[role], message.get("content") or ""))
    if not turns or turns[-1].role not in ("user", "observation"):
        raise UserError("the last message must come from the user (or a tool)", fix="end messages with a user turn")
    return Conversation(messages=turns, system=system or "", tools=tools or "")


class HuggingFaceEngine:
    def __init__(self, cfg: RunConfig):
        from tuneforge.data.template import get_template
        from tuneforge.model.adapters import load_adapters, split_names
        from tuneforge.model.loader import load_model, load_tokenizer
        from tuneforge.utils.devices import has_cuda, resolve_dtype

        if cfg.model.infer_backend != "huggingface":
            raise UserError(
                f"infer_backend '{cfg.model.infer_backend}' needs its package and a CUDA GPU",
                where="infer_backend",
                fix="use infer_backend: huggingface",
            )
        self.cfg = cfg
        adapters = split_names(cfg.model.adapter_name_or_path)
        self.tokenizer = load_tokenizer(cfg.model)
        self.tokenizer.padding_side = "left"
        self.template = get_template(cfg.data.template or template_from_run(adapters), self.tokenizer)
        self.template.fix_tokenizer(self.tokenizer)
        model = load_model(cfg.model, resolve_dtype(cfg.model.infer_dtype, "infer_dtype"), for_training=False)
        if adapters:
            model = load_adapters(model, adapters, is_trainable=False)
            if cfg.model.quantization_bit is None:
                model = model.merge_and_unload()  # one matmul per layer instead of two
        self.device = "cuda" if has_cuda() else "cpu"
        self.model = model.to(self.device).eval()

    def _inputs(self, messages, system, tools):
        conv = to_conversation(messages, system, tools)
        ids = self.template.encode_prompt(self.tokenizer, conv, self.cfg.data.default_system)
        import torch

        return torch.tensor([ids], device=self.device)

    def _generate_kwargs(self, **overrides) -> dict:
        kw = self.cfg.generation.to_generate_kwargs()
        kw.update({k: v for k, v in overrides.items() if v is not None})
        if not kw.get("do_sample"):
            for key in ("temperature", "top_p", "top_k"):
                kw.pop(key, None)
        kw["eos_token_id"] = self.template.stop_token_ids(self.tokenizer)
        kw["pad_token_id"] = self.tokenizer.pad_token_id
        return kw

    def stream(self, messages: list[dict], system: str | None = None, tools: str | None = None, **gen) -> Iterator[str]:
        """Yield the reply piece by piece as the model writes it."""
        from transformers import TextIteratorStreamer

        input_ids = self._inputs(messages, system, tools)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=self.cfg.generation.skip_special_tokens
        )
        kwargs = {
            "input_ids": input_ids,
            "attention_mask": input_ids.new_ones(input_ids.shape),
            "streamer": streamer,
            **self._generate_kwargs(**gen),
        }
        errors: list[BaseException] = []

        def work():
            try:
                self.model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)
                streamer.end()

        thread = Thread(target=work, daemon=True)
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()
        if errors:
            raise errors[0]

    def chat(self, messages: list[dict], system: str | None = None, tools: str | None = None, **gen) -> str:
        return "".join(self.stream(messages, system, tools, **gen))
