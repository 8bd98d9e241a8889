"""One record per training stage: everything the layers need to know about a stage, described once.

Validation (config/validate.py), data loading (data/stage_sets.py, data/loader.py), the memory estimate
(model/estimate.py), the training arguments (train/arguments.py, train/effective_tokens.py), the recipe dispatch
(train/run.py) and the Web UI (webui/form.py, webui/tabs/train.py) read these records; no other module lists stage
names (tests/unit/test_stage_record.py walks the source to keep it so). Adding a stage is: its recipe
`train/<name>.py`, its record below, its i18n strings (`stage.choices.<name>` in webui/i18n/*.yaml), its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tuneforge.config.grpo_checks import check_grpo

# What a stage's datasets hold, and so how data/stage_sets.py encodes them:
# text: plain documents (packed) · supervised: conversations with answers · pairwise: chosen + rejected answers
# (ranking: true) · unpaired: single answers marked desirable or not (a kto_tag column) · prompts: prompts only
DataKind = Literal["text", "supervised", "pairwise", "unpaired", "prompts"]

REFERENCE_KEYS = ("ref_model", "ref_model_adapters", "ref_model_quantization_bit")
REWARD_MODEL_KEYS = ("reward_model", "reward_model_type", "reward_model_adapters", "reward_model_quantization_bit")


@dataclass(frozen=True)
class StageRecord:
    name: str
    data: DataKind
    # settings only this stage uses (a key in several records belongs to each of them); given to another stage,
    # they are refused. The reference-model keys follow `reference` instead.
    keys: tuple[str, ...] = ()
    # the frozen reference model: True = always loaded; False = never; a key name = when that setting is on
    # (truthy, e.g. beta > 0). Without ref_model an adapter run uses the policy's own base, a full run a copy.
    reference: bool | str = False
    needs_reward_model: bool = False  # a reward model must be given (REWARD_MODEL_KEYS among `keys`: it may be)
    # memory estimate: rows the model runs per sample (2: chosen + rejected, or KTO's mismatched KL row), the
    # logits a preference loss keeps (log-probs of policy and reference), TRL's trainer overhead
    rows_per_sample: int = 1
    preference_logits: bool = False
    trl_overhead: bool = False
    # memory estimate of a stage that generates its rows: the keys whose lengths add up to a row's (prompt + completion)
    row_length_keys: tuple[str, ...] = ()
    # batching: the default length-grouped sampler (train/arguments.py groups_by_length); packing: packing keys
    group_by_length: bool = False
    packing: bool = False
    # (column, times it is fed to the model) per row: the tokens that effective tokens/s counts; () = not counted
    token_columns: tuple[tuple[str, int], ...] = ()
    # per-row columns the data kind "prompts" keeps beside input_ids, for the stage's rewards (None where absent)
    row_columns: tuple[str, ...] = ()
    # rows may show images (a vision-language model; data/stage_sets.py with_vision): the encoders keep their image
    # references, the collator adds the pixels
    vision: bool = False
    ui_fields: tuple[str, ...] = ()  # the Web UI's stage box: exactly these fields, in this order
    # our own training loop, no HF Trainer: no Trainer callbacks (trackers, early stopping, profiler), no optimizer
    # plug-ins; those keys are refused (config/trainer_keys.py, config/tracking_checks.py)
    own_loop: bool = False
    # the stage's own cross-field rules, called by config/validate.py check_stage with the RunConfig
    checks: tuple[Callable, ...] = ()

    @property
    def recipe(self) -> str:
        """The recipe module that trains this stage (train/run.py imports it by name)."""
        return f"tuneforge.train.{self.name}"

    @property
    def label_key(self) -> str:
        """Where its display name lives in webui/i18n/<lang>.yaml: the `stage` key's choices."""
        return f"stage.choices.{self.name}"

    def uses_reference(self, ft) -> bool:
        """Whether a run of this stage with these settings (`ft`: the FinetuningArguments, which import this module)
        has a reference model."""
        if isinstance(self.reference, str):
            return bool(getattr(ft, self.reference))
        return self.reference


_PREFERENCE = dict(rows_per_sample=2, trl_overhead=True)
DPO_KEYS = ("pref_beta", "pref_loss", "pref_ftx", "simpo_gamma", "dpo_label_smoothing", "pref_bco_weight", "ld_alpha")
GRPO_KEYS = (
    "num_generations",
    "max_prompt_length",
    "max_completion_length",
    "num_iterations",
    "beta",
    "epsilon",
    "epsilon_high",
    "loss_type",
    "importance_sampling_level",
    "scale_rewards",
    "mask_truncated_completions",
    "reward_funcs",
    "reward_weights",
    "length_reward_target",
    "length_reward_unit",
    "use_vllm",
    "vllm_mode",
)
PPO_KEYS = ("ppo_buffer_size", "ppo_epochs", "ppo_score_norm", "ppo_target", "ppo_whiten_rewards")

RECORDS: tuple[StageRecord, ...] = (  # the order the Web UI offers them in
    StageRecord("pt", "text", packing=True, token_columns=(("input_ids", 1),)),
    StageRecord(
        "sft",
        "supervised",
        reference="use_asft_loss",  # ASFT's anchor
        group_by_length=True,
        packing=True,
        vision=True,
        token_columns=(("input_ids", 1),),
    ),
    StageRecord(
        "rm",
        "pairwise",
        **_PREFERENCE,
        group_by_length=True,
        token_columns=(("chosen_ids", 1), ("rejected_ids", 1)),  # the prompt is already inside both
    ),
    StageRecord(
        "ppo",
        "prompts",
        keys=REWARD_MODEL_KEYS + PPO_KEYS,
        reference=True,
        needs_reward_model=True,
        trl_overhead=True,
        own_loop=True,
    ),
    StageRecord(
        "dpo",
        "pairwise",
        keys=DPO_KEYS,
        reference=True,
        **_PREFERENCE,
        preference_logits=True,
        group_by_length=True,
        vision=True,
        token_columns=(("prompt_ids", 2), ("chosen_ids", 1), ("rejected_ids", 1)),
        ui_fields=("pref_beta", "pref_ftx", "pref_loss"),
    ),
    StageRecord(
        "kto",
        "unpaired",
        keys=("pref_beta", "kto_chosen_weight", "kto_rejected_weight"),
        reference=True,
        **_PREFERENCE,  # each completion with its mismatched KL row
        preference_logits=True,
        token_columns=(("prompt_ids", 1), ("completion_ids", 1)),
        ui_fields=("pref_beta",),
    ),
    StageRecord(
        "grpo",
        "prompts",
        keys=GRPO_KEYS + REWARD_MODEL_KEYS,  # a reward model may be given (one more reward), not needed
        reference="beta",  # a reference model only when beta > 0
        trl_overhead=True,
        row_length_keys=("max_prompt_length", "max_completion_length"),
        row_columns=("answer", "tools"),  # what the built-in rewards read, beside the prompt
        token_columns=(("input_ids", 1),),  # the prompts; completions are counted by TRL (num_tokens)
        ui_fields=(
            "reward_funcs",
            "num_generations",
            "max_completion_length",
            "loss_type",
            "importance_sampling_level",
            "beta",
            "epsilon_high",
            "num_iterations",
        ),
        checks=(check_grpo,),
    ),
)
STAGES: dict[str, StageRecord] = {record.name: record for record in RECORDS}
STAGE_NAMES: tuple[str, ...] = tuple(STAGES)


def stage_record(name: str) -> StageRecord:
    """The record of a stage; KeyError for a name that is none (config/validate.py check_stage refuses those)."""
    return STAGES[name]


def stages_where(test) -> list[str]:
    """Names of the stages whose record passes `test`, sorted (for messages)."""
    return sorted(record.name for record in RECORDS if test(record))


def stage_keys() -> dict[str, list[str]]:
    """key -> the stages that own it, for every stage-owned key."""
    out: dict[str, list[str]] = {}
    for record in RECORDS:
        for key in record.keys:
            out.setdefault(key, []).append(record.name)
    return out


def ui_stage_fields() -> list[str]:
    """Every field any stage's box shows, once, in record order: the Web UI builds them all and shows a stage's."""
    return list(dict.fromkeys(key for record in RECORDS for key in record.ui_fields))
