"""Which datasets each stage accepts, and how a stage encodes one: sft conversations, pt documents, rm/dpo pairs,
kto feedback, ppo prompts. Samples that cannot teach anything are dropped and counted. The in-memory loader
(loader.py), the worker processes (parallel.py) and the stream (streaming.py) all encode through here."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tuneforge.config.stages import stage_record, stages_where
from tuneforge.data.media import refuse_vision
from tuneforge.data.pairwise import encode_kto_example, encode_pairwise_example
from tuneforge.data.pretrain import encode_document, pack_documents
from tuneforge.data.prompts import encode_prompt_example, prompt_conversation
from tuneforge.data.sft import IGNORE_INDEX, encode_sft_example
from tuneforge.data.vision_conversation import IMAGES_COLUMN, bound_vision, image_token_count, with_image_tokens
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.data_args import DataArguments
    from tuneforge.data.registry import DatasetAttr


def dataset_fits_stage(stage: str, attr: DatasetAttr) -> bool:
    """Whether a registered dataset has the stage's data kind (config/stages.py): ranking sets for pairwise stages,
    kto_tag sets for unpaired ones, plain sets for the rest (what the Web UI lists for the stage)."""
    kind = stage_record(stage).data
    if kind == "pairwise":
        return bool(attr.ranking)
    if kind == "unpaired":
        return bool(attr.kto_tag)
    return not attr.ranking and not attr.kto_tag


def check_dataset_for_stage(stage: str, attr: DatasetAttr, field: str = "dataset") -> None:
    """One clear error when a registered dataset cannot feed this stage."""
    kind = stage_record(stage).data
    if kind == "pairwise" and not attr.ranking:
        raise UserError(
            f"stage {stage} needs pairwise data, but dataset '{attr.name}' is not marked ranking: true",
            where=attr.where or field,
            fix='use a dataset with chosen/rejected answers and "ranking": true in dataset_info.json '
            "(e.g. dpo_en_demo)",
        )
    if kind == "unpaired" and not attr.kto_tag:
        raise UserError(
            f"stage {stage} needs a kto_tag column (desirable true/false), dataset '{attr.name}' has none",
            where=attr.where or field,
            fix='set "columns": {"kto_tag": "label"} in dataset_info.json, or use kto_en_demo',
        )


def encode_sft(conversations, template, tokenizer, args: DataArguments) -> tuple[dict[str, list], Counter]:
    """(columns, dropped) for SFT: input_ids / attention_mask / labels, loss on the responses; with a vision model,
    `image_refs` too (data/vision_conversation.py: the rows' image references, their tokens already in the ids)."""
    columns: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    dropped: Counter = Counter()
    for conv in conversations:
        if not conv.pairs():
            dropped["no assistant response"] += 1
            continue
        example = encode_sft_example(
            conv, template, tokenizer, args.cutoff_len, args.train_on_prompt, args.mask_history, args.default_system
        )
        if all(label == IGNORE_INDEX for label in example["labels"]):
            dropped[f"no response token left within cutoff_len={args.cutoff_len}"] += 1
            continue
        if cut_image(conv, template, tokenizer, example["input_ids"]):
            dropped[f"cutoff_len={args.cutoff_len} cuts through its image tokens"] += 1
            continue
        if bound_vision(template) is not None:
            example[IMAGES_COLUMN] = conv.images
        for key in ("input_ids", "attention_mask", "labels", IMAGES_COLUMN):
            if key in example:
                columns.setdefault(key, []).append(example[key])
    return columns, dropped


def cut_image(conv, template, tokenizer, ids: list[int]) -> bool:
    """Whether the encoded ids lost some of the row's image tokens to cutoff_len (the model would fail on them)."""
    if not conv.images:
        return False
    token_id = tokenizer.convert_tokens_to_ids(template.mm_plugin["image_token"])
    return sum(1 for i in ids if i == token_id) != image_token_count(conv, template)


def with_vision(conv, template, stage: str):
    """The conversation with its image tokens in place, ready for the text encoders; one line naming the row when
    its images cannot be trained here (a stage without images, a text model, videos)."""
    if not conv.images and not conv.videos:
        return conv
    vision = bound_vision(template)
    if conv.videos:  # transformers' video processors need torchvision, which does not load beside the CPU torch
        refuse_vision(
            conv,
            reason="training on videos is not supported yet",
            fix="remove the videos",
        )
    if not stage_record(stage).vision:
        takes = " and ".join(stages_where(lambda r: r.vision))
        refuse_vision(conv, reason=f"stage {stage} does not train on images", fix=f"use stage {takes}")
    if vision is None:
        refuse_vision(
            conv,
            reason="the model is a text model",
            fix="set model_name_or_path to a vision-language model (e.g. Qwen2-VL) and its template (e.g. qwen2_vl)",
        )
    return with_image_tokens(conv, template, vision.processor, vision.mm)[0]


def row_columns(conv, names: tuple[str, ...]) -> dict:
    """The row's own columns a stage keeps beside the prompt (GRPO's rewards read them): the reference `answer`
    (data/formats.py), the `tools` declared (JSON text); None where the row has none."""
    return {name: (conv.tools or None) if name == "tools" else conv.extra.get(name) for name in names}


def encode_batch(stage: str, conversations: list, template, tokenizer, args: DataArguments, pack: bool = True):
    """(columns, dropped) for one batch of conversations, with the stage's encoder (pt: packed per batch)."""
    columns, dropped = encode_for_stage(stage, conversations, template, tokenizer, args)
    if pack and stage_record(stage).data == "text" and columns.get("input_ids"):
        columns = pack_documents(columns["input_ids"], args.cutoff_len)
    return columns, dropped


def encode_for_stage(stage: str, conversations, template, tokenizer, args: DataArguments):
    """(columns, dropped) for any stage, by its data kind (config/stages.py). Rows with images get their image
    tokens first (`with_vision`), where the stage and the model take images."""
    conversations = [with_vision(conv, template, stage) for conv in conversations]
    kind = stage_record(stage).data
    if kind == "supervised":
        return encode_sft(conversations, template, tokenizer, args)
    columns: dict[str, list] = {}
    dropped: Counter = Counter()
    for conv in conversations:
        if kind == "text":
            example = encode_document(conv, tokenizer)
        elif kind == "pairwise":
            example = encode_pairwise_example(conv, template, tokenizer, args.cutoff_len, args.default_system)
            if not example["chosen_ids"] or not example["rejected_ids"]:
                dropped[f"no response token left within cutoff_len={args.cutoff_len}"] += 1
                continue
            if cut_image(conv, template, tokenizer, example["prompt_ids"] + example["chosen_ids"]):
                dropped[f"cutoff_len={args.cutoff_len} cuts through its image tokens"] += 1
                continue
            if stage_record(stage).vision and bound_vision(template) is not None:
                example[IMAGES_COLUMN] = conv.images
            if stage == "rm":  # a reward model scores whole sequences
                prompt = example.pop("prompt_ids")
                example = {
                    "chosen_ids": prompt + example["chosen_ids"],
                    "rejected_ids": prompt + example["rejected_ids"],
                }
        elif kind == "unpaired":
            if not conv.pairs():
                dropped["no assistant response"] += 1
                continue
            example = encode_kto_example(conv, template, tokenizer, args.cutoff_len, args.default_system)
            if not example["completion_ids"]:
                dropped[f"no response token left within cutoff_len={args.cutoff_len}"] += 1
                continue
        elif kind == "prompts":
            if not prompt_conversation(conv).messages:
                dropped["no prompt"] += 1
                continue
            example = encode_prompt_example(conv, template, tokenizer, args.cutoff_len, args.default_system)
            example.update(row_columns(conv, stage_record(stage).row_columns))
        else:
            raise ValueError(f"no encoder for data kind {kind} (stage {stage})")
        for key, value in example.items():
            columns.setdefault(key, []).append(value)
    return columns, dropped
