"""The bad-input catalogue: every row is one broken input. The CLI answers with ONE line on stderr (no traceback)
that names the file or field, exit code 2, and writes nothing; the API answers 4xx with a JSON error body.

Each CLI row gets a fresh world (a copy of the tiny model, the toy dataset, a config) that its `setup` breaks; the
whole world is snapshotted (path, size, mtime) before and after the command: nothing may appear or change.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tuneforge.cli import main

LOG_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (INFO|WARNING) ")


@dataclass
class World:
    root: Path
    model: Path
    data: Path
    cfg: dict
    out: Path
    tiny: Path  # the pristine tiny model (session fixture), for building "another" model

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def yaml(self, text: str = "", **extra) -> Path:
        import yaml

        body = yaml.safe_dump({**self.cfg, **extra}, sort_keys=False) + text
        return self.write("cfg.yaml", body)

    def train(self, **extra) -> list[str]:
        return ["train", *as_args({**self.cfg, **extra})]

    def model_json(self, **changes) -> None:
        config = json.loads((self.model / "config.json").read_text())
        config.update(changes)
        (self.model / "config.json").write_text(json.dumps(config))

    def rows(self, rows, name: str = "toy.json", info: dict | None = None) -> None:
        text = rows if isinstance(rows, str) else json.dumps(rows)
        (self.data / name).write_text(text, encoding="utf-8")
        if info is not None:
            (self.data / "dataset_info.json").write_text(json.dumps(info))


def as_args(cfg: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, (bool, list, dict)) else v}" for k, v in cfg.items()]


@dataclass
class Case:
    id: str
    setup: Callable[[World], list[str]]  # breaks the world, returns the CLI argv
    fragments: tuple[str, ...] = field(default_factory=tuple)  # what the one line must name


def lora_adapter_for(base: Path, target: Path, **lora) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], **lora)
    get_peft_model(model, config).save_pretrained(target)
    return target


def other_model(w: World) -> Path:
    from tuneforge.model.tiny import create_tiny_model

    return create_tiny_model(w.root / "other-model", hidden=64, intermediate=128)


def wrong_arch(w: World) -> list[str]:
    w.model_json(model_type="tuneforge_nonexistent", architectures=["NonexistentForCausalLM"])
    return w.train()


def truncated_safetensors(w: World) -> list[str]:
    weights = w.model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return w.train()


def garbage_safetensors(w: World) -> list[str]:
    (w.model / "model.safetensors").write_bytes(b"this is not a safetensors file at all")
    return w.train()


def wrong_shape_safetensors(w: World) -> list[str]:
    from safetensors.torch import load_file, save_file

    tensors = load_file(w.model / "model.safetensors")
    key = next(k for k in tensors if k.endswith("q_proj.weight"))
    tensors[key] = tensors[key][:, :-1].contiguous()
    save_file(tensors, w.model / "model.safetensors", metadata={"format": "pt"})
    return w.train()


def no_weights(w: World) -> list[str]:
    for f in w.model.glob("*.safetensors"):
        f.unlink()
    return w.train()


def no_tokenizer(w: World) -> list[str]:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (w.model / name).unlink(missing_ok=True)
    return w.train()


def no_chat_template(w: World) -> list[str]:
    cfg_file = w.model / "tokenizer_config.json"
    config = json.loads(cfg_file.read_text())
    config.pop("chat_template", None)
    cfg_file.write_text(json.dumps(config))
    for f in w.model.glob("chat_template.*"):
        f.unlink()
    return w.train(template="tokenizer")


def broken_chat_template(w: World) -> list[str]:
    cfg_file = w.model / "tokenizer_config.json"
    config = json.loads(cfg_file.read_text())
    config["chat_template"] = "{% for m in messages %}{{ m.content | nosuchfilter }}{% endfor %}"
    cfg_file.write_text(json.dumps(config))
    for f in w.model.glob("chat_template.*"):
        f.unlink()
    return w.train(template="tokenizer")


def adapter_for_other_base(w: World) -> list[str]:
    adapter = lora_adapter_for(other_model(w), w.root / "adapter", init_lora_weights=False)
    return w.train(adapter_name_or_path=str(adapter))


def export_adapter_for_other_base(w: World) -> list[str]:
    adapter = lora_adapter_for(other_model(w), w.root / "adapter", init_lora_weights=False)
    return ["export", f"model_name_or_path={w.model}", f"adapter_name_or_path={adapter}", f"export_dir={w.out}"]


def adapter_without_config(w: World) -> list[str]:
    adapter = lora_adapter_for(w.model, w.root / "adapter")
    (adapter / "adapter_config.json").unlink()
    return w.train(adapter_name_or_path=str(adapter))


def adapter_corrupt_weights(w: World) -> list[str]:
    adapter = lora_adapter_for(w.model, w.root / "adapter")
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00\x01garbage")
    return w.train(adapter_name_or_path=str(adapter))


def output_dir_holds_other_run(w: World) -> list[str]:
    w.out.mkdir()
    (w.out / "config.yaml").write_text("model_name_or_path: somebody/else\ndataset: theirs\n")
    return w.train()


def output_dir_is_a_file(w: World) -> list[str]:
    w.out.write_text("not a folder")
    return w.train()


def output_dir_with_foreign_files(w: World) -> list[str]:
    w.out.mkdir()
    (w.out / "thesis.pdf").write_bytes(b"precious")
    return w.train()


def resume_from_half_checkpoint(w: World) -> list[str]:
    half = w.root / "old" / "checkpoint-4"
    half.mkdir(parents=True)
    (half / "adapter_model.safetensors").write_bytes(b"")
    return w.train(resume_from_checkpoint=str(half))


def export_dir_with_other_files(w: World) -> list[str]:
    w.out.mkdir()
    (w.out / "weights.bin").write_bytes(b"precious")
    return ["export", f"model_name_or_path={w.model}", f"export_dir={w.out}"]


SHAREGPT = {"toy": {"file_name": "toy.json", "formatting": "sharegpt"}}

CASES = [
    # ---- config files and keys
    Case("config-unknown-key", lambda w: ["train", str(w.yaml("lora_rnak: 8\n"))], ("cfg.yaml:", "lora_rank")),
    Case("config-yaml-syntax", lambda w: ["train", str(w.write("cfg.yaml", "a: [1, 2\nb: 3\n"))], ("cfg.yaml",)),
    Case("config-json-syntax", lambda w: ["train", str(w.write("cfg.json", '{"a": 1,,}'))], ("cfg.json:1",)),
    Case("config-not-a-mapping", lambda w: ["train", str(w.write("cfg.yaml", "- a\n- b\n"))], ("cfg.yaml",)),
    Case("config-file-missing", lambda w: ["train", str(w.root / "nope.yaml")], ("nope.yaml", "not found")),
    Case("config-wrong-type", lambda w: ["train", str(w.yaml(lora_rank="eight"))], ("lora_rank",)),
    Case("config-bad-choice", lambda w: w.train(finetuning_type="lorra"), ("finetuning_type", "lora")),
    Case("config-bad-stage", lambda w: w.train(stage="sftt"), ("stage",)),
    Case("config-unknown-override", lambda w: w.train(learning_rat=0.1), ("learning_rat", "learning_rate")),
    Case("config-lora-rank-0", lambda w: w.train(lora_rank=0), ("lora_rank",)),
    Case("config-lora-dropout-1", lambda w: w.train(lora_dropout=1.0), ("lora_dropout",)),
    Case("config-cutoff-len-1", lambda w: w.train(cutoff_len=1), ("cutoff_len",)),
    Case("config-negative-val-size", lambda w: w.train(val_size=-0.1), ("val_size",)),
    Case("config-max-samples-0", lambda w: w.train(max_samples=0), ("max_samples",)),
    Case("config-lora-key-with-full", lambda w: w.train(finetuning_type="full", lora_rank=8), ("lora_rank",)),
    Case("config-qlora-with-full", lambda w: w.train(finetuning_type="full", quantization_bit=4), ("quantization",)),
    Case(
        "config-streaming-no-steps",
        lambda w: ["train", *as_args({**{k: v for k, v in w.cfg.items() if k != "max_steps"}, "streaming": True})],
        ("streaming", "max_steps"),
    ),  # noqa: E501
    Case("config-legacy-format", lambda w: w.train(export_legacy_format=True), ("safetensors",)),
    Case(
        "config-no-model",
        lambda w: ["train", *as_args({k: v for k, v in w.cfg.items() if k != "model_name_or_path"})],
        ("model_name_or_path",),
    ),  # noqa: E501
    # ---- dataset files and registry
    Case(
        "data-invalid-json",
        lambda w: (w.rows('[\n {"instruction": "a", "output": "b"},\n {"x" "y"}\n]'), w.train())[1],
        ("toy.json:3",),
    ),  # noqa: E501
    Case(
        "data-missing-column",
        lambda w: (w.rows([{"instruction": "a", "answer": "b"}]), w.train())[1],
        ("toy.json", "output"),
    ),  # noqa: E501
    Case("data-empty-list", lambda w: (w.rows([]), w.train())[1], ("toy",)),
    Case("data-rows-not-objects", lambda w: (w.rows([1, 2, 3]), w.train())[1], ("toy.json",)),
    Case(
        "data-output-not-text",
        lambda w: (w.rows([{"instruction": "a", "output": {"x": 1}}]), w.train())[1],
        ("toy.json",),
    ),  # noqa: E501
    Case(
        "data-jsonl-bad-line",
        lambda w: (
            w.rows('{"instruction": "a", "output": "b"}\n{oops\n', "toy.jsonl", {"toy": {"file_name": "toy.jsonl"}}),
            w.train(),
        )[1],
        ("toy.jsonl:2",),
    ),  # noqa: E501
    Case(
        "data-file-missing",
        lambda w: (w.rows([], info={"toy": {"file_name": "gone.json"}}), w.train())[1],
        ("gone.json",),
    ),  # noqa: E501
    Case("data-unknown-name", lambda w: w.train(dataset="toi"), ("toi", "toy")),
    Case(
        "data-info-invalid-json",
        lambda w: ((w.data / "dataset_info.json").write_text("{'toy': 1}"), w.train())[1],
        ("dataset_info.json",),
    ),  # noqa: E501
    Case(
        "data-info-entry-no-file",
        lambda w: ((w.data / "dataset_info.json").write_text('{"toy": {"columns": {}}}'), w.train())[1],
        ("toy",),
    ),  # noqa: E501
    Case("data-dir-missing", lambda w: w.train(dataset_dir=str(w.root / "no-data")), ("no-data",)),
    Case(
        "data-sharegpt-bad-role",
        lambda w: (w.rows([{"conversations": [{"from": "robot", "value": "hi"}]}], info=SHAREGPT), w.train())[1],
        ("toy.json", "robot"),
    ),  # noqa: E501
    Case(
        "data-sharegpt-not-a-list",
        lambda w: (w.rows([{"conversations": "hello"}], info=SHAREGPT), w.train())[1],
        ("toy.json",),
    ),  # noqa: E501
    Case(
        "data-no-response-at-all",
        lambda w: (
            w.rows([{"text": "q"}] * 3, info={"toy": {"file_name": "toy.json", "columns": {"prompt": "text"}}}),
            w.train(),
        )[1],
        ("empty after filtering",),
    ),  # noqa: E501
    # ---- templates
    Case("template-unknown", lambda w: w.train(template="qwen3x"), ("template", "qwen3x")),
    Case("template-tokenizer-without-chat-template", no_chat_template, ("template", "chat_template")),
    Case("template-tokenizer-template-broken", broken_chat_template, ("chat_template",)),
    # ---- model folders
    Case(
        "model-path-missing",
        lambda w: w.train(model_name_or_path=str(w.root / "models/none")),
        ("models/none", "does not exist"),
    ),  # noqa: E501
    Case("model-folder-not-a-model", lambda w: w.train(model_name_or_path=str(w.data)), ("config.json",)),
    Case(
        "model-config-invalid-json",
        lambda w: ((w.model / "config.json").write_text("{nope"), w.train())[1],
        ("model_name_or_path",),
    ),  # noqa: E501
    Case("model-wrong-architecture", wrong_arch, ("model_name_or_path",)),
    Case(
        "model-config-without-model-type",
        lambda w: ((w.model / "config.json").write_text("{}"), w.train())[1],
        ("model_name_or_path",),
    ),  # noqa: E501
    Case("model-truncated-safetensors", truncated_safetensors, ("model_name_or_path",)),
    Case("model-garbage-safetensors", garbage_safetensors, ("model_name_or_path",)),
    Case("model-wrong-shape-weights", wrong_shape_safetensors, ("model_name_or_path",)),
    Case("model-no-weights", no_weights, ("model_name_or_path",)),
    Case("model-no-tokenizer", no_tokenizer, ("model_name_or_path",)),
    # ---- adapters
    Case("adapter-for-another-base", adapter_for_other_base, ("adapter_name_or_path", "does not fit")),
    Case("adapter-missing", lambda w: w.train(adapter_name_or_path=str(w.root / "no-adapter")), ("no-adapter",)),
    Case("adapter-without-config", adapter_without_config, ("adapter_name_or_path", "adapter_config.json")),
    Case("adapter-corrupt-weights", adapter_corrupt_weights, ("adapter_name_or_path",)),
    Case(
        "adapter-with-full",
        lambda w: w.train(finetuning_type="full", adapter_name_or_path=str(w.model)),
        ("adapter_name_or_path",),
    ),  # noqa: E501
    Case("export-adapter-for-another-base", export_adapter_for_other_base, ("does not fit",)),
    # ---- run and export folders
    Case("output-dir-other-run", output_dir_holds_other_run, ("output_dir", "overwrite_output_dir")),
    Case("output-dir-is-a-file", output_dir_is_a_file, ("output_dir",)),
    Case("output-dir-foreign-files", output_dir_with_foreign_files, ("output_dir", "other files")),
    Case("resume-from-half-checkpoint", resume_from_half_checkpoint, ("resume_from_checkpoint", "trainer_state.json")),  # noqa: E501
    Case("export-dir-other-files", export_dir_with_other_files, ("export_dir",)),
    Case("export-no-export-dir", lambda w: ["export", f"model_name_or_path={w.model}"], ("export_dir",)),
]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


class CurrentStderr:
    """A stream that writes to whatever sys.stderr is now (capsys swaps it per test)."""

    def write(self, text):
        return sys.stderr.write(text)

    def flush(self):
        sys.stderr.flush()


@pytest.fixture
def log_to_captured_stderr(capsys):
    """The package logger keeps the stderr it first saw: make it follow sys.stderr for this test, so capsys sees
    the CLI's log lines exactly as a user's terminal would; put the old stream back afterwards."""
    from tuneforge.utils.logging import get_logger

    get_logger("tuneforge")
    handlers = [h for h in logging.getLogger("tuneforge").handlers if type(h) is logging.StreamHandler]
    saved = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = CurrentStderr()
    yield
    for handler, stream in zip(handlers, saved, strict=True):
        handler.stream = stream


@pytest.fixture
def world(tmp_path, tiny_model_dir, data_dir, train_overrides) -> World:
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    out = tmp_path / "out"
    cfg = train_overrides("lora", model_name_or_path=str(model), output_dir=str(out), max_steps=2)
    return World(tmp_path, model, data_dir, cfg, out, tiny_model_dir)


def test_the_catalogue_has_at_least_40_cli_cases():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_nothing_written(case, world, capsys, log_to_captured_stderr):
    argv = case.setup(world)
    capsys.readouterr()
    before = snapshot(world.root)
    code = main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    err = lines[-1] if lines else ""
    assert code == 2, "\n".join(lines)[-3000:]
    assert "Traceback" not in "\n".join(lines), "\n".join(lines)
    # ONE error line, the last; anything before it is the run's own progress log ("[12:00:00] INFO ...")
    assert err.startswith("tuneforge: error: ")
    assert all(LOG_LINE.match(line) for line in lines[:-1]), "\n".join(lines)
    for fragment in case.fragments:
        assert fragment in err, err
    assert snapshot(world.root) == before  # no output_dir, no export_dir, no cache, nothing touched


# ---- the API: 4xx with an OpenAI-style JSON error, the engine never called


class NeverEngine:
    """A chat engine that fails the test if a bad request ever reaches it."""

    tool_format = "qwen"
    calls = 0

    def stream(self, *args, **kwargs):
        NeverEngine.calls += 1
        raise AssertionError("a bad request reached the engine")


USER = [{"role": "user", "content": "hi"}]
API_CASES = [
    ("no-messages", {"model": "m"}, 400),
    ("empty-messages", {"model": "m", "messages": []}, 400),
    ("messages-not-a-list", {"model": "m", "messages": "hi"}, 400),
    ("bad-role", {"model": "m", "messages": [{"role": "robot", "content": "a"}]}, 400),
    ("last-message-assistant", {"model": "m", "messages": [*USER, {"role": "assistant", "content": "b"}]}, 400),
    ("n-too-large", {"model": "m", "messages": USER, "n": 9}, 400),
    ("max-tokens-too-large", {"model": "m", "messages": USER, "max_tokens": 5000}, 400),
    ("temperature-out-of-range", {"model": "m", "messages": USER, "temperature": 3}, 400),
    ("temperature-not-a-number", {"model": "m", "messages": USER, "temperature": "hot"}, 400),
    ("too-many-messages", {"model": "m", "messages": USER * 300}, 400),
    ("image-content", {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400),
    ("tools-not-a-list", {"model": "m", "messages": USER, "tools": "get_weather"}, 400),
    ("invalid-json", b"{not json", 400),
    ("body-too-large", {"model": "m", "messages": [{"role": "user", "content": "x" * 30000}]}, 413),
    ("wrong-api-key", {"model": "m", "messages": USER}, 401),
]


@pytest.fixture(scope="module")
def api_url():
    from tuneforge.api.app import ServerSettings, create_app
    from tuneforge.api.server import BackgroundServer

    with BackgroundServer(create_app(NeverEngine(), ServerSettings(api_key="k", max_body_bytes=20000))) as url:
        yield url


@pytest.mark.parametrize(("name", "body", "status"), API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_api_request_gets_4xx_with_a_json_error(name, body, status, api_url):
    import httpx2 as httpx

    headers = {"Authorization": "Bearer " + ("wrong" if name == "wrong-api-key" else "k")}
    if isinstance(body, bytes):
        response = httpx.post(api_url + "/chat/completions", content=body, headers=headers, timeout=30)
    else:
        response = httpx.post(api_url + "/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"] and "Traceback" not in error["message"]
    assert NeverEngine.calls == 0
