"""Models from the ModelScope hub, LLaMA-Factory's way: with USE_MODELSCOPE_HUB=1 a model_name_or_path that is not
a local folder is a ModelScope model id, fetched with modelscope's snapshot_download (into cache_dir, else
MODELSCOPE_CACHE or ~/.cache/modelscope; ms_hub_token for private models) and replaced by its local folder. With
HF_HUB_OFFLINE=1 (TuneForge's offline switch) only that cache is read, as modelscope's local_files_only does."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.config.hub_checks import env_enabled, use_modelscope
from tuneforge.errors import UserError
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.model_args import ModelArguments

logger = get_logger(__name__)


def resolve_model_source(args: ModelArguments) -> None:
    """model_name_or_path becomes the local folder of its ModelScope snapshot (USE_MODELSCOPE_HUB=1 only)."""
    name = args.model_name_or_path
    if not name or not use_modelscope() or Path(name).expanduser().exists():
        return
    args.model_name_or_path = modelscope_snapshot(name, args)


def modelscope_snapshot(model_id: str, args: ModelArguments) -> str:
    where = f"model_name_or_path ({model_id})"
    if importlib.util.find_spec("modelscope") is None:
        raise UserError(
            "USE_MODELSCOPE_HUB=1 needs the modelscope package, which is not installed",
            where=where,
            fix="pip install modelscope, or unset USE_MODELSCOPE_HUB to use a local folder or the Hugging Face Hub",
        )
    from modelscope import snapshot_download  # late: modelscope imports its hub client (a second)

    revision = "master" if args.model_revision == "main" else args.model_revision  # ModelScope's default branch
    offline = env_enabled("HF_HUB_OFFLINE")
    try:
        path = snapshot_download(
            model_id, revision=revision, cache_dir=args.cache_dir, token=args.ms_hub_token, local_files_only=offline
        )
    except (OSError, ValueError, RuntimeError, _hub_error()) as exc:  # not cached, unreachable, no such model
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if offline:
            reason += " (HF_HUB_OFFLINE=1: only the local ModelScope cache is read)"
        raise UserError(
            f"cannot get ModelScope model '{model_id}' at revision '{revision}': {reason}",
            where=where,
            fix="check the model id and cache_dir (or MODELSCOPE_CACHE); download it once online, or set"
            " model_name_or_path to a local folder",
        ) from exc
    logger.info("ModelScope model %s: %s", model_id, path)
    return str(path)


def _hub_error() -> type[Exception]:
    try:
        from modelscope_hub.errors import HubError  # modelscope >= 1.38: every hub failure (cache, network, API)
    except ImportError:
        return OSError
    return HubError
