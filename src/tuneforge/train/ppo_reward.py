"""PPO's reward, by `reward_model_type` (LLaMA-Factory's three kinds). Each scorer maps the texts of prompt + response
to one float each.

- full: a separate reward model (an rm run folder, full or LoRA), quantized by `reward_model_quantization_bit`.
- lora: the LoRA adapter of an rm run loaded beside the policy's own adapter on the SAME base (as LF does): scoring
  switches the active adapter to it and applies its score head to the last hidden state of the last real token.
  The rm run must have used the policy's base model; nothing else is loaded.
- api: `reward_model` is a URL; the texts are POSTed as JSON {"model": "model", "messages": [...]} and the answer's
  "scores" list is the reward (LF's `get_rewards_from_server`).
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.model.adapters import split_names
from tuneforge.model.quantize import quantization_config
from tuneforge.model.reward import is_reward_adapter, load_reward_model

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

REWARD_ADAPTER = "reward"  # the adapter name beside the policy's "default"
API_TIMEOUT_S = 600


def make_scorer(cfg: RunConfig, policy, tokenizer, dtype):
    ft = cfg.finetuning
    if ft.reward_model_type == "api":
        return ApiScorer(ft.reward_model)
    if ft.reward_model_type == "lora":
        return AdapterScorer(policy, ft.reward_model, tokenizer)
    qconfig = None
    if ft.reward_model_quantization_bit is not None:
        bnb = dataclasses.replace(
            cfg.model, quantization_bit=ft.reward_model_quantization_bit, quantization_method="bnb"
        )
        qconfig = quantization_config(bnb, dtype)
        qconfig.llm_int8_skip_modules = ["score"]  # the one-output head stays in full precision
    model, reward_tokenizer = load_reward_model(
        ft.reward_model, dtype, adapters=split_names(ft.reward_model_adapters), quantization_config=qconfig
    )
    model.requires_grad_(False)
    return ModelScorer(model, reward_tokenizer)


def _right_padded(tokenizer, texts: list[str], device):
    import torch  # torch: only a PPO run scores (this module is imported by the recipe, kept light for the graph)

    enc = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    width = max(len(e) for e in enc)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([e + [pad] * (width - len(e)) for e in enc], device=device)
    attn = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in enc], device=device)
    return ids, attn


class ModelScorer:
    """A separate sequence-classification reward model, with its own tokenizer."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def place(self, place_fn, device) -> None:
        place_fn(self.model, device)

    def __call__(self, texts: list[str]):
        import torch

        ids, attn = _right_padded(self.tokenizer, texts, self.model.device)
        with torch.no_grad():
            return self.model(input_ids=ids, attention_mask=attn).logits[:, 0].float()


class AdapterScorer:
    """The rm run's LoRA adapter as a second adapter of the policy; its score head kept here."""

    def __init__(self, policy, path: str, tokenizer):
        from peft import PeftModel
        from safetensors.torch import load_file

        if not isinstance(policy, PeftModel) or not is_reward_adapter(path):
            raise UserError(
                "reward_model_type lora needs a LoRA policy and a LoRA rm run folder (adapter task_type SEQ_CLS)",
                where=f"reward_model ({path})",
                fix="point reward_model at the output_dir of a finetuning_type: lora, stage: rm run",
            )
        policy.load_adapter(path, adapter_name=REWARD_ADAPTER, is_trainable=False)
        weights = load_file(str(Path(path) / "adapter_model.safetensors"))
        head = {k.rsplit(".", 1)[-1]: v for k, v in weights.items() if ".score." in k}
        if "weight" not in head:
            raise UserError(
                "the rm adapter has no score head weights", where=f"reward_model ({path})", fix="re-run the rm stage"
            )
        self.weight, self.bias = head["weight"].float(), head.get("bias")
        self.policy, self.tokenizer = policy, tokenizer

    def place(self, place_fn, device) -> None:
        self.weight = self.weight.to(device)
        self.bias = self.bias.to(device) if self.bias is not None else None

    def __call__(self, texts: list[str]):
        import torch

        ids, attn = _right_padded(self.tokenizer, texts, self.weight.device)
        trainable = {p: p.requires_grad for p in self.policy.parameters()}
        active = self.policy.active_adapter
        self.policy.set_adapter(REWARD_ADAPTER, inference_mode=True)
        try:
            with torch.no_grad():
                out = self.policy(input_ids=ids, attention_mask=attn, output_hidden_states=True, use_cache=False)
        finally:
            self.policy.set_adapter(active)
            for p, flag in trainable.items():  # set_adapter flips requires_grad; the optimizer's set stays as it was
                p.requires_grad_(flag)
        last = attn.sum(dim=1) - 1  # right padding: the score is read at the last real token, as an rm run's is
        hidden = out.hidden_states[-1][torch.arange(ids.shape[0], device=ids.device), last].float()
        scores = hidden @ self.weight.T
        if self.bias is not None:
            scores = scores + self.bias.float()
        return scores[:, 0]


class ApiScorer:
    """A reward server over HTTP: POST {"model": "model", "messages": texts} -> {"scores": [float, ...]}."""

    def __init__(self, url: str):
        self.url = url

    def place(self, place_fn, device) -> None:
        pass

    def __call__(self, texts: list[str]):
        import torch

        body = json.dumps({"model": "model", "messages": texts}).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:  # noqa: S310 (the user's URL)
                scores = json.loads(response.read().decode("utf-8"))["scores"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(
                f"the reward server did not answer with scores: {e}",
                where=f"reward_model ({self.url})",
                fix='check the server: it must answer POST {"messages": [...]} with {"scores": [...]}',
            ) from e
        if len(scores) != len(texts):
            raise UserError(
                f"the reward server returned {len(scores)} scores for {len(texts)} texts",
                where=f"reward_model ({self.url})",
                fix="the server must return one score per message",
            )
        return torch.tensor([float(s) for s in scores])
