"""GRPO (and DAPO, Dr. GRPO, BNPO, GSPO by `loss_type` / `importance_sampling_level`): TRL's GRPOTrainer on prompts
written by OUR template, rewarded by the built-ins, user functions from files and a reward model of an rm run.

TRL tokenizes the prompts itself (a chat template or `tokenizer(text)`); we hand it our template's ids instead, so
what the policy sees is exactly what sft taught it and what chat will send. The rows keep the prompt's text
(what reward functions receive as `prompts`), and the dataset's `answer` and `tools` columns for the built-ins.

Per logging step, trainer_log.jsonl gets the reward (mean, std, per function), KL, completion length and clip
ratios (train/callbacks.py); `completions.jsonl` gets a sample of the newest completions with their rewards.
A checkpoint also holds the generations still to be trained on (num_iterations > 1, or gradient accumulation), so
a resumed run trains on the same ones as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.config.grpo_checks import (
    GRPO_SAMPLING_DEFAULTS,
    REWARD_MODEL_REWARD,
    parse_reward_weights,
    reward_names,
)
from tuneforge.errors import UserError
from tuneforge.train.arguments import build_training_arguments, compute_dtype
from tuneforge.train.common import load_stage_inputs, train_stage
from tuneforge.train.cpu_logprob import use_cpu_logprob_head
from tuneforge.train.ppo_reward import make_scorer
from tuneforge.train.preference import load_ref_model
from tuneforge.train.rewards import RewardSettings, build_reward_funcs
from tuneforge.utils import run_folder

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

COMPLETIONS_PER_STEP = 16  # sampled completions written per logging step
BUFFER_FILE = "grpo_generations_{rank}.pt"  # in a checkpoint: each process's generations not yet trained on


def grpo_settings(cfg: RunConfig, world_size: int = 1) -> dict:
    """GRPOConfig keywords for our keys. Sampling: the generation keys the user set, else TRL's (temperature 1)."""
    ft, gen = cfg.finetuning, cfg.generation
    tr = cfg.training
    per_step = int(tr.get("per_device_train_batch_size", 1)) * int(tr.get("gradient_accumulation_steps", 1))
    if per_step * world_size % ft.num_generations:
        raise UserError(
            f"a generation batch of {per_step * world_size} completions (per_device_train_batch_size x"
            f" gradient_accumulation_steps x {world_size} processes) does not hold whole groups of"
            f" num_generations={ft.num_generations}",
            where=cfg.where("num_generations"),
            fix="make per_device_train_batch_size x gradient_accumulation_steps a multiple of num_generations",
        )
    settings = {
        "num_generations": ft.num_generations,
        "max_completion_length": ft.max_completion_length,
        "num_iterations": ft.num_iterations,
        "beta": ft.beta,
        "epsilon": ft.epsilon,
        "loss_type": ft.loss_type,
        "importance_sampling_level": ft.importance_sampling_level,
        "scale_rewards": ft.scale_rewards,
        "mask_truncated_completions": ft.mask_truncated_completions,
        "reward_weights": parse_reward_weights(ft.reward_weights, len(reward_names(cfg))),
        "use_vllm": ft.use_vllm,
        "vllm_mode": ft.vllm_mode,
        "log_completions": False,  # TRL's parquet files and rich tables: we write completions.jsonl
        **{key: getattr(gen, key) if key in cfg.given else value for key, value in GRPO_SAMPLING_DEFAULTS.items()},
    }
    if ft.epsilon_high is not None:
        settings["epsilon_high"] = ft.epsilon_high
    return settings


def reward_functions(cfg: RunConfig, template, policy, tokenizer) -> list:
    """One callable per reward, in reward_names order: built-ins, user functions, then the reward model's score."""
    ft = cfg.finetuning
    settings = RewardSettings(
        thought_words=tuple(template.thought_words),
        tool_format=template.tool_format,
        target_length=ft.length_reward_target or max(1, ft.max_completion_length // 2),
        length_unit=ft.length_reward_unit,
        base_dir=Path(cfg.source).parent if cfg.source else None,
    )
    out = []
    for name in reward_names(cfg):
        if name == REWARD_MODEL_REWARD:
            out.append(RewardModelReward(make_scorer(cfg, policy, tokenizer, compute_dtype(cfg))))
        else:
            out.extend(build_reward_funcs([name], settings))
    return out


class RewardModelReward:
    """The score of a reward model (an rm run, full or LoRA, or a reward server) for prompt + completion, as PPO's."""

    __name__ = REWARD_MODEL_REWARD

    def __init__(self, scorer):
        self.scorer, self.placed = scorer, False

    def __call__(self, prompts, completions, **columns) -> list[float]:
        if not self.placed:  # on this process's device, as the trainer places the policy
            from accelerate import PartialState

            self.scorer.place(lambda model, device: model.to(device), PartialState().device)
            self.placed = True
        return self.scorer([p + c for p, c in zip(prompts, completions, strict=True)]).tolist()


def prompt_rows(dataset, tokenizer, max_prompt_length: int):
    """Our encoded prompts → TRL's rows: `prompt` (the text rewards see), `prompt_ids` (what the policy sees, the
    last max_prompt_length tokens), and the row's other columns (answer, tools) as they are."""
    if dataset is None:
        return None

    def to_rows(batch):
        ids = [row[-max_prompt_length:] for row in batch["input_ids"]]
        return {"prompt_ids": ids, "prompt": tokenizer.batch_decode(ids, skip_special_tokens=False)}

    # a fingerprint of our own: datasets would otherwise hash the closure, tokenizer included (seconds for a 150k
    # vocabulary); the encoded set's fingerprint already follows from the tokenizer and template
    fingerprint = f"{dataset._fingerprint}-grpo-prompts-{max_prompt_length}"
    return dataset.map(to_rows, batched=True, remove_columns=["input_ids"], new_fingerprint=fingerprint, desc="prompts")


@contextmanager
def _reference_from(ref_model):
    """TRL builds a full / freeze run's reference from the model's hub id; hand it ours (loaded as the policy was:
    dtype, RoPE, resized vocabulary) instead."""
    import trl.trainer.grpo_trainer as grpo_module

    original = grpo_module.create_model_from_path
    if ref_model is not None:
        grpo_module.create_model_from_path = lambda *args, **kwargs: ref_model
    try:
        yield
    finally:
        grpo_module.create_model_from_path = original


def _trainer_class():
    import torch
    import transformers.trainer as trainer_module
    from trl import GRPOTrainer

    use_cpu_logprob_head()  # TRL's fused LM head, fast and slim on a CPU

    class PolicyOptimisationTrainer(GRPOTrainer):
        """GRPOTrainer on our encoded prompts, with completions.jsonl and resumable generation buffers."""

        def __init__(self, *args, ref_model=None, **kwargs):
            with _reference_from(ref_model):
                super().__init__(*args, **kwargs)
            if ref_model is not None and self.ref_model is None and self.beta:
                self.ref_model = self._prepared_reference(ref_model)
            self._prompt_ids: list | None = None
            self._new_completions = False

        def _prepared_reference(self, ref_model):
            """LoRA with an explicit ref_model (TRL would use the base with the adapter off): the fused log-prob
            head and the placement TRL gives a reference it builds itself."""
            import trl.trainer.grpo_trainer as grpo_module

            args = self.args
            grpo_module.add_fused_lm_head(
                ref_model, temperature=self.temperature, cast_lm_head_to_fp32=args.cast_lm_head_to_fp32
            )
            if self.is_deepspeed_enabled:
                return grpo_module.prepare_deepspeed(ref_model, self.accelerator)
            if self.is_fsdp_enabled:
                return grpo_module.prepare_fsdp(ref_model, self.accelerator)
            return self.accelerator.prepare_model(ref_model, evaluation_mode=True)

        # our template's ids instead of TRL's own tokenization
        def _generate_and_score_completions(self, inputs):
            self._prompt_ids = [list(row["prompt_ids"]) for row in inputs]
            self._new_completions = True
            return super()._generate_and_score_completions(inputs)

        def _tokenize_prompts(self, prompts):
            assert self._prompt_ids is not None and len(self._prompt_ids) == len(prompts)
            return self._prompt_ids, None, {}

        # completions.jsonl
        def log(self, logs, start_time=None):
            is_train_log = "loss" in logs and self.model.training
            super().log(logs, start_time)
            if is_train_log and self._new_completions and self.accelerator.is_main_process:
                self._write_completions()
                self._new_completions = False  # reused generations (num_iterations > 1) are not written again

        def _write_completions(self):
            n = min(COMPLETIONS_PER_STEP, len(self._logs["prompt"]))
            names = list(self._logs["rewards"])
            weights = self.reward_weights.tolist()
            rows = []
            for i in range(len(self._logs["prompt"]) - n, len(self._logs["prompt"])):
                rewards = {name: _number(self._logs["rewards"][name][i]) for name in names}
                total = sum(w * r for w, r in zip(weights, rewards.values(), strict=True) if r is not None)
                rows.append(
                    {
                        "step": self.state.global_step,
                        "prompt": self._logs["prompt"][i],
                        "completion": self._logs["completion"][i],
                        "rewards": rewards,
                        "reward": round(total, 6),
                        "advantage": _number(self._logs["advantages"][i]),
                    }
                )
            with run_folder.completions_path(self.args.output_dir).open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)

        # the generation buffer goes into checkpoints (exact resume)
        def _save_checkpoint(self, model, trial):
            super()._save_checkpoint(model, trial)
            # every process its own (its share of the generations), beside its RNG state; the folder being written:
            # our atomic save switches the prefix to tmp-checkpoint while it runs
            folder = Path(self._get_output_dir(trial=trial))
            folder /= f"{trainer_module.PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            state = {"step": self._step, "buffer": self._buffered_inputs}
            torch.save(state, folder / BUFFER_FILE.format(rank=self.accelerator.process_index))

        def _load_rng_state(self, checkpoint):
            super()._load_rng_state(checkpoint)
            path = Path(checkpoint or "") / BUFFER_FILE.format(rank=self.accelerator.process_index)
            if checkpoint is not None and path.is_file():
                state = torch.load(path, weights_only=True)  # tensors, lists and numbers only: no pickled code
                self._step, self._buffered_inputs = state["step"], state["buffer"]

    return PolicyOptimisationTrainer


def _number(value) -> float | None:
    value = float(value)
    return None if value != value else round(value, 6)  # NaN: the reward did not apply to this completion


def run(cfg: RunConfig, plan: OutputPlan) -> Path:
    from trl import GRPOConfig

    ft = cfg.finetuning
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    settings = grpo_settings(cfg, world_size)  # bad settings fail before anything loads
    inputs = load_stage_inputs(cfg, "grpo")
    max_prompt = ft.max_prompt_length or cfg.data.cutoff_len
    inputs.train_set = prompt_rows(inputs.train_set, inputs.tokenizer, max_prompt)
    inputs.eval_set = prompt_rows(inputs.eval_set, inputs.tokenizer, max_prompt)
    inputs.tokenizer.padding_side = "left"  # TRL pads prompts on the left for generation
    funcs = reward_functions(cfg, inputs.template, inputs.model, inputs.tokenizer)  # user files import here
    needs_ref = ft.beta > 0 and (ft.ref_model or not ft.uses_adapter)
    ref_model = load_ref_model(cfg, inputs.tokenizer) if needs_ref else None
    args = build_training_arguments(cfg, str(plan.path), cls=GRPOConfig, **settings)
    return train_stage(_trainer_class(), cfg, plan, inputs, args, reward_funcs=funcs, ref_model=ref_model)
