"""Pick the engine a config asks for: Hugging Face (default), a reward model for stage rm, vLLM / SGLang refused
with one clear error until they are wired in."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.chat.reward import RewardEngine
from tuneforge.errors import UserError
from tuneforge.utils import devices

if TYPE_CHECKING:
    from tuneforge.config.loader import RunConfig

PACKAGES = {"vllm": "vllm", "sglang": "sglang"}


def check_backend(backend: str, has_cuda: bool | None = None) -> None:
    """Raise the one UserError that says why `backend` cannot run here; nothing for huggingface."""
    if backend == "huggingface":
        return
    if backend not in PACKAGES:
        raise UserError(f"unknown infer_backend '{backend}'", where="infer_backend", fix="use huggingface")
    if importlib.util.find_spec(PACKAGES[backend]) is None:
        raise UserError(
            f"infer_backend '{backend}' needs the {PACKAGES[backend]} package, which is not installed",
            where="infer_backend",
            fix=f"pip install {PACKAGES[backend]} on a machine with a CUDA GPU, or use infer_backend: huggingface",
        )
    if has_cuda is None:
        has_cuda = devices.has_cuda()
    if not has_cuda:
        raise UserError(
            f"infer_backend '{backend}' needs a CUDA GPU and none is visible",
            where="infer_backend",
            fix="use infer_backend: huggingface",
        )
    raise UserError(
        f"infer_backend '{backend}' is installed but TuneForge does not drive it yet",
        where="infer_backend",
        fix="use infer_backend: huggingface",
    )


def get_engine(cfg: RunConfig):
    """The engine for chat and the API: a HuggingFaceEngine, or a RewardEngine when `stage: rm`."""
    if cfg.finetuning.stage == "rm":
        return RewardEngine(cfg)
    check_backend(cfg.model.infer_backend)
    return HuggingFaceEngine(cfg)
