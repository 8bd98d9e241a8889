"""Score texts or conversations with a reward model (stage rm): a sequence classifier with one label."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.chat.engine import to_conversation
from tuneforge.chat.vision_inputs import refuse_images
from tuneforge.data.template import template_for
from tuneforge.errors import UserError
from tuneforge.model.adapters import split_names
from tuneforge.model.loader import check_model_path
from tuneforge.model.reward import is_reward_adapter, load_reward_model
from tuneforge.utils.devices import has_cuda, resolve_dtype
from tuneforge.utils.run_folder import template_from_run

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig


class RewardEngine:
    """A reward model from a `stage: rm` run: one scalar per input.

    `model_name_or_path` is the run folder (a 1-label sequence classifier, or its SEQ_CLS LoRA adapter), or the base
    model with the run's adapter as the first `adapter_name_or_path`; further adapters are merged in order. A
    conversation is encoded with the chat template as the rm stage encodes pairs, and must end with the assistant's
    reply; a plain string is tokenized as it is. The model pools the last token, as in training."""

    def __init__(self, cfg: RunConfig):
        args = cfg.model
        check_model_path(args.model_name_or_path)
        adapters = split_names(args.adapter_name_or_path)
        paths = [args.model_name_or_path, *adapters]
        if adapters and is_reward_adapter(adapters[0]):
            paths = adapters  # base + the rm run's LoRA: the adapter folder names its base
        self.cfg = cfg
        dtype = resolve_dtype(args.infer_dtype, "infer_dtype")
        try:
            model, self.tokenizer = load_reward_model(paths[0], dtype, adapters=paths[1:])
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(
                f"cannot load a reward model: {str(exc).splitlines()[0]}",
                where=f"model_name_or_path ({args.model_name_or_path})",
                fix="point it at the output_dir of a stage: rm run",
            ) from exc
        self.template = template_for(cfg.data, self.tokenizer, name=cfg.data.template or template_from_run(paths))
        self.template.fix_tokenizer(self.tokenizer)
        self.device = "cuda" if has_cuda() else "cpu"
        self.model = model.to(self.device).eval()

    @property
    def context_length(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def input_ids(self, item: str | list[dict]) -> list[int]:
        if isinstance(item, str):
            return self.tokenizer.encode(item, add_special_tokens=False)
        conv = to_conversation(item, reply=True)
        refuse_images(conv)  # a reward model scores text
        pairs = self.template.encode_multiturn(self.tokenizer, conv, self.cfg.data.default_system)
        eos = [self.tokenizer.eos_token_id] if self.template.efficient_eos else []
        return [i for prompt, response in pairs for i in (*prompt, *response)] + eos

    def score(self, items: list[str | list[dict]]) -> list[tuple[float, int]]:
        """(score, tokens) per item, one forward each (no padding, so nothing depends on the pad token)."""
        import torch  # heavy: only a process that scores imports it

        out = []
        for n, item in enumerate(items):
            ids = self.input_ids(item)
            if not ids:
                raise UserError(f"input {n} is empty", fix="send text to score")
            if self.context_length and len(ids) > self.context_length:
                raise UserError(f"input {n} is {len(ids)} tokens, the model's context is {self.context_length}")
            with torch.inference_mode():
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits
            out.append((float(logits.reshape(-1)[0]), len(ids)))
        return out
