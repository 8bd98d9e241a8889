"""USE_MODELSCOPE_HUB=1 (LLaMA-Factory's switch): a model id that is not a local folder comes from ModelScope through
modelscope's snapshot_download; offline (HF_HUB_OFFLINE=1, as in the tests) from its local cache, laid out here as
modelscope writes it. ms_hub_token reaches the download."""

from __future__ import annotations

import shutil

import pytest
import torch

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.model.loader import load_model, load_tokenizer

pytest.importorskip("modelscope")  # the test environment installs it (requirements/lock.txt)


@pytest.fixture
def modelscope_cache(tiny_model_dir, tmp_path, monkeypatch):
    """A ModelScope cache holding the tiny model as `tf/tiny-qwen`, in modelscope-hub's layout
    (<cache>/models/<owner>--<name>/snapshots/<revision>/)."""
    cache = tmp_path / "mscache"
    shutil.copytree(tiny_model_dir, cache / "models" / "tf--tiny-qwen" / "snapshots" / "master")
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    return cache


def test_model_id_loads_from_the_modelscope_cache(tiny_model_dir, modelscope_cache):
    cfg = load_config(None, ["model_name_or_path=tf/tiny-qwen", f"cache_dir={modelscope_cache}"])
    model = load_model(cfg.model, torch.float32, for_training=False)
    snapshot = modelscope_cache / "models" / "tf--tiny-qwen" / "snapshots" / "master"
    assert cfg.model.model_name_or_path == str(snapshot)  # resolved once, as LF does
    reference = load_model(load_config(None, [f"model_name_or_path={tiny_model_dir}"]).model, torch.float32)
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert len(load_tokenizer(cfg.model)) == len(load_tokenizer(reference_args(tiny_model_dir)))


def reference_args(folder):
    return load_config(None, [f"model_name_or_path={folder}"]).model


def test_legacy_cache_layout_is_found_too(tiny_model_dir, tmp_path, monkeypatch):
    """modelscope < 1.38 wrote <cache>/models/<owner>/<name, dots as ___>/; snapshot_download still reads it."""
    cache = tmp_path / "old"
    shutil.copytree(tiny_model_dir, cache / "models" / "tf" / "tiny___qwen-0___5B")
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    cfg = load_config(None, ["model_name_or_path=tf/tiny.qwen-0.5B", f"cache_dir={cache}"])
    load_tokenizer(cfg.model)
    assert cfg.model.model_name_or_path == str(cache / "models" / "tf" / "tiny___qwen-0___5B")


def test_uncached_model_offline_is_one_line(modelscope_cache, tmp_path, capsys):
    argv = ["train", "model_name_or_path=tf/absent", f"cache_dir={modelscope_cache}", "dataset=identity"]
    assert main([*argv, f"output_dir={tmp_path / 'out'}"]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert "cannot get ModelScope model 'tf/absent' at revision 'master'" in line
    assert "HF_HUB_OFFLINE=1: only the local ModelScope cache is read" in line


def test_ms_hub_token_and_revision_reach_snapshot_download(tmp_path, monkeypatch, tiny_model_dir):
    import modelscope

    calls = []

    def fake_snapshot_download(model_id, **kw):
        calls.append((model_id, kw))
        return str(tiny_model_dir)

    monkeypatch.setattr(modelscope, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online: modelscope may download
    cfg = load_config(None, ["model_name_or_path=tf/private", "ms_hub_token=ms-secret", "model_revision=v1.0"])
    load_tokenizer(cfg.model)
    assert calls == [
        ("tf/private", {"revision": "v1.0", "cache_dir": None, "token": "ms-secret", "local_files_only": False})
    ]
    assert cfg.model.model_name_or_path == str(tiny_model_dir)
    assert "ms-secret" not in cfg.to_yaml()  # masked in saved configs


def test_ms_hub_token_without_modelscope_is_refused(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("USE_MODELSCOPE_HUB", raising=False)
    with pytest.raises(UserError, match="ms_hub_token is used only for ModelScope models"):
        load_config(None, [f"model_name_or_path={tiny_model_dir}", "ms_hub_token=x"])


def test_local_folder_wins_over_modelscope(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    cfg = load_config(None, [f"model_name_or_path={tiny_model_dir}"])
    load_tokenizer(cfg.model)
    assert cfg.model.model_name_or_path == str(tiny_model_dir)


def test_unreachable_modelscope_is_one_line(monkeypatch):
    import modelscope
    from modelscope_hub.errors import NetworkError

    def unreachable(model_id, **kw):
        raise NetworkError("[E1020] Connection failed: Failed to resolve 'modelscope.cn'")

    monkeypatch.setattr(modelscope, "snapshot_download", unreachable)
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    cfg = load_config(None, ["model_name_or_path=tf/tiny-qwen"])
    with pytest.raises(UserError, match="cannot get ModelScope model 'tf/tiny-qwen' at revision 'master': .*E1020"):
        load_tokenizer(cfg.model)
