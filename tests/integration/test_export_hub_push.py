"""export_hub_model_id: `tuneforge export` pushes the finished export (only the files it wrote) to the hub repo;
offline the push fails in one line, exit 2, and the export stays complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.export.run import run_export
from tuneforge.export.target import MARKER


def test_offline_push_fails_in_one_line_and_keeps_the_export(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "x"
    argv = [f"model_name_or_path={tiny_model_dir}", "template=qwen", f"export_dir={out}", "export_hub_model_id=me/tiny"]
    assert main(["export", *argv]) == 2  # HF_HUB_OFFLINE=1 in the tests
    err = capsys.readouterr().err.strip().splitlines()
    line = next(line for line in err if "pushing it to the hub repo 'me/tiny' failed" in line)
    assert f"the export is complete in {out}" in line and "offline" in line.lower()
    assert (out / MARKER).is_file() and list(out.glob("*.safetensors")) and (out / "config.json").is_file()


def test_push_uploads_the_export_files_with_the_token(tiny_model_dir, tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["create"] = (repo_id, kw)

        def upload_folder(self, **kw):
            calls["upload"] = kw
            return type("Commit", (), {"commit_url": "https://hub/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "x"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # the user's own file beside the export: not pushed
    cfg = load_config(
        None,
        [
            f"model_name_or_path={tiny_model_dir}",
            "template=qwen",
            f"export_dir={out}",
            "export_overwrite=true",
            "export_hub_model_id=me/tiny",
            "hf_hub_token=hf_abc",
        ],
    )
    run_export(cfg)
    assert calls["token"] == "hf_abc"
    assert calls["create"] == ("me/tiny", {"repo_type": "model", "exist_ok": True})
    upload = calls["upload"]
    assert upload["repo_id"] == "me/tiny" and Path(upload["folder_path"]) == out
    patterns = upload["allow_patterns"]
    assert "config.json" in patterns and "model.safetensors" in patterns and "tokenizer.json" in patterns
    assert "notes.txt" not in patterns and MARKER not in patterns


def test_malformed_repo_id_is_refused_before_exporting(tiny_model_dir, tmp_path):
    out = tmp_path / "x"
    cfg = load_config(
        None, [f"model_name_or_path={tiny_model_dir}", f"export_dir={out}", "export_hub_model_id=not a/repo/id"]
    )
    with pytest.raises(UserError, match="is not a hub repo id"):
        run_export(cfg)
    assert not out.exists()
