"""The Web UI without a browser: registered strings, form ⇄ config, dataset filter, preview HTML, estimate."""

from __future__ import annotations

import pytest
import yaml

from tuneforge.errors import UserError
from tuneforge.webui import form, i18n
from tuneforge.webui.render import preview_html


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tuneforge.webui.app import create_app

    demo, ui = create_app(tmp_path_factory.mktemp("saves"), data_dir="data")
    ui.scheduler.stop()
    return ui


def test_every_registered_text_is_in_en_yaml_and_every_choice_has_a_name(app):
    """(That every language file has every key of en.yaml: test_i18n.py.)"""
    en = i18n.strings("en")
    assert {item.key for item in app.texts} <= set(en)
    for item in app.texts:  # a dropdown with choice names in en.yaml names every value it offers
        names = en[item.key].get("choices")
        if item.how == "choices" and names:
            assert {str(v) for v in item.values} <= set(map(str, names)), item.key


def test_language_switch_updates_every_registered_component(app):
    updates = app.translate("zh")
    assert len(updates) == len(app.texts)
    start = next(u for item, u in zip(app.texts, updates, strict=True) if item.key == "start_btn")
    assert start["value"] == "开始"


def test_form_writes_only_what_differs_plus_the_run_keys():
    values = {key: form.to_widget(key, form.default(key)) for key in form.TRAIN_FORM}
    values.update(
        model_name_or_path="models/m",
        dataset=["a", "b"],
        learning_rate="5e-5",
        lora_rank=16.0,
        max_samples="",
        quantization_bit="4",
        output_dir="saves/x",
        freeze_trainable_layers=4.0,
    )
    cfg = form.build_config(values, extra="max_steps: 10")
    assert cfg == {
        "model_name_or_path": "models/m",
        "finetuning_type": "lora",
        "quantization_bit": 4,
        "stage": "sft",
        "dataset": "a,b",
        "learning_rate": 5e-5,
        "lora_rank": 16,
        "output_dir": "saves/x",
        "max_steps": 10,
    }
    back, extra, checkpoint = form.split_config({**cfg, "adapter_name_or_path": "saves/a"})
    assert back["dataset"] == ["a", "b"] and back["quantization_bit"] == "4" and back["lora_rank"] == 16
    assert yaml.safe_load(extra) == {"max_steps": 10} and checkpoint == "saves/a"
    assert form.build_config(back, extra=extra) == cfg


def test_method_fields_count_only_for_their_method():
    values = {
        "model_name_or_path": "m",
        "finetuning_type": "full",
        "stage": "sft",
        "lora_rank": 32,
        "freeze_trainable_layers": 4,
    }
    assert "lora_rank" not in form.build_config(values) and "freeze_trainable_layers" not in form.build_config(values)
    values["finetuning_type"] = "freeze"
    assert form.build_config(values)["freeze_trainable_layers"] == 4
    cfg = form.build_config({**values, "finetuning_type": "full"}, checkpoint="saves/run")
    assert cfg["model_name_or_path"] == "saves/run"  # a full run's weights become the model


def test_lf_switches_optimizers_and_swanlab_from_the_form_make_a_valid_config():
    """The LLaMA-Factory keys the form shows (checkpointing / upcast switches, Muon, SwanLab) reach the config that
    `tuneforge train` validates; SwanLab's own fields count only when SwanLab is on."""
    values = {
        "model_name_or_path": "m",
        "finetuning_type": "full",
        "stage": "sft",
        "dataset": ["identity"],
        "disable_gradient_checkpointing": True,
        "upcast_layernorm": True,
        "use_muon": True,
        "use_swanlab": False,
        "swanlab_project": "typed-but-off",
    }
    cfg = form.build_config(values)
    assert cfg["disable_gradient_checkpointing"] is True and cfg["upcast_layernorm"] and cfg["use_muon"]
    assert "swanlab_project" not in cfg
    form.validate(cfg)
    cfg = form.build_config({**values, "use_swanlab": True, "swanlab_mode": "offline"})
    assert (cfg["use_swanlab"], cfg["swanlab_project"], cfg["swanlab_mode"]) == (True, "typed-but-off", "offline")
    form.validate(cfg)
    assert set(form.SWITCHES + form.OPTIM + form.SWANLAB) <= set(form.TRAIN_FORM)


def test_bad_form_input_is_one_user_error():
    with pytest.raises(UserError, match="not a number"):
        form.from_widget("learning_rate", "fast")
    with pytest.raises(UserError, match="key: value"):
        form.parse_extra("- just a list")
    with pytest.raises(UserError, match="did you mean 'max_steps'"):
        form.validate({"model_name_or_path": "m", "dataset": "identity", "max_step": 3})


def test_datasets_are_filtered_by_stage():
    sft = form.datasets_for_stage("data", "sft")
    dpo = form.datasets_for_stage("data", "dpo")
    kto = form.datasets_for_stage("data", "kto")
    assert "identity" in sft and "identity" not in dpo
    assert dpo and all(name in form.datasets_for_stage("data", "rm") for name in dpo)
    assert kto and not set(kto) & set(sft) and not set(dpo) & set(sft)
    assert form.datasets_for_stage("no/such/dir", "sft") == []


def test_preview_html_marks_trained_tokens_and_escapes_text():
    html = preview_html("── toy · x ──\n<b>user</b> hi\n⟦<i>reply</i>⟧⟪eos⟫tail\ntokens: 5, trained: 2")
    assert '<span class="tf-trained"' in html and "&lt;i&gt;reply&lt;/i&gt;" in html
    assert "<b>user</b>" not in html and "&lt;b&gt;user&lt;/b&gt;" in html
    assert '<span class="tf-shifted"' in html and "<b>── toy · x ──</b>" in html


def test_memory_estimate_counts_parameters_like_torch_and_peft(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tuneforge.webui.estimate import estimate, estimate_text

    est = estimate({"model_name_or_path": str(tiny_model_dir), "finetuning_type": "lora", "lora_rank": 8})
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tied = model.config.tie_word_embeddings
    assert est["params"] == sum(p.numel() for p in model.parameters()) + (model.lm_head.weight.numel() if tied else 0)
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear"))
    assert est["trainable"] == peft_model.get_nb_trainable_parameters()[0]
    full = estimate({"model_name_or_path": str(tiny_model_dir), "finetuning_type": "full"})
    assert full["trainable"] == full["params"] and full["total"] > est["total"]
    assert "GB" in estimate_text({"model_name_or_path": str(tiny_model_dir)}, "en")
    assert estimate({"model_name_or_path": "Qwen/Qwen2.5-7B"}) is None  # a hub id: nothing local to read


def test_chat_only_page_builds(tmp_path):
    from tuneforge.webui.app import create_app

    demo, ui = create_app(tmp_path, chat_only=True)
    ui.scheduler.stop()
    assert "chatbot" in ui.elems and "start_btn" not in ui.elems


def test_model_families_fill_path_and_a_known_template():
    from tuneforge.data.template import TEMPLATE_NAMES
    from tuneforge.webui import families

    assert families.family_names()[0] == families.CUSTOM
    for name, spec in families.families().items():
        assert spec["template"] in TEMPLATE_NAMES, name
        assert spec["path"]
    assert families.lookup("Qwen2.5-7B-Instruct") == {"path": "Qwen/Qwen2.5-7B-Instruct", "template": "qwen"}
    assert families.guess_family("models/Qwen2.5-7B-Instruct") == "Qwen2.5-7B-Instruct"


def test_start_validates_before_queueing_and_refuses_busy_or_finished_folders(tmp_path, monkeypatch, tiny_model_dir):
    import sys

    from tuneforge.jobs import runner
    from tuneforge.webui.context import UIContext
    from tuneforge.webui.jobs_view import queue_run, resume_run
    from tuneforge.webui.paths import PathPolicy

    monkeypatch.setattr(runner, "job_command", lambda job: [sys.executable, "-c", "import time; time.sleep(30)"])
    policy = PathPolicy.build(tmp_path / "saves", "data", models_dirs=[tiny_model_dir.parent])
    ui = UIContext(saves_dir=tmp_path / "saves", data_dir="data", policy=policy)
    cfg = {"model_name_or_path": str(tiny_model_dir), "dataset": "identity", "template": "qwen"}

    bad = tmp_path / "saves" / "bad"
    with pytest.raises(UserError, match="lora_rank"):
        queue_run(ui, "train", {**cfg, "lora_rank": "many", "output_dir": str(bad)}, bad)
    assert not bad.exists() and ui.store.list() == []  # nothing written, nothing queued

    run = tmp_path / "saves" / "run"
    job = queue_run(ui, "train", {**cfg, "output_dir": str(run)}, run)
    try:
        assert job.status == "running" and (run / "config.yaml").is_file()
        with pytest.raises(UserError, match=f"run #{job.id} is already running"):
            queue_run(ui, "train", {**cfg, "output_dir": str(run)}, run)
    finally:
        ui.scheduler.abort(job.id, force=True)
        ui.scheduler.wait(job.id, timeout=30)

    (run / "train_results.json").write_text("{}")  # as a finished run leaves it
    with pytest.raises(UserError, match="finished run"):
        resume_run(ui, str(run))


def test_long_curves_are_thinned_for_the_browser_but_keep_both_ends():
    from tuneforge.webui.render import MAX_POINTS, thin

    points = [(s, 1.0 / s) for s in range(1, 100_001)]
    kept = thin(points)
    assert len(kept) <= MAX_POINTS + 1 and kept[0] == points[0] and kept[-1] == points[-1]
    assert [s for s, _ in kept] == sorted({s for s, _ in kept})
    assert thin(points[:10]) == points[:10]


def test_the_multimodal_box_writes_the_switches_it_changes():
    """LF's multimodal box: unticking "freeze projector" and a smaller image size reach the config; the defaults
    (tower frozen, projector frozen, language model trained) write nothing."""
    values = {"model_name_or_path": "m", "finetuning_type": "lora", "stage": "sft", "dataset": ["shapes_demo"]}
    defaults = {"freeze_vision_tower": True, "freeze_multi_modal_projector": True, "freeze_language_model": False}
    cfg = form.build_config({**values, **defaults, "image_max_pixels": 768 * 768})
    assert not set(form.MULTIMODAL) & set(cfg)
    cfg = form.build_config({**values, **defaults, "freeze_multi_modal_projector": False, "image_max_pixels": 12544})
    assert (cfg["freeze_multi_modal_projector"], cfg["image_max_pixels"]) == (False, 12544)
    form.validate(cfg)
    assert set(form.MULTIMODAL) <= set(form.TRAIN_FORM)
