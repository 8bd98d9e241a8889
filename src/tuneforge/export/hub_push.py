"""export_hub_model_id: push a finished export to a Hugging Face Hub model repo, as LLaMA-Factory's export does
(the repo is created when missing; the token is hf_hub_token, else HF_TOKEN or the `hf auth login` one). Only the
files this export wrote go up, not the user's own files beside them. The push comes after the export is complete:
when it fails (offline, no token, no rights) the export stays where it is and the error says how to push it later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.errors import UserError
from tuneforge.export.target import MARKER
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig

logger = get_logger(__name__)


def check_hub_repo_id(cfg: RunConfig) -> None:
    """A malformed repo id is refused before the export starts."""
    from huggingface_hub.errors import HFValidationError  # late: huggingface_hub loads in a second
    from huggingface_hub.utils import validate_repo_id

    repo = cfg.model.export_hub_model_id
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise UserError(
            f"export_hub_model_id '{repo}' is not a hub repo id: {str(exc).splitlines()[0]}",
            where=cfg.where("export_hub_model_id"),
            fix="write it as user-or-org/model-name",
        ) from exc


def exported_patterns(path: Path) -> list[str]:
    """upload_folder patterns for what the export wrote (its marker lists them), folders with their contents."""
    names = json.loads((path / MARKER).read_text(encoding="utf-8"))["files"]
    return [f"{name}/**" if (path / name).is_dir() else name for name in names]


def push_export(path: Path, cfg: RunConfig) -> str:
    """Upload the export in `path` to export_hub_model_id; returns the commit URL."""
    from huggingface_hub import HfApi

    repo = cfg.model.export_hub_model_id
    api = HfApi(token=cfg.model.hf_hub_token)
    try:
        api.create_repo(repo, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo,
            folder_path=path,
            repo_type="model",
            allow_patterns=exported_patterns(path),
            commit_message="Upload model exported with TuneForge",
        )
    except (OSError, ValueError) as exc:  # OSError: offline, HTTP (401, 403, 404); ValueError: no token
        raise UserError(
            f"the export is complete in {path}, but pushing it to the hub repo '{repo}' failed:"
            f" {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            where=cfg.where("export_hub_model_id"),
            fix=f"once online and logged in (hf auth login, or hf_hub_token), run: hf upload {repo} {path}",
        ) from exc
    logger.info("pushed the export to the hub: %s", commit.commit_url)
    return commit.commit_url
