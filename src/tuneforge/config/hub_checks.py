"""The hub switches LLaMA-Factory reads from the environment (USE_MODELSCOPE_HUB) and the keys that need them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

TRUE_WORDS = ("1", "true", "y", "yes")  # LF's is_env_enabled


def env_enabled(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in TRUE_WORDS


def use_modelscope() -> bool:
    return env_enabled("USE_MODELSCOPE_HUB")


def check_hub_keys(cfg: RunConfig) -> None:
    if cfg.model.ms_hub_token and "ms_hub_token" in cfg.given and not use_modelscope():
        raise UserError(
            "ms_hub_token is used only for ModelScope models, and USE_MODELSCOPE_HUB is not set",
            where=cfg.where("ms_hub_token"),
            fix="run with USE_MODELSCOPE_HUB=1 to load model_name_or_path from ModelScope, or remove ms_hub_token",
        )
