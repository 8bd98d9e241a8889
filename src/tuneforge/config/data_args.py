"""Data group: which datasets, how they are templated, cut and mixed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

# data/tool_formats' TOOL_FORMAT_NAMES (this layer cannot import it; tests/unit/test_lf_templates.py checks they agree)
ToolFormatName = Literal[
    "default",
    "gemma4",
    "glm4",
    "llama3",
    "lfm2",
    "minimax1",
    "minimax2",
    "mistral",
    "qwen",
    "qwen3_5",
    "glm4_moe",
    "seed_oss",
    "ling",
    "harmony",
]

PENDING = ("not implemented in this version", "remove the key")


@dataclass
class DataArguments:
    template: str | None = opt(
        None,
        "Prompt template: any LLaMA-Factory 0.9.5 name (qwen3, qwen3_nothink, llama3, gemma3, deepseek3, glm4_moe,"
        " mistral_small, gpt_oss, ...; docs/templates.md), or 'tokenizer' for the model's own chat_template. Unset: the"
        " tokenizer's template if it has one.",
    )
    dataset: str | None = opt(None, "Training dataset name(s) from dataset_info.json, comma separated.")
    eval_dataset: str | None = opt(None, "Evaluation dataset name(s), comma separated.")
    dataset_dir: str = opt("data", "Folder holding dataset_info.json and the dataset files.")
    media_dir: str | None = opt(
        None,
        "Folder the relative image / video paths of the datasets are read from (a path not found there is tried as"
        " given). Unset: dataset_dir, as in LLaMA-Factory.",
    )
    cutoff_len: int = opt(2048, "Longest tokenized sample; longer ones are truncated, keeping part of the response.")
    train_on_prompt: bool = opt(False, "Also train on the prompt tokens (not only the responses).")
    mask_history: bool = opt(False, "Train only on the last turn's response.")
    streaming: bool = opt(
        False, "Read, convert and tokenize the dataset lazily (flat memory for any size); needs max_steps."
    )
    buffer_size: int = opt(16384, "Streaming: samples held in the shuffle buffer.")
    mix_strategy: Literal["concat", "interleave_under", "interleave_over"] = opt(
        "concat", "How several datasets are mixed."
    )
    interleave_probs: str | None = opt(None, "Sampling weights for interleaving, comma separated.")
    overwrite_cache: bool = opt(
        False,
        "Tokenize again even where tokens are kept: in tokenized_path, or (without it) an earlier run's with the same"
        " data and settings, which runs reuse by themselves when encoding took 2 s or more (TUNEFORGE_CACHE, else"
        " ~/.cache/tuneforge/tokenized).",
    )
    preprocessing_batch_size: int = opt(1000, "Samples per tokenization batch.")
    preprocessing_num_workers: int | None = opt(None, "Processes that tokenize in parallel (each a batch at a time).")
    max_samples: int | None = opt(None, "Use at most this many samples of each dataset (for quick runs).")
    val_size: float = opt(0.0, "Validation split: a fraction (<1) or a number of samples (>=1).")
    eval_on_each_dataset: bool = opt(
        False, "Evaluate each dataset of eval_dataset on its own: eval_<name>_loss for each instead of one eval_loss."
    )
    packing: bool | None = opt(None, "Pack several samples into one sequence.")
    neat_packing: bool = opt(False, "Pack without attention across samples.")
    tool_format: ToolFormatName | None = opt(
        None,
        "Tool-call format (docs/tools.md), overriding the template's: tools and tool calls are written in it and"
        " generated calls read with it (LF: tool calls then end with the plain EOS reply slot).",
    )
    default_system: str | None = opt(None, "System prompt used when a sample has none.")
    enable_thinking: bool | None = opt(
        True,
        "Reasoning templates (docs/thinking.md has the full table): true trains the thinking and an empty think block"
        " before replies without one; false drops all thinking and puts the empty block in the (untrained) prompt;"
        " null (mixed data) keeps the thinking that replies have and puts the empty block in the prompt of the others."
        " With template: tokenizer it is passed to the model's chat template.",
    )
    tokenized_path: str | None = opt(
        None,
        "Save the tokenized dataset here, or load it if it exists; a cache built from other settings "
        "is refused (overwrite_cache: true rebuilds it).",
    )
    ignore_pad_token_for_loss: bool = opt(
        True, "Leave padding out of the loss; false (stage sft) labels the padding with the pad token and trains on it."
    )
    eval_num_beams: int | None = opt(None, "Beams for do_predict's generation (over num_beams).")
    preserve_thinking: bool = opt(
        False,
        "Reasoning templates: keep the thinking of earlier replies in pairwise / KTO prompts and generation prompts,"
        " and in SFT with mask_history (by default LF drops it there, as the model never sees it at inference);"
        " passed to the chat template with template: tokenizer (docs/thinking.md).",
    )
    data_shared_file_system: bool = opt(
        False,
        "Several nodes share one file system: tokenize once for all nodes, not once per node (LF: global instead of"
        " local main_process_first).",
        refused=(
            "TuneForge has no main-process-first dataset cache to share: every rank tokenizes its data in memory"
            " (datasets' map cache is off) and no rank waits for another's files, so there is no per-node step to"
            " turn into a per-cluster one",
            "remove it; to tokenize once for every node, set tokenized_path to a folder on the shared file system:"
            " global rank 0 writes it, and later runs on every node load it",
        ),
    )
    identity_name: str = opt("TuneForge", "Fills {{name}} in the identity dataset: the assistant's name.")
    identity_author: str = opt("the TuneForge team", "Fills {{author}} in the identity dataset: who made it.")
