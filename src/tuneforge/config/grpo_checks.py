"""GRPO's cross-field rules, checked before anything loads: the reward functions named, their weights, the sampling
settings (GRPO samples: the beam / greedy / length keys of chat do not apply), and vLLM's requirements.

`cfg` is the RunConfig (not imported: config/stages.py lists these checks, and the RunConfig's groups import the
stage records). The reward functions themselves are built by train/rewards (a user file is imported there, before
the run folder is written); here only their names and count are checked.
"""

from __future__ import annotations

import difflib
import importlib.util
import math

from tuneforge.errors import UserError
from tuneforge.utils.devices import has_cuda

BUILTIN_REWARDS = ("accuracy", "format", "length", "tool_call")
REWARD_MODEL_REWARD = "reward_model"  # the name the reward model's score is logged under
FIX_FUNCS = f"name built-ins ({', '.join(BUILTIN_REWARDS)}) or a user function 'my_rewards.py:score'"

# generation keys that do not apply to GRPO's sampling, and what to use instead
GENERATION_REFUSED = {
    "max_new_tokens": "use max_completion_length",
    "max_length": "use max_prompt_length and max_completion_length",
    "num_beams": "GRPO samples its completions: remove num_beams",
    "length_penalty": "it applies to beam search only: remove it",
}
# generation keys GRPO takes, with TRL's defaults for when the user did not set them (chat's defaults, 0.95 / 0.7,
# would sample off the policy's own distribution)
GRPO_SAMPLING_DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "repetition_penalty": 1.0}


def split_reward_specs(specs) -> list[str]:
    """'accuracy, format' or ['accuracy', 'format'] → ['accuracy', 'format']."""
    if specs is None:
        return []
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    if not all(isinstance(s, str) for s in items):
        raise UserError(f"reward_funcs must be names or 'file.py:function', got {specs!r}", where="reward_funcs")
    return [s.strip() for s in items if s.strip()]


def is_file_spec(spec: str) -> bool:
    """'rewards.py:score' (a file and a function) rather than a built-in's name."""
    path, sep, _ = spec.rpartition(":")
    return bool(sep) and path.endswith(".py")


def unknown_builtin(name: str, where: str = "reward_funcs") -> UserError:
    close = difflib.get_close_matches(name, BUILTIN_REWARDS, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return UserError(
        f"unknown reward function '{name}'",
        where=where,
        fix=f"{hint}built-ins: {', '.join(BUILTIN_REWARDS)}; or a file: 'my_rewards.py:score'",
    )


def reward_names(cfg) -> list[str]:
    """The rewards of a GRPO run in order: reward_funcs, then the reward model's score when reward_model is set."""
    names = split_reward_specs(cfg.finetuning.reward_funcs)
    if cfg.finetuning.reward_model and REWARD_MODEL_REWARD not in names:
        names.append(REWARD_MODEL_REWARD)
    return names


def parse_reward_weights(weights, count: int, where: str = "reward_weights") -> list[float] | None:
    """`reward_weights` ('1, 0.5' or [1, 0.5]) as floats, one per reward; None = all 1.0 (TRL's default)."""
    if weights is None or (isinstance(weights, str) and not weights.strip()):
        return None
    items = [w.strip() for w in weights.split(",")] if isinstance(weights, str) else weights
    if not isinstance(items, list | tuple):
        items = [items]
    out = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(item, bool) or not math.isfinite(value):
            raise UserError(f"reward_weights must be numbers, got {item!r}", where=where)
        out.append(value)
    if len(out) != count:
        raise UserError(
            f"reward_weights has {len(out)} weights for {count} rewards",
            where=where,
            fix="give one weight per entry of reward_funcs (the reward model's last), in the same order",
        )
    return out


def check_grpo(cfg) -> None:
    ft, gen, given = cfg.finetuning, cfg.generation, cfg.given
    names = reward_names(cfg)
    if not names:
        raise UserError("stage grpo needs at least one reward function", where=cfg.where("reward_funcs"), fix=FIX_FUNCS)
    for name in names:
        if name == REWARD_MODEL_REWARD and not ft.reward_model:
            raise UserError(
                "reward_funcs names reward_model, but no reward_model is set",
                where=cfg.where("reward_funcs"),
                fix="set reward_model to the output_dir of a stage: rm run",
            )
        if name != REWARD_MODEL_REWARD and not is_file_spec(name) and name not in BUILTIN_REWARDS:
            raise unknown_builtin(name, cfg.where("reward_funcs"))
    if len(set(names)) < len(names):
        raise UserError("reward_funcs names a reward twice", where=cfg.where("reward_funcs"), fix="name each once")
    parse_reward_weights(ft.reward_weights, len(names), cfg.where("reward_weights"))
    for key, fix in GENERATION_REFUSED.items():
        if key in given:
            raise UserError(f"{key} does not apply to stage grpo", where=cfg.where(key), fix=fix)
    if "do_sample" in given and not gen.do_sample:
        raise UserError("stage grpo samples its completions", where=cfg.where("do_sample"), fix="remove do_sample")
    if "temperature" in given and gen.temperature <= 0:
        raise UserError("stage grpo samples: temperature must be > 0", where=cfg.where("temperature"), fix="use 1.0")
    if ft.epsilon_high is not None and ft.epsilon_high < ft.epsilon:
        raise UserError(
            f"epsilon_high ({ft.epsilon_high}) is below epsilon ({ft.epsilon})",
            where=cfg.where("epsilon_high"),
            fix="clip-higher widens the upper bound: use e.g. 0.28 with epsilon 0.2, or remove it",
        )
    for key in ("length_reward_target", "length_reward_unit"):
        if key in given and "length" not in names:
            raise UserError(f"{key} sets the length reward", where=cfg.where(key), fix="add length to reward_funcs")
    if ft.use_vllm:
        _check_vllm(cfg)
    elif "vllm_mode" in given:
        raise UserError("vllm_mode applies with use_vllm: true", where=cfg.where("vllm_mode"), fix="set use_vllm")


def _check_vllm(cfg) -> None:
    if importlib.util.find_spec("vllm") is None:
        raise UserError(
            "use_vllm needs the vllm package (pip install vllm, on a machine with a CUDA GPU)",
            where=cfg.where("use_vllm"),
            fix="install vllm, or remove use_vllm: the rollouts are generated by the model itself",
        )
    if not has_cuda():
        raise UserError(
            "use_vllm needs a CUDA GPU",
            where=cfg.where("use_vllm"),
            fix="remove use_vllm: the rollouts are generated by the model itself",
        )
