"""Saving and resuming our PPO loop: the policy + value head, atomic `checkpoint-N` folders, and their reload.

A checkpoint holds the policy (adapter or full weights), `value_head.safetensors`, the optimizer + scheduler
(`optimizer.pt`) and, written last, `trainer_state.json` with the step, KL coefficient, score moments, the prompt
order and RNG states — everything a resume needs to continue bit for bit. It is written into `tmp-checkpoint-N`
and renamed in one `os.replace` (`train/checkpoint.py`), like every Trainer stage's.
"""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.errors import UserError
from tuneforge.train.checkpoint import clear_staging, finish_checkpoint
from tuneforge.utils import run_folder
from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)


class PPOCheckpointing:
    """What `PPOLoop` mixes in to save and resume. Uses the loop's policy, tokenizer, value_head, optimizer,
    scheduler, kl_ctl, score_moments, generator, pending, step and args."""

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file  # torch / safetensors / peft: only a PPO save or resume needs them

        folder.mkdir(parents=True, exist_ok=True)
        adapters = getattr(self.policy, "peft_config", {})
        # only the trained adapter: a reward adapter beside it (reward_model_type lora) is an input, not a result
        kwargs = {"selected_adapters": ["default"]} if len(adapters) > 1 else {}
        self.policy.save_pretrained(folder, **kwargs)
        self.tokenizer.save_pretrained(folder)
        head = {k: v.contiguous() for k, v in self.value_head.state_dict().items()}
        save_file(head, str(folder / run_folder.VALUE_HEAD_FILE))

    def save_checkpoint(self, output_dir: Path) -> Path:
        """`checkpoint-<step>`, atomically: everything is written into `tmp-checkpoint-<step>` (the state file last),
        renamed in one `os.replace`, and only then are checkpoints past `save_total_limit` deleted."""
        staging, final = run_folder.checkpoint_paths(output_dir, self.step)
        clear_staging(output_dir)  # what a killed run left half-written
        self._write_checkpoint(staging)
        finish_checkpoint(staging, final, self.args.save_total_limit)
        return final

    def _write_checkpoint(self, folder: Path) -> None:
        import torch

        self.save(folder)
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            folder / run_folder.PPO_OPTIMIZER_FILE,
        )
        state = {
            "global_step": self.step,
            "kl_coef": self.kl_ctl.value,
            "score_moments": [self.score_moments.mean, self.score_moments.var, self.score_moments.count],
            "generator": self.generator.get_state().tolist(),
            "torch_rng": torch.get_rng_state().tolist(),  # sampling in generate() draws from it
            "cuda_rng": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
            "pending": self.pending,
        }
        run_folder.state_path(folder).write_text(json.dumps(state), encoding="utf-8")  # last: marks it complete

    def load_checkpoint(self, folder: Path) -> None:
        import torch
        from safetensors.torch import load_file

        state = json.loads(run_folder.state_path(folder).read_text(encoding="utf-8"))
        if "kl_coef" not in state:
            raise UserError(
                "not a checkpoint of a ppo run", where=f"resume_from_checkpoint ({folder})", fix="use a ppo checkpoint"
            )
        if (folder / "adapter_model.safetensors").is_file():
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.policy, load_file(str(folder / "adapter_model.safetensors")))
        else:
            from transformers import AutoModelForCausalLM

            saved = AutoModelForCausalLM.from_pretrained(folder, dtype=self.policy.dtype)
            self.policy.load_state_dict(saved.state_dict())
        self.value_head.load_state_dict(load_file(str(folder / run_folder.VALUE_HEAD_FILE)))
        opt = torch.load(folder / run_folder.PPO_OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(opt["optimizer"])
        self.scheduler.load_state_dict(opt["scheduler"])
        self.step = state["global_step"]
        self.kl_ctl.value = state["kl_coef"]
        self.score_moments.mean, self.score_moments.var, self.score_moments.count = state["score_moments"]
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda_rng"]])
        self.pending = state["pending"]
        logger.info("resuming from %s (step %d)", folder, self.step)
