"""Predict: generate a reply for every sample of a dataset (batched, left padding) and score it against the label.

Writes `generated_predictions.jsonl` ({"prompt", "predict", "label"} per line, as LLaMA-Factory does) and
`predict_results.json` (predict_bleu-4, predict_rouge-1/2/l, runtime) into the output folder.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.data.conversation import PROMPT_ROLES, Conversation
from tuneforge.data.formats import load_conversations
from tuneforge.data.media import refuse_vision
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.vision_collate import with_image_batches
from tuneforge.data.vision_conversation import IMAGES_COLUMN, bound_vision, with_image_tokens
from tuneforge.errors import UserError
from tuneforge.evaluate.metrics import generation_metrics
from tuneforge.evaluate.model import forward_kwargs, left_pad, load_for_inference
from tuneforge.model.adapters import split_names
from tuneforge.utils.logging import get_logger, is_main_process
from tuneforge.utils.run_folder import PREDICT_RESULTS_FILE, PREDICTIONS_FILE

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.evaluate.mc import Progress

logger = get_logger(__name__)


@dataclasses.dataclass
class Sample:
    conversation: Conversation  # ends with the prompt turn
    label: str  # the dataset's reply ("" when it has none)


def split_samples(conversations: list[Conversation]) -> list[Sample]:
    """The last reply of each conversation becomes the label; the turns before it are the prompt."""
    samples = []
    for conv in conversations:
        messages, label = list(conv.messages), ""
        if messages and messages[-1].role not in PROMPT_ROLES:
            label = messages.pop().content
        if not messages:
            raise UserError("the sample has no prompt", where=conv.source or None, fix="give every sample a prompt")
        samples.append(Sample(dataclasses.replace(conv, messages=messages), label))
    return samples


def load_samples(cfg: RunConfig) -> tuple[str, list[Sample]]:
    """(the dataset field used, samples) from eval_dataset, else dataset."""
    field = "eval_dataset" if cfg.data.eval_dataset else "dataset"
    names = cfg.data.eval_dataset or cfg.data.dataset
    if not names:
        raise UserError("predict needs a dataset", where="eval_dataset", fix="set eval_dataset (or dataset)")
    samples = []
    for attr in get_dataset_attrs(names, cfg.data.dataset_dir):
        found = split_samples(load_conversations(attr, cfg.data.dataset_dir, cfg.data))
        if not found:
            raise UserError(f"dataset '{attr.name}' has no samples", where=attr.where, fix="add samples")
        samples += found
    return field, samples


def generate(
    loaded, prompts: list[list[int]], gen_kwargs: dict, batch_size: int, progress=None, images: list | None = None
) -> list[str]:
    """Replies for the prompts, in order; batches of similar length, padded on the left. `images`: each prompt's
    picture references (a vision model), whose pixel values join the batch as in training."""
    import torch  # heavy: only a process that generates imports it

    tokenizer = loaded.tokenizer
    names = forward_kwargs(loaded.model) - {"position_ids"}  # generate() derives positions from the mask
    collate = with_image_batches(
        lambda rows: left_pad([r["input_ids"] for r in rows], tokenizer.pad_token_id, "cpu", names), loaded.template
    )
    images = images or [[] for _ in prompts]
    dtype = loaded.model.dtype
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    replies = [""] * len(prompts)
    skip = gen_kwargs.pop("skip_special_tokens", True)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collate([{"input_ids": prompts[i], IMAGES_COLUMN: images[i]} for i in chunk])
            batch = {k: v.to(loaded.device, dtype if v.is_floating_point() else None) for k, v in batch.items()}
            out = loaded.model.generate(**batch, **gen_kwargs)
            new = out[:, batch["input_ids"].shape[1] :]
            for i, text in zip(chunk, tokenizer.batch_decode(new, skip_special_tokens=skip), strict=True):
                replies[i] = text
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
    return replies


def with_pictures(conv: Conversation, template) -> Conversation:
    """A prompt with pictures, their image tokens in place (a vision model); one line for a text model. A prompt
    with pictures is never cut to cutoff_len: its image tokens must stay whole."""
    if not conv.images and not conv.videos:
        return conv
    vision = bound_vision(template)
    if vision is None or conv.videos:
        refuse_vision(
            conv,
            reason="the model is a text model" if vision is None else "prediction on videos is not supported yet",
            fix="predict with a vision-language model and its template (e.g. qwen2_vl)",
        )
    return with_image_tokens(conv, template, vision.processor, vision.mm)[0]


def generate_kwargs(cfg: RunConfig, loaded) -> dict:
    kw = cfg.generation.to_generate_kwargs()
    if cfg.data.eval_num_beams is not None:  # LLaMA-Factory's beams for predict, over num_beams
        kw.update(num_beams=cfg.data.eval_num_beams, length_penalty=cfg.generation.length_penalty)
    kw["eos_token_id"] = loaded.template.stop_token_ids(loaded.tokenizer)
    kw["pad_token_id"] = loaded.tokenizer.pad_token_id
    kw["skip_special_tokens"] = cfg.generation.skip_special_tokens
    return kw


def run_predict(cfg: RunConfig, progress: Progress | None = None, output_dir: str | Path | None = None) -> dict:
    """Generate for eval_dataset (or dataset) and score: returns predict_results plus "output_dir" and
    "predictions_file". `progress(done, total)` is called after each batch."""
    from transformers import set_seed

    out = Path(output_dir or cfg.training.get("output_dir") or _default_dir(cfg))
    if out.exists() and not out.is_dir():
        raise UserError("output_dir is a file", where=f"output_dir ({out})", fix="choose a folder path")
    field, samples = load_samples(cfg)  # data errors before the model loads
    batch_size = int(cfg.training.get("per_device_eval_batch_size") or 8)
    start = time.monotonic()
    loaded = load_for_inference(cfg)
    prompts, truncated = [], 0
    limit = cfg.data.cutoff_len
    for s in samples:
        conv = with_pictures(s.conversation, loaded.template)
        ids = loaded.template.encode_prompt(loaded.tokenizer, conv, cfg.data.default_system)
        if len(ids) > limit and not conv.images:  # keep the end: it holds the question and the start of the reply
            ids, truncated = ids[-limit:], truncated + 1
        prompts.append(ids)
    if truncated:
        logger.warning(
            "%d of %d prompts were longer than cutoff_len=%d and lost their start", truncated, len(samples), limit
        )
    set_seed(int(cfg.training.get("seed", 42)))
    images = [s.conversation.images for s in samples]
    replies = generate(loaded, prompts, generate_kwargs(cfg, loaded), batch_size, progress, images)
    runtime = time.monotonic() - start
    labels = [s.label for s in samples]
    metrics = generation_metrics(replies, labels)
    results = {f"predict_{k}": v for k, v in metrics.items()}
    results.update(
        predict_samples=len(samples),
        predict_runtime=round(runtime, 4),
        predict_samples_per_second=round(len(samples) / runtime, 3) if runtime else None,
        predict_dataset=getattr(cfg.data, field),
    )
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = loaded.tokenizer
    with (out / PREDICTIONS_FILE).open("w", encoding="utf-8") as f:
        for ids, reply, label in zip(prompts, replies, labels, strict=True):
            prompt = tokenizer.decode(ids, skip_special_tokens=False)
            f.write(json.dumps({"prompt": prompt, "predict": reply, "label": label}, ensure_ascii=False) + "\n")
    (out / PREDICT_RESULTS_FILE).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("predictions in %s: %s", out / PREDICTIONS_FILE, json.dumps(metrics))
    return {**results, "output_dir": str(out), "predictions_file": str(out / PREDICTIONS_FILE)}


def _default_dir(cfg: RunConfig) -> str:
    model = Path(cfg.model.model_name_or_path or "model").name or "model"
    return str(Path("saves") / model / "predict")


def check_predict_config(cfg: RunConfig) -> None:
    if not cfg.training.get("predict_with_generate"):
        raise UserError(
            "do_predict writes generated replies and needs predict_with_generate: true",
            where=cfg.where("do_predict"),
            fix="set predict_with_generate: true",
        )
    if cfg.finetuning.stage != "sft":
        raise UserError(
            f"do_predict is for stage sft, not {cfg.finetuning.stage}", where=cfg.where("stage"), fix="set stage: sft"
        )


def predict_only(cfg: RunConfig) -> Path:
    """`tuneforge train` with do_predict: true and do_train: false (LLaMA-Factory's predict config)."""
    check_predict_config(cfg)
    return Path(run_predict(cfg)["output_dir"])


def predict_after_training(cfg: RunConfig, output_dir: str | Path) -> dict:
    """do_train and do_predict: generate with the model just saved in output_dir."""
    check_predict_config(cfg)
    if not is_main_process():  # under torchrun one process generates
        return {}
    model = cfg.model
    if cfg.finetuning.uses_adapter:  # LoRA / OFT: output_dir holds the adapter
        given = split_names(model.adapter_name_or_path)
        kept = given if cfg.finetuning.create_new_adapter else given[:-1]  # a continued adapter was saved again
        model = dataclasses.replace(model, adapter_name_or_path=",".join([*kept, str(output_dir)]))
    else:
        model = dataclasses.replace(model, model_name_or_path=str(output_dir), adapter_name_or_path=None)
    return run_predict(dataclasses.replace(cfg, model=model), output_dir=output_dir)
