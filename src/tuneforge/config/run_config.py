"""The typed configuration of one run (`RunConfig`: the argument groups + the flat keys as given) and the masking of
its secrets. Built by loader.load_config; what every layer above reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from tuneforge.config.data_args import DataArguments
from tuneforge.config.eval_args import EvaluationArguments
from tuneforge.config.finetuning_args import FinetuningArguments
from tuneforge.config.generating_args import GeneratingArguments
from tuneforge.config.model_args import ModelArguments
from tuneforge.config.multimodal_args import MultimodalArguments
from tuneforge.config.platform_args import PlatformArguments
from tuneforge.config.tracking_args import TrackingArguments

SECRET_KEYS = ("hf_hub_token", "hub_token", "api_key", "token", "secret", "webhook_url")
MASK = "***"


def is_secret(key: str) -> bool:
    return any(key.endswith(s) for s in SECRET_KEYS)


def mask_secrets(values: dict[str, Any]) -> dict[str, Any]:
    """A copy with every secret replaced by ***: what saved configs and logs hold. Loading such a config treats
    *** as unset, so the token then comes from HF_TOKEN or the hub login, never from a file."""
    return {key: MASK if value and is_secret(key) else value for key, value in values.items()}


@dataclass
class RunConfig:
    model: ModelArguments
    data: DataArguments
    finetuning: FinetuningArguments
    generation: GeneratingArguments
    training: dict[str, Any]  # validated TrainingArguments keywords, built by train/ when needed
    given: dict[str, Any] = field(default_factory=dict)  # the keys the user set, after overrides
    source: str | None = None
    lines: dict[str, int] = field(default_factory=dict)  # key -> line in the source file
    evaluation: EvaluationArguments = field(default_factory=EvaluationArguments)
    tracking: TrackingArguments = field(default_factory=TrackingArguments)
    multimodal: MultimodalArguments = field(default_factory=MultimodalArguments)
    platform: PlatformArguments = field(default_factory=PlatformArguments)

    def where(self, key: str) -> str:
        """`cfg.yaml:7 (lora_rank)` when the key came from a file, else just the key."""
        if self.source and key in self.lines:
            return f"{self.source}:{self.lines[key]} ({key})"
        return key

    def to_dict(self, masked: bool = True) -> dict[str, Any]:
        """The flat config as given; secrets masked. What run directories keep and the Web UI writes."""
        return mask_secrets(self.given) if masked else dict(self.given)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
