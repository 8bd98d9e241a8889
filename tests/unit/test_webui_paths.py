"""The Web UI touches only its folders: every path the page sends is resolved and checked (webui/paths.py) before
anything is read, written or queued. First the policy alone, then through the real page handlers (no browser)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from tuneforge.errors import UserError
from tuneforge.webui.paths import (
    FILE_OR_INLINE_KEYS,
    MODEL_KEYS,
    MODEL_LIST_KEYS,
    READ_KEYS,
    SUBFOLDER_KEYS,
    WRITE_KEYS,
    PathPolicy,
    confine_config,
    looks_like_hub_id,
)


@pytest.fixture
def site(tmp_path):
    """A server's working dir with saves/, data/, models/m, and a folder beside it that the page must not touch."""
    work = tmp_path / "work"
    for sub in ("saves", "data", "models/m"):
        (work / sub).mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (saves_link := work / "saves" / "link").symlink_to(outside, target_is_directory=True)
    policy = PathPolicy.build("saves", "data", models_dirs=["models"], base=work)
    return policy, work, outside, saves_link


def refused(call, field: str) -> UserError:
    with pytest.raises(UserError) as info:
        call()
    err = info.value
    assert err.where == field and "\n" not in err.one_line() and "--allow-dir" in err.one_line()
    assert err.one_line().startswith(f"{field}: ")
    return err


def test_writes_outside_saves_are_refused_however_spelled(site):
    policy, work, outside, link = site
    for value in (outside / "run", "saves/../../outside/run", "../outside", str(link / "run"), "saves/link", "data/x"):
        err = refused(lambda v=value: policy.confine_write(v, "output_dir"), "output_dir")
        assert "outside the folders this Web UI may write (saves)" in err.message
    assert policy.confine_write("saves/a/b", "output_dir") == work / "saves" / "a" / "b"
    assert policy.confine_write(work / "saves", "output_dir") == work / "saves"
    assert policy.confine_write("saves/new/../run", "output_dir") == work / "saves" / "run"
    assert policy.confine_write("", "output_dir") is None and policy.confine_write(None, "output_dir") is None
    refused(lambda: policy.confine_write("~/run", "output_dir"), "output_dir")  # home, whatever it means


def test_reads_reach_data_models_and_saves_only(site):
    policy, work, outside, link = site
    for value in ("data", "data/x.json", "models/m", "saves/run", str(work / "models")):
        assert policy.confine_read(value, "dataset_dir") is not None
    for value in (outside, "models/../../outside", str(link), "/etc/passwd", "evaluation/../../outside"):
        err = refused(lambda v=value: policy.confine_read(v, "dataset_dir"), "dataset_dir")
        assert "may read (saves, data, models, evaluation)" in err.message


def test_hub_ids_pass_for_models_but_a_local_folder_outside_does_not(site):
    policy, work, outside, _ = site
    for hub in ("Qwen/Qwen2.5-7B-Instruct", "gpt2", "org/name.v1-x_y"):
        assert looks_like_hub_id(hub)
        assert policy.confine_read(hub, "model_name_or_path", hub_ok=True) is None  # not a file: left to the hub
        refused(lambda h=hub: policy.confine_read(h, "dataset_dir"), "dataset_dir")  # a folder key has no hub
        refused(lambda h=hub: policy.confine_write(h, "output_dir"), "output_dir")
    for not_hub in ("/abs/x", "./x", "~/x", "../x", "a/b/c", "org/..", ".hidden/x"):
        assert not looks_like_hub_id(not_hub)
        refused(lambda v=not_hub: policy.confine_read(v, "model_name_or_path", hub_ok=True), "model_name_or_path")
    (work / "org" / "name").mkdir(parents=True)  # a local folder that looks like a hub id, outside the roots
    err = refused(lambda: policy.confine_read("org/name", "model_name_or_path", hub_ok=True), "model_name_or_path")
    assert "hub id" in err.fix


def test_allow_dir_widens_reads_and_writes(site):
    policy, work, outside, link = site
    wide = PathPolicy.build("saves", "data", allow_dirs=[outside], base=work)
    assert wide.confine_write(outside / "run", "output_dir") == outside / "run"
    assert wide.confine_write(link / "run", "output_dir") == outside / "run"
    assert wide.confine_read(outside, "dataset_dir") == outside
    refused(lambda: wide.confine_write(work / "elsewhere", "output_dir"), "output_dir")


def test_confine_config_checks_every_path_key_of_the_schema(site):
    policy, work, outside, _ = site
    bad = str(outside / "x")
    for key in WRITE_KEYS + READ_KEYS + MODEL_KEYS + MODEL_LIST_KEYS + FILE_OR_INLINE_KEYS:
        refused(lambda k=key: confine_config({"model_name_or_path": "models/m", k: bad}, policy), key)
    ok = {
        "model_name_or_path": "models/m",
        "adapter_name_or_path": "saves/a, saves/b",
        "ref_model": "Qwen/Qwen2.5-0.5B",
        "dataset_dir": "data",
        "output_dir": "saves/run",
        "resume_from_checkpoint": True,  # the latest checkpoint of output_dir, no path
        "deepspeed": {"zero_optimization": {"stage": 2}},  # inline settings, no file
        "task": "sample_test",
    }
    confine_config(ok, policy)
    refused(lambda: confine_config({**ok, "adapter_name_or_path": f"saves/a,{bad}"}, policy), "adapter_name_or_path")
    refused(lambda: confine_config({**ok, "training": {"output_dir": bad}}, policy), "output_dir")  # nested group
    refused(lambda: confine_config({**ok, "model.model_name_or_path": bad}, policy), "model_name_or_path")
    refused(lambda: confine_config({**ok, "task": "../../outside"}, policy), "task")
    refused(lambda: confine_config({**ok, "deepspeed": bad}, policy), "deepspeed")
    refused(lambda: confine_config({**ok, "output_dir": 123}, policy), "output_dir")  # YAML may give a number


def test_schema_path_keys_are_all_covered():
    """A new path-valued key in the schema must be sorted into read or write (its help names a folder or file)."""
    import dataclasses

    from tuneforge.config.loader import GROUPS

    covered = set(WRITE_KEYS + READ_KEYS + MODEL_KEYS + MODEL_LIST_KEYS + FILE_OR_INLINE_KEYS + SUBFOLDER_KEYS) | {
        "task"
    }
    words = ("folder", "path", "where ", " file", "directory", "calibration data", "reference model", "reward model")
    pathlike = set()
    for cls in GROUPS.values():
        for f in dataclasses.fields(cls):
            helptext = f.metadata.get("help", "").lower()
            if "str" in str(f.type) and "choices" not in f.metadata and any(w in helptext for w in words):
                pathlike.add(f.name)
    not_paths = {"freeze_trainable_modules", "lora_target", "additional_target", "template", "galore_target"}
    assert pathlike - not_paths <= covered, sorted(pathlike - not_paths - covered)


# ---- through the page's own handlers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(tmp_path_factory, tiny_model_dir):
    """The page built by `tuneforge webui` (its flags reach the policy), with saves/ and data/ in its working dir."""
    from tuneforge import cli
    from tuneforge.webui import app

    root = tmp_path_factory.mktemp("site")
    work, outside = root / "work", root / "outside"
    (work / "data").mkdir(parents=True)
    outside.mkdir()
    rows = [{"instruction": "hi", "input": "", "output": "hello"}] * 4
    for folder in (work / "data", outside):
        (folder / "toy.json").write_text(json.dumps(rows), encoding="utf-8")
        (folder / "dataset_info.json").write_text(json.dumps({"toy": {"file_name": "toy.json"}}), encoding="utf-8")
    (outside / "args.yaml").write_text("model_name_or_path: secret-model\nlora_rank: 64\n", encoding="utf-8")
    (outside / "model").mkdir()
    (outside / "model" / "config.json").write_text("{}", encoding="utf-8")
    built = {}

    def fake_launch(host, port, auth, share, **kwargs):
        built["demo"], built["ui"] = app.create_app(**kwargs)
        built["ui"].scheduler.stop()

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setattr(app, "launch", fake_launch)
        argv = ["webui", "--saves-dir", str(work / "saves"), "--data-dir", "data"]
        assert cli.main([*argv, "--models-dir", str(tiny_model_dir.parent), "--allow-dir", str(root / "extra")]) == 0
    ui = built["ui"]
    assert ui.policy.write_roots == (work / "saves", root / "extra")
    assert set(ui.policy.read_roots) >= {work / "data", tiny_model_dir.parent, root / "extra", work / "saves"}
    assert ui.policy.base == work
    return built["demo"], ui, work, outside


def handler(demo, ui, key: str, event: str = "click"):
    """(the function wired to elems[key].<event>, its inputs' current values by elem key)."""
    comp = ui.elems[key]
    for fn in demo.fns.values():
        if (comp._id, event) in [tuple(t) for t in fn.targets]:
            names = {id(c): k for k, c in ui.elems.items()}
            return fn.fn, [(names.get(id(c)), c) for c in fn.inputs]
    raise AssertionError(f"nothing wired to {key}.{event}")


def call(page_, key: str, event: str = "click", **values):
    demo, ui = page_[0], page_[1]
    fn, inputs = handler(demo, ui, key, event)
    args = [values.get(name, comp.value) for name, comp in inputs]
    assert set(values) <= {name for name, _ in inputs}, set(values) - {name for name, _ in inputs}
    return fn(*args)


def files_under(folder) -> list:
    from tuneforge.jobs.store import DB_FILE

    return sorted(p for p in folder.rglob("*") if not p.name.startswith(DB_FILE))


@pytest.fixture(autouse=True)
def _in_server_dir(request, monkeypatch):
    """Handler tests run in the page's working dir, as the server does (relative paths mean the same)."""
    if "page" not in request.fixturenames:
        yield
        return
    from tuneforge.jobs import runner

    monkeypatch.chdir(request.getfixturevalue("page")[2])
    # a run that is queued by mistake must not train: it sleeps, and is stopped at the end of the test
    monkeypatch.setattr(runner, "job_command", lambda job: [sys.executable, "-c", "import time; time.sleep(30)"])
    yield
    ui = request.getfixturevalue("page")[1]
    for job in ui.store.list(("queued", "running")):
        ui.scheduler.abort(job.id, force=True)
        ui.scheduler.wait(job.id, timeout=30)


TRAIN = {"dataset": ["toy"], "template": "qwen"}


def test_start_refuses_outside_paths_and_writes_nothing(page, tiny_model_dir):
    demo, ui, work, outside = page
    model = str(tiny_model_dir)
    before_out, before_saves = files_under(outside), files_under(work / "saves")
    link = work / "saves" / "to_outside"
    link.symlink_to(outside, target_is_directory=True)
    cases = [
        ({"output_dir": str(outside / "run")}, "output_dir"),
        ({"output_dir": "saves/../../outside/run"}, "output_dir"),
        ({"output_dir": str(link / "run")}, "output_dir"),
        ({"dataset_dir": str(outside)}, "dataset_dir"),
        ({"model_name_or_path": str(outside / "model")}, "model_name_or_path"),
        ({"checkpoint_path": str(outside / "model")}, "adapter_name_or_path"),
        ({"extra_args": f"deepspeed: {outside}/ds.json"}, "deepspeed"),
        ({"extra_args": f"training:\n  output_dir: {outside}/run"}, "output_dir"),
        ({"extra_args": f"tokenized_path: {outside}/tok"}, "tokenized_path"),
    ]
    for override, field in cases:
        values = {"model_name_or_path": model, **TRAIN, **override}
        for key in ("start_btn", "cmd_btn", "preview_btn"):
            out = call(page, key, **values)
            status = next((o for o in out if isinstance(o, str) and o.startswith("⚠")), str(out))
            assert status.startswith(f"⚠ {field}: ") and "outside the folders" in status, (key, status)
    link.unlink()
    assert ui.store.list() == []  # nothing queued
    assert files_under(outside) == before_out and files_under(work / "saves") == before_saves  # nothing written


def test_start_inside_the_saves_dir_queues_the_run(page, tiny_model_dir):
    demo, ui, work, outside = page
    run = work / "saves" / "inside"
    _, status, *_ = call(page, "start_btn", model_name_or_path=str(tiny_model_dir), output_dir=str(run), **TRAIN)
    (job,) = ui.store.list()
    try:
        assert "#" in status and yaml.safe_load((run / "config.yaml").read_text())["dataset"] == "toy"
    finally:
        ui.scheduler.abort(job.id, force=True)
        ui.scheduler.wait(job.id, timeout=30)
    # the Runs tab may resume it (under saves) but not a folder outside
    status, _ = call(page, "resume_btn", run_selected=str(outside))
    assert status.startswith("⚠ run: ") and "may write" in status and len(ui.store.list()) == 1
    *_, status, _tabs = call(page, "clone_btn", run_selected=str(outside))
    assert status.startswith("⚠ run: ") and "may read" in status


def test_export_and_evaluate_refuse_outside_folders(page, tiny_model_dir):
    demo, ui, work, outside = page
    jobs = len(ui.store.list())
    job, _, log = call(page, "export_btn", model_name_or_path=str(tiny_model_dir), export_dir=str(outside / "exp"))
    assert job is None and log.startswith("⚠ export_dir: ")
    quant = {"export_dir": str(work / "saves" / "exp"), "export_quantization_dataset": str(outside / "toy.json")}
    job, _, log = call(page, "export_btn", model_name_or_path=str(tiny_model_dir), **quant)
    assert job is None and log.startswith("⚠ export_quantization_dataset: ")
    job, _, log = call(page, "eval_btn", model_name_or_path=str(tiny_model_dir), task="sample", save_dir=str(outside))
    assert job is None and log.startswith("⚠ save_dir: ")
    job, _, log = call(page, "eval_btn", model_name_or_path=str(tiny_model_dir), task_dir=str(outside), task="x")
    assert job is None and log.startswith("⚠ task_dir: ")
    assert len(ui.store.list()) == jobs and not (outside / "exp").exists() and not (work / "saves" / "exp").exists()


def test_save_and_load_arguments_stay_in_their_folders(page, tiny_model_dir):
    demo, ui, work, outside = page
    target = outside / "saved" / "args.yaml"
    status = call(page, "save_btn", args_file=str(target), model_name_or_path=str(tiny_model_dir), **TRAIN)
    assert status.startswith("⚠ args_file: ") and "may write" in status and not (outside / "saved").exists()
    status = call(page, "save_btn", args_file=str(work / "saves" / "a.txt"), model_name_or_path="m", **TRAIN)
    assert status.startswith("⚠ args_file: ") and not (work / "saves" / "a.txt").exists()
    inside = work / "saves" / "mine" / "args.yaml"
    status = call(page, "save_btn", args_file=str(inside), model_name_or_path=str(tiny_model_dir), **TRAIN)
    assert not status.startswith("⚠") and yaml.safe_load(inside.read_text())["dataset"] == "toy"

    *updates, status = call(page, "load_btn", args_file=str(outside / "args.yaml"))
    assert status.startswith("⚠ args_file: ") and "may read" in status
    assert all(u == {"__type__": "update"} for u in updates)  # the form is left as it was: nothing read
    *updates, status = call(page, "load_btn", args_file=str(inside))
    assert not status.startswith("⚠") and {"__type__": "update", "value": str(tiny_model_dir)} in updates


def test_datasets_are_listed_only_from_readable_folders(page):
    demo, ui, work, outside = page
    names, *_, status = call(page, "dataset_dir", "change", dataset_dir=str(outside), stage="sft")
    assert names["choices"] == [] and status.startswith("⚠ dataset_dir: ")
    names, *_, status = call(page, "dataset_dir", "change", dataset_dir="data", stage="sft")
    assert names["choices"] == ["toy"] and status == {"__type__": "update"}


def test_chat_loads_no_model_from_outside(page):
    demo, ui, work, outside = page
    status = call(page, "load_model_btn", model_name_or_path=str(outside / "model"))
    assert status.startswith("⚠ model_name_or_path: ") and ui.engine is None
    status = call(page, "load_model_btn", model_name_or_path="saves/../../outside/model")
    assert status.startswith("⚠ model_name_or_path: ") and ui.engine is None


def test_both_pages_take_the_folder_flags():
    from tuneforge.cli import build_parser

    parser = build_parser()
    for command in ("webui", "webchat"):
        args = parser.parse_args([command, "--allow-dir", "a", "--allow-dir", "b", "--models-dir", "m"])
        assert args.allow_dir == ["a", "b"] and args.models_dir == ["m"]
        plain = parser.parse_args([command])
        assert plain.allow_dir == [] and plain.models_dir is None  # cmd_webui then reads models/


def test_lf_path_keys_are_confined_in_every_group_spelling(site):
    """The LLaMA-Factory keys that name folders (new tokens' YAML, offload / profiler / SwanLab folders) are confined
    like the others, also nested under their new groups; adapter_folder stays inside the adapter's folder."""
    policy, work, outside, _ = site
    for cfg, key in (
        ({"new_special_tokens_config": str(outside / "t.yaml")}, "new_special_tokens_config"),
        ({"tracking": {"swanlab_logdir": str(outside)}}, "swanlab_logdir"),
        ({"tracking.profiler_output_dir": str(outside)}, "profiler_output_dir"),
        ({"offload_folder": "../outside"}, "offload_folder"),
    ):
        with pytest.raises(UserError) as info:
            confine_config(cfg, policy)
        assert info.value.where == key
    confine_config({"tracking": {"swanlab_logdir": "saves/swan"}, "new_special_tokens_config": "data/t.yaml"}, policy)
    confine_config({"adapter_folder": "final"}, policy)
    for bad in ("../up", "/etc"):
        with pytest.raises(UserError, match="inside the adapter's folder"):
            confine_config({"adapter_folder": bad}, policy)
