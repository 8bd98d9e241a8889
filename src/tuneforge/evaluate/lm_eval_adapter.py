"""eval_backend: lm_eval — lm-evaluation-harness tasks scored by the model TuneForge loads (base + adapters).

Prompts are lm-eval's own text, without a chat template (lm-eval's default); the template gives the stop tokens.

The adapter implements lm-eval's LM interface: loglikelihood (multiple-choice tasks), loglikelihood_rolling
(perplexity tasks) and generate_until (generative tasks). The harness reads each task's data with `datasets`;
offline that works only for data on disk (a task YAML with `dataset_path: json` + `data_files`, or a dataset
already in the cache). Extra task YAML files are read from task_dir.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.evaluate.model import forward_kwargs, left_pad, load_for_inference
from tuneforge.evaluate.predict import generate
from tuneforge.evaluate.save_dir import check_save_dir, default_save_dir, write_results
from tuneforge.model.adapters import split_names
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

logger = get_logger(__name__)
INSTALL_FIX = "pip install 'tuneforge[lm-eval]' (or pip install lm-eval)"


def make_lm(loaded, batch_size: int, max_length: int):
    """An lm_eval LM over a `Loaded` model (tuneforge.evaluate.model)."""
    # torch and lm_eval (an optional package): imported by the run that uses this backend
    import torch
    from lm_eval.api.model import LM

    class TuneForgeLM(LM):
        def __init__(self):
            super().__init__()
            self.loaded, self.tok = loaded, loaded.tokenizer
            self.names = forward_kwargs(loaded.model)
            self.batch_size, self.max_length = batch_size, max_length
            self.prefix_id = self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id

        def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
            """Context and continuation ids; spaces at the end of the context move to the continuation."""
            spaces = len(context) - len(context.rstrip())
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            whole = self.tok.encode(context + continuation, add_special_tokens=False)
            ctx = self.tok.encode(context, add_special_tokens=False) if context else []
            if whole[: len(ctx)] != ctx:  # the join merged tokens: score the continuation on its own
                whole = ctx + self.tok.encode(continuation, add_special_tokens=False)
            return (ctx or [self.prefix_id]), whole[len(ctx) :]

        def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
            """Sum of log-probabilities of each continuation, and whether greedy decoding would produce it."""
            order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
            out: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    chunk = order[start : start + self.batch_size]
                    rows = [(pairs[i][0] + pairs[i][1])[-(self.max_length + 1) :][:-1] for i in chunk]
                    keep = max(len(pairs[i][1]) for i in chunk)
                    batch = left_pad(rows, self.tok.pad_token_id, loaded.device, self.names)
                    extra = {"logits_to_keep": keep} if "logits_to_keep" in self.names else {}
                    logits = loaded.model(**batch, **extra).logits[:, -keep:, :].float()
                    logprobs = torch.log_softmax(logits, dim=-1)
                    for row, i in enumerate(chunk):
                        cont = pairs[i][1]
                        lp = logprobs[row, keep - len(cont) :, :]
                        target = torch.tensor(cont, device=lp.device)
                        total = lp.gather(-1, target[:, None]).sum().item()
                        out[i] = (total, bool((lp.argmax(-1) == target).all().item()))
            return out

        def loglikelihood(self, requests):
            return self.score([self.encode_pair(*r.args) for r in requests])

        def loglikelihood_rolling(self, requests):
            from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

            results = []
            for r in requests:
                ids = self.tok.encode(r.args[0], add_special_tokens=False)
                windows = [
                    make_disjoint_window(w)
                    for w in get_rolling_token_windows(ids, self.prefix_id, self.max_length, context_len=1)
                ]
                results.append(sum(lp for lp, _ in self.score(windows)))
            return results

        def generate_until(self, requests):
            replies = []
            for r in requests:
                context, kwargs = r.args
                kwargs = dict(kwargs or {})
                until = kwargs.pop("until", None) or []
                until = [until] if isinstance(until, str) else list(until)
                gen = {
                    "max_new_tokens": int(kwargs.pop("max_gen_toks", 256)),
                    "do_sample": bool(kwargs.pop("do_sample", False)),
                    "pad_token_id": self.tok.pad_token_id,
                    "eos_token_id": self.loaded.template.stop_token_ids(self.tok),
                }
                if gen["do_sample"] and "temperature" in kwargs:
                    gen["temperature"] = float(kwargs["temperature"])
                ids = self.tok.encode(context, add_special_tokens=False)[-self.max_length :] or [self.prefix_id]
                text = generate(self.loaded, [ids], gen, 1)[0]
                for stop in until:
                    text = text.split(stop)[0] if stop else text
                replies.append(text)
            return replies

    return TuneForgeLM()


def task_manager(names: list[str], task_dir: str):
    """Only the YAML files in task_dir when they hold every named task (fast); else lm-eval's full index too."""
    from lm_eval.tasks import TaskManager

    if Path(task_dir).is_dir():
        local = TaskManager(include_path=task_dir, include_defaults=False, verbosity="ERROR")
        if all(n in local.all_tasks for n in names):
            return local
    return TaskManager(include_path=task_dir if Path(task_dir).is_dir() else None, verbosity="ERROR")


def load_tasks(names: list[str], task_dir: str, manager) -> None:
    """Resolve the tasks and read their data now, so a task that needs the network fails with one clear line."""
    from lm_eval.tasks import get_task_dict

    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise UserError(
            f"lm-eval has no task {', '.join(repr(u) for u in unknown)}",
            where="task",
            fix=f"name an lm-eval task, or put a task YAML into task_dir ({task_dir})",
        )
    try:
        get_task_dict(names, manager)
    except Exception as exc:  # datasets raises many types offline (ConnectionError, DatasetNotFoundError, ...)
        raise UserError(
            f"lm-eval cannot read the data of task {', '.join(names)} on this machine: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            where="task",
            fix="the data must be local: a task YAML in task_dir with dataset_path: json and data_files, "
            "or the dataset already in the Hugging Face cache",
        ) from exc


def run_lm_eval(cfg: RunConfig, progress=None) -> dict:
    """Run lm-eval tasks (comma-separated `task`) with our model; results.json + a table in save_dir."""
    try:
        import lm_eval
    except ImportError as exc:
        raise UserError(
            "eval_backend lm_eval needs lm-evaluation-harness", where="eval_backend", fix=INSTALL_FIX
        ) from exc
    ev = cfg.evaluation
    names = split_names(ev.task)
    if not names:
        raise UserError("no task given", where="task", fix="name lm-eval tasks, comma separated")
    save_dir = check_save_dir(ev.save_dir or default_save_dir(cfg), cfg.finetuning.overwrite_output_dir)
    manager = task_manager(names, ev.task_dir)
    load_tasks(names, ev.task_dir, manager)
    start = time.monotonic()
    loaded = load_for_inference(cfg)
    max_length = min(cfg.data.cutoff_len, getattr(loaded.model.config, "max_position_embeddings", None) or 10**9)
    seed = int(cfg.training.get("seed", 42))
    out = lm_eval.simple_evaluate(
        model=make_lm(loaded, ev.batch_size, max_length),
        tasks=names,
        num_fewshot=ev.n_shot,
        task_manager=manager,
        log_samples=False,
        bootstrap_iters=0,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    from lm_eval.utils import make_table

    table = make_table(out)
    summary = {
        "backend": "lm_eval",
        "lm_eval_version": getattr(lm_eval, "__version__", None),
        "tasks": names,
        "n_shot": ev.n_shot,
        "results": out["results"],
        "n_samples": out.get("n-samples"),
        "model": cfg.model.model_name_or_path,
        "adapter": cfg.model.adapter_name_or_path,
        "seconds": round(time.monotonic() - start, 2),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False, default=str)
    write_results(save_dir, text, table)
    if progress is not None:
        progress(1, 1)
    return {**json.loads(text), "table": table, "save_dir": str(save_dir)}
