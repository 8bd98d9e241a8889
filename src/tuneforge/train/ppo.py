"""PPO (RLHF) with a reward model from an `rm` run. TRL 1.16 has no PPO, so this is our own small loop.

Each step: sample responses to a buffer of prompts (our template, full-distribution sampling, up to
`max_new_tokens`), score prompt + response with the reward model, add a per-token KL penalty to the reference
(LoRA: the base with the adapter disabled; full / freeze: a frozen copy of the base, or `ref_model`), estimate
advantages with GAE on a value head that shares the policy's body, then `ppo_epochs` passes of the clipped policy
+ value objective. The run folder is like every stage's (utils/run_folder.py): the config, the JSONL log (loss,
mean_reward, kl), checkpoint-N (written atomically: tmp-checkpoint-N, then one rename; resumable bit for bit), the
policy (adapter or full model) + value head, the loss plot. One process only. SIGTERM / SIGINT (the Web UI's
Abort, Ctrl-C) finish the step, save a checkpoint and stop with `TrainingStopped` (exit 130), as the Trainer stages do.
Saving and resuming live in `ppo_checkpoint.py`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

# torch and transformers at the top: ppo_core and the callbacks need them at import anyway, and train/run.py
# imports a stage's recipe only when a run of that stage starts.
import torch
from transformers import get_scheduler

from tuneforge.data.loader import get_stage_datasets
from tuneforge.errors import UserError
from tuneforge.train.arguments import build_training_arguments, compute_dtype
from tuneforge.train.callbacks import StopSignals, stopped
from tuneforge.train.common import load_tokenizer_and_template, load_trainable_model, seed_of
from tuneforge.train.engines import world_size
from tuneforge.train.plot import plot_loss
from tuneforge.train.ppo_checkpoint import PPOCheckpointing
from tuneforge.train.ppo_core import AdaptiveKL, RunningMoments, gae, masked_whiten, ppo_loss, token_rewards
from tuneforge.train.ppo_reward import make_scorer
from tuneforge.train.preference import load_ref_model
from tuneforge.utils import run_folder
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig
    from tuneforge.train.output_dir import OutputPlan

logger = get_logger(__name__)


def run(cfg: RunConfig, plan: OutputPlan) -> Path:

    if world_size() > 1:  # no gradient sync, and every rank would write the same run folder
        raise UserError(
            "stage ppo runs in one process",
            where="--nproc / NPROC_PER_NODE / WORLD_SIZE",
            fix="run it without --nproc (one process, one device)",
        )
    if cfg.data.eval_dataset or cfg.data.val_size:
        raise UserError(
            "stage ppo has no evaluation set (its metric is the reward of fresh samples)",
            where=cfg.where("eval_dataset" if cfg.data.eval_dataset else "val_size"),
            fix="remove eval_dataset / val_size",
        )
    tokenizer, template = load_tokenizer_and_template(cfg)
    prompts, _ = get_stage_datasets("ppo", cfg.data, template, tokenizer, seed=seed_of(cfg))
    dtype = compute_dtype(cfg)
    policy = load_trainable_model(cfg, tokenizer)
    scorer = make_scorer(cfg, policy, tokenizer, dtype)  # reward_model_type: full, lora (on the policy) or api
    ref = load_ref_model(cfg, tokenizer)  # None for LoRA: the adapter is disabled instead
    args = build_training_arguments(cfg, str(plan.path))
    torch.manual_seed(args.seed)
    hidden = policy.get_input_embeddings().weight.shape[1]
    value_head = torch.nn.Linear(hidden, 1, dtype=dtype)
    torch.nn.init.normal_(value_head.weight, std=1 / math.sqrt(hidden + 1))
    torch.nn.init.zeros_(value_head.bias)

    loop = PPOLoop(cfg, args, tokenizer, template, policy, value_head, ref, scorer, prompts)
    plan.prepare(cfg)
    if plan.resume_from:
        loop.load_checkpoint(Path(plan.resume_from))
        run_folder.trim_log(plan.path, loop.step)
    metrics = loop.train(plan.path)

    tokenizer.chat_template = template.to_jinja()
    loop.save(plan.path)
    run_folder.write_results(plan.path, metrics)  # marks the run complete
    if cfg.finetuning.plot_loss:
        plot_loss(plan.path)
    plan.finish()
    logger.info("saved to %s", plan.path)
    return plan.path


def _place(model, device) -> None:
    """Move a model to the training device unless it is quantized or already dispatched (device_map)."""
    if model is None or getattr(model, "hf_device_map", None):
        return
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        return
    model.to(device)


class PPOLoop(PPOCheckpointing):
    """Rollouts, scoring, GAE and clipped updates; checkpoints and JSONL records like the Trainer's."""

    def __init__(self, cfg, args, tokenizer, template, policy, value_head, ref, scorer, prompts):
        ft = cfg.finetuning
        self.cfg, self.args, self.ft = cfg, args, ft
        self.tokenizer, self.policy, self.value_head, self.ref = tokenizer, policy, value_head, ref
        self.scorer = scorer  # train/ppo_reward.py: texts -> one score each
        self.prompts = prompts["input_ids"]
        self.batch = args.per_device_train_batch_size
        self.stop_ids = template.stop_token_ids(tokenizer)
        per_step = self.batch * ft.ppo_buffer_size
        epochs_steps = math.ceil(args.num_train_epochs * len(self.prompts) / per_step)
        self.total_steps = args.max_steps if args.max_steps > 0 else max(epochs_steps, 1)
        params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
        updates = self.total_steps * ft.ppo_epochs * ft.ppo_buffer_size
        self.scheduler = get_scheduler(args.lr_scheduler_type, self.optimizer, args.get_warmup_steps(updates), updates)
        self.kl_ctl = AdaptiveKL(target=ft.ppo_target)
        self.score_moments = RunningMoments()
        self.device = args.device
        for model in (policy, value_head, ref):
            _place(model, self.device)
        scorer.place(_place, self.device)
        self.step = 0
        self.generator = torch.Generator().manual_seed(args.seed)  # prompt order and update order
        self.pending: list[list[list[int]]] = []  # prompt batches left in the current pass over the data
        self.max_new_tokens = cfg.generation.max_new_tokens
        self.temperature = cfg.generation.temperature if cfg.generation.do_sample else 1.0
        if self.temperature <= 0:
            raise UserError("ppo samples with temperature > 0", where=cfg.where("temperature"), fix="use e.g. 1.0")

    # ---- rollouts -------------------------------------------------------------------------------------------
    def _prompt_batches(self):
        order = torch.randperm(len(self.prompts), generator=self.generator).tolist()
        while len(order) < self.batch:
            order += order
        return [
            [self.prompts[i] for i in order[k : k + self.batch]]
            for k in range(0, len(order) - self.batch + 1, self.batch)
        ]

    def _left_pad(self, seqs):
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def _forward(self, model, input_ids, attention_mask, q_len, with_values=False):
        """Log-probs of the response tokens (and values at the states before them)."""
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            output_hidden_states=with_values,
            use_cache=False,
        )
        logits = out.logits[:, q_len - 1 : -1].float() / self.temperature  # the distribution we sample from
        targets = input_ids[:, q_len:]
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        if not with_values:
            return logprobs
        hidden = out.hidden_states[-1][:, q_len - 1 : -1]
        return logprobs, self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()

    def rollout(self, prompt_ids: list[list[int]]) -> dict:
        query, query_mask = self._left_pad(prompt_ids)
        q_len = query.shape[1]
        self.policy.eval()
        with torch.no_grad():
            seqs = self.policy.generate(
                input_ids=query,
                attention_mask=query_mask,
                do_sample=True,
                top_k=0,
                top_p=1.0,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                eos_token_id=self.stop_ids,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        response = seqs[:, q_len:]
        mask = torch.ones_like(response)
        for row in range(response.shape[0]):
            stops = [i for i, t in enumerate(response[row].tolist()) if t in self.stop_ids]
            if stops:
                mask[row, stops[0] + 1 :] = 0
        response = response.masked_fill(mask == 0, self.tokenizer.pad_token_id)
        input_ids = torch.cat([query, response], dim=1)
        attention_mask = torch.cat([query_mask, mask], dim=1)
        with torch.no_grad():
            logprobs, values = self._forward(self.policy, input_ids, attention_mask, q_len, with_values=True)
            if self.ref is None:
                with self.policy.disable_adapter():
                    ref_logprobs = self._forward(self.policy, input_ids, attention_mask, q_len)
            else:
                ref_logprobs = self._forward(self.ref, input_ids, attention_mask, q_len)
            scores = self.score(prompt_ids, response, mask)
        raw_scores = scores.clone()
        if self.ft.ppo_score_norm:
            self.score_moments.update(scores)
            scores = (scores - self.score_moments.mean) / self.score_moments.std
        mask_f = mask.float()
        rewards, kl = token_rewards(scores, logprobs, ref_logprobs, mask_f, self.kl_ctl.value)
        if self.ft.ppo_whiten_rewards:
            rewards = masked_whiten(rewards, mask_f, shift_mean=False)
        advantages, returns = gae(rewards, values, mask_f)
        advantages = masked_whiten(advantages, mask_f)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "q_len": q_len,
            "mask": mask_f,
            "logprobs": logprobs,
            "values": values,
            "advantages": advantages,
            "returns": returns,
            "score": raw_scores,
            "kl": kl.sum(dim=1),
            "response_len": mask_f.sum(dim=1),
        }

    def score(self, prompt_ids, response, mask):
        """The reward of prompt + response, as text (each scorer re-tokenizes it its own way)."""
        texts = []
        for prompt, resp, m in zip(prompt_ids, response.tolist(), mask.tolist(), strict=True):
            ids = prompt + [t for t, keep in zip(resp, m, strict=True) if keep]
            texts.append(self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        return self.scorer(texts).float().to(self.device)

    # ---- updates --------------------------------------------------------------------------------------------
    def update(self, batch: dict) -> dict:
        self.policy.train()
        logprobs, values = self._forward(
            self.policy, batch["input_ids"], batch["attention_mask"], batch["q_len"], with_values=True
        )
        loss, stats = ppo_loss(
            logprobs, batch["logprobs"], values, batch["values"], batch["advantages"], batch["returns"], batch["mask"]
        )
        self.optimizer.zero_grad()
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.args.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": loss.item(), "grad_norm": grad_norm.item(), **stats}

    def train(self, output_dir: Path) -> dict:
        """Run to `total_steps`. A SIGTERM / SIGINT finishes the current step, saves `checkpoint-<step>` and raises
        `TrainingStopped` (a second signal: KeyboardInterrupt at once), as `StopOnSignal` does for the Trainer."""
        with StopSignals() as stop:  # handlers back as they were however the loop ends
            return self._train(output_dir, stop)

    def _train(self, output_dir: Path, stop) -> dict:
        log_path = run_folder.log_path(output_dir)
        start, first_step = time.monotonic(), self.step
        tokens_seen = 0
        while self.step < self.total_steps:
            buffer = []
            for _ in range(self.ft.ppo_buffer_size):
                if not self.pending:
                    self.pending = self._prompt_batches()
                buffer.append(self.rollout(self.pending.pop(0)))
            stats: list[dict] = []
            for _ in range(self.ft.ppo_epochs):
                for i in torch.randperm(len(buffer), generator=self.generator).tolist():
                    stats.append(self.update(buffer[i]))
            mean_kl = torch.cat([b["kl"] for b in buffer]).mean().item()
            self.kl_ctl.update(mean_kl, self.batch * len(buffer))
            self.step += 1
            tokens_seen += int(sum(b["attention_mask"].sum().item() for b in buffer))
            stopping = stop.requested  # a signal after this line is handled at the end of the next step
            if stopping or self.step % max(int(self.args.logging_steps), 1) == 0 or self.step == self.total_steps:
                elapsed = time.monotonic() - start
                done, left = self.step - first_step, self.total_steps - self.step
                record = {
                    "step": self.step,
                    "total_steps": self.total_steps,
                    "loss": sum(s["loss"] for s in stats) / len(stats),
                    "eval_loss": None,
                    "lr": self.scheduler.get_last_lr()[0],
                    "epoch": round(self.step * self.batch * len(buffer) / max(len(self.prompts), 1), 4),
                    "tokens_seen": tokens_seen,
                    "elapsed": round(elapsed, 2),
                    "remaining": round(elapsed / done * left, 2) if done else None,
                    "percentage": round(100 * self.step / self.total_steps, 2),
                    "mean_reward": torch.cat([b["score"] for b in buffer]).mean().item(),
                    "kl": mean_kl,
                    "kl_coef": self.kl_ctl.value,
                    "response_length": torch.cat([b["response_len"] for b in buffer]).mean().item(),
                    "policy_loss": sum(s["policy_loss"] for s in stats) / len(stats),
                    "value_loss": sum(s["value_loss"] for s in stats) / len(stats),
                    "grad_norm": stats[-1]["grad_norm"],
                }
                with log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                logger.info(
                    "step %d/%d: reward %.3f, kl %.3f", self.step, self.total_steps, record["mean_reward"], mean_kl
                )
            every = int(self.args.save_steps or 0)
            save_step = every and self.step % every == 0 and self.step < self.total_steps
            if save_step or stopping:
                self.save_checkpoint(output_dir)
            if stopping:  # resumable, not finished: no final model, no results file
                raise stopped(self.step)
        return {"global_step": self.step, "train_runtime": round(time.monotonic() - start, 2)}
