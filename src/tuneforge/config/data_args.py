"""Data group: which datasets, how they are templated, cut and mixed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.fields import opt

PENDING = ("not implemented in this version", "remove the key")


@dataclass
class DataArguments:
    template: str | None = opt(
        None,
        "Prompt template (default, empty, alpaca, chatml, qwen, llama3, mistral, gemma, vicuna, ...), "
        "or 'tokenizer' for the model's own chat_template. Unset: the tokenizer's template if it has one.",
    )
    dataset: str | None = opt(None, "Training dataset name(s) from dataset_info.json, comma separated.")
    eval_dataset: str | None = opt(None, "Evaluation dataset name(s), comma separated.")
    dataset_dir: str = opt("data", "Folder holding dataset_info.json and the dataset files.")
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
    overwrite_cache: bool = opt(False, "Re-tokenize even if a cache exists.")
    preprocessing_batch_size: int = opt(1000, "Samples per tokenization batch.")
    preprocessing_num_workers: int | None = opt(None, "Processes that tokenize in parallel (each a batch at a time).")
    max_samples: int | None = opt(None, "Use at most this many samples of each dataset (for quick runs).")
    val_size: float = opt(0.0, "Validation split: a fraction (<1) or a number of samples (>=1).")
    eval_on_each_dataset: bool = opt(False, "Evaluate each eval dataset separately.")
    packing: bool | None = opt(None, "Pack several samples into one sequence.")
    neat_packing: bool = opt(False, "Pack without attention across samples.")
    tool_format: str | None = opt(None, "Tool-call format, overriding the template's.")
    default_system: str | None = opt(None, "System prompt used when a sample has none.")
    enable_thinking: bool = opt(True, "Keep reasoning blocks for templates that have them.")
    tokenized_path: str | None = opt(
        None,
        "Save the tokenized dataset here, or load it if it exists; a cache built from other settings "
        "is refused (overwrite_cache: true rebuilds it).",
    )
    ignore_pad_token_for_loss: bool = opt(True, "Leave padding out of the loss.")
    eval_num_beams: int | None = opt(None, "Beams for do_predict's generation (over num_beams).")
    preserve_thinking: bool = opt(
        False,
        "Keep the thinking of earlier turns for reasoning models.",
        refused=(
            "keeping earlier turns' thinking is not supported yet: the template renders history as its chat template"
            " does",
            "remove preserve_thinking",
        ),
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
