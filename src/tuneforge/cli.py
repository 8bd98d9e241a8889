"""Command line: parse arguments, call one workflow function, turn UserError into one line and exit 2."""

from __future__ import annotations

import argparse
import json
import sys

from tuneforge import __version__
from tuneforge.chat.engine import HuggingFaceEngine
from tuneforge.chat.repl import run_chat
from tuneforge.chat.vision_inputs import image_part
from tuneforge.config import load_config
from tuneforge.config.backends import hold_back_unused
from tuneforge.config.ray_keys import ray_requested
from tuneforge.errors import UserError
from tuneforge.evaluate.evaluator import eval_command
from tuneforge.export.run import run_export
from tuneforge.model.estimate import estimate_memory, format_estimate
from tuneforge.model.llama_pro import expand_model
from tuneforge.model.tiny import ARCHS, create_tiny_model
from tuneforge.model.tiny_vlm import QWEN_VL_ARCHS, VLM_ARCHS, create_tiny_vlm
from tuneforge.sweep.driver import SweepInterrupted, run_sweep
from tuneforge.train.launch import maybe_relaunch
from tuneforge.train.preview import preview
from tuneforge.train.ray_launch import run_on_ray
from tuneforge.train.run import run_training
from tuneforge.utils import startup_gc
from tuneforge.utils.allocator import allocator_in_use
from tuneforge.utils.env_info import format_env
from tuneforge.utils.imports import WHILE_LIBRARIES_IMPORT, hold_back
from tuneforge.utils.logging import configure_output, get_logger, quiet_libraries
from tuneforge.warm import control as warm_control
from tuneforge.webui import app as webui_app

logger = get_logger(__name__)

CONFIG_HELP = "a YAML/JSON config file, then key=value overrides (e.g. learning_rate=5e-5 lora_rank=16)"
DEBUG_HELP = "show full tracebacks, our debug lines and other libraries' warnings"


def split_config(items: list[str]) -> tuple[str | None, list[str]]:
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def _load(args):
    quiet_libraries()
    path, overrides = split_config(args.config)
    return load_config(path, overrides)


def cmd_train(args) -> int:
    cfg = _load(args)  # a bad config fails here, once, before any process starts
    logger.info("memory allocator: %s", allocator_in_use())
    argv = [*args.config, "--debug"] if args.debug else args.config
    if ray_requested(cfg):  # USE_RAY=1 or ray_num_workers > 1: Ray actors start the processes (train/ray_launch.py)
        startup_gc.settle()  # this process trains nothing itself: collection back on while it waits
        return run_on_ray(cfg, args.nproc)
    code = maybe_relaunch(argv, args.nproc, disabled=args.no_torchrun)
    if code is not None:
        return code
    out = run_training(cfg)
    print(f"Done. Saved to {out}")
    return 0


def cmd_sweep(args) -> int:
    quiet_libraries()
    try:
        run_sweep(args.train_config, args.sweep_file, args.overrides, jobs_db=args.jobs_db)
    except SweepInterrupted as exc:
        print(f"tuneforge: {exc}", file=sys.stderr)
        return 130
    return 0


def cmd_export(args) -> int:
    out = run_export(_load(args))
    print(f"Done. Exported to {out}")
    return 0


def cmd_eval(args) -> int:
    print(eval_command(_load(args)))
    return 0


def cmd_preview(args) -> int:
    print(preview(_load(args), count=args.num, color=None if args.color == "auto" else args.color == "always"))
    return 0


def cmd_chat(args) -> int:
    for path in args.image or []:
        image_part(path)  # a missing picture is one line before the model loads
    run_chat(HuggingFaceEngine(_load(args)), queries=args.query, images=args.image)
    return 0


def cmd_api(args) -> int:
    # late: the API imports fastapi and uvicorn, which only `tuneforge api` needs
    from tuneforge.api.app import ServerSettings
    from tuneforge.api.server import serve

    settings = ServerSettings(api_key=args.api_key, max_tokens=args.max_tokens, max_pending=args.max_pending)
    serve(_load(args), host=args.host, port=args.port, settings=settings, model_name=args.model_name)
    return 0


def cmd_create_tiny_model(args) -> int:
    quiet_libraries()
    options = _options(args, TINY_MODEL)
    if args.arch not in VLM_ARCHS:
        out = create_tiny_model(args.out, **options)
        print(f"Tiny {args.arch} model saved to {out}")
        return 0
    # A vision-language model has one fixed shape: only the seed and the vocabulary size are its to choose.
    shaped = [
        key
        for key, value in options.items()
        if key not in ("arch", "seed", "vocab_size") and value != TINY_DEFAULTS[key]
    ]
    if shaped:
        flags = ", ".join("--" + key.replace("_", "-") for key in shaped)
        raise UserError(
            f"{flags} shape the text archs only", where="--arch", fix=f"drop {flags} for --arch {args.arch}"
        )
    out = create_tiny_vlm(args.out, args.arch, seed=args.seed, vocab_size=args.vocab_size)
    print(f"Tiny {args.arch} vision-language model saved to {out}")
    if args.arch in QWEN_VL_ARCHS:
        print("Load its processor with tuneforge.model.vlm_processor.load_processor (AutoProcessor needs torchvision)")
    return 0


def cmd_llama_pro(args) -> int:
    quiet_libraries()
    out = expand_model(args.model_dir, args.out_dir, args.num_expand)
    print(
        f"Expanded model saved to {out}. Train its new blocks with: model_name_or_path: {out}, "
        f"finetuning_type: freeze, freeze_trainable_layers: {args.num_expand}, use_llama_pro: true"
    )
    return 0


def cmd_webui(args, chat_only: bool = False) -> int:
    webui_app.launch(
        host=args.host,
        port=args.port,
        auth=args.auth,
        share=args.share,
        saves_dir=args.saves_dir,
        data_dir=args.data_dir,
        lang=args.lang,
        chat_only=chat_only,
        models_dirs=args.models_dir or ["models"],
        allow_dirs=args.allow_dir,
    )
    return 0


def cmd_webchat(args) -> int:
    return cmd_webui(args, chat_only=True)


def cmd_estimate(args) -> int:
    est = estimate_memory(_load(args))
    print(json.dumps(est) if args.json else format_estimate(est))
    return 0


def cmd_env(args) -> int:
    print(format_env())
    return 0


def cmd_warm(args) -> int:
    if args.action == "start":
        print(warm_control.start(args.idle_minutes))
    else:
        print(warm_control.stop() if args.action == "stop" else warm_control.status())
    return 0


def cmd_version(args) -> int:
    print(__version__)
    return 0


def arg(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    """One `add_argument` call, as a row of the table below."""
    return flags, kwargs


def _options(args, rows) -> dict:
    """The parsed values of these table rows, by their argparse dest (`--kv-heads` -> kv_heads)."""
    return {dest: getattr(args, dest) for dest in (flags[-1].lstrip("-").replace("-", "_") for flags, _ in rows)}


CONFIG = arg("config", nargs="*", help=CONFIG_HELP)
PAGE = (  # webui and webchat
    arg("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"),
    arg("--port", type=int, default=7860),
    arg("--auth", default=None, help="user:password required to open the page"),
    arg("--share", action="store_true", help="also open a public Gradio share link (off by default)"),
    arg("--saves-dir", default="saves", help="run folders and the job queue (default saves)"),
    arg("--data-dir", default="data", help="dataset folder shown first (default data)"),
    arg(
        "--models-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="folder of local models the page may load (repeatable; default models); hub ids (org/name) work too",
    ),
    arg(
        "--allow-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder the page may read and write (repeatable); paths outside --saves-dir, --data-dir, "
        "--models-dir and these are refused",
    ),
    arg("--lang", default="en", help="page language: en or zh (switchable on the page)"),
)
TINY_MODEL = (  # create-tiny-model's shape options: create_tiny_model's keyword arguments
    arg(
        "--arch",
        choices=(*ARCHS, *VLM_ARCHS),
        default="qwen2",
        help="text: qwen2, llama; vision-language: " + ", ".join(VLM_ARCHS),
    ),
    arg("--layers", type=int, default=2),
    arg("--hidden", type=int, default=128),
    arg("--heads", type=int, default=4),
    arg("--kv-heads", type=int, default=2),
    arg("--intermediate", type=int, default=256),
    arg("--vocab-size", type=int, default=4096),
    arg("--seed", type=int, default=0),
)
TINY_DEFAULTS = {flags[-1].lstrip("-").replace("-", "_"): kwargs["default"] for flags, kwargs in TINY_MODEL}
# one row per subcommand, in the order `tuneforge --help` lists them: name, function, help, its own arguments
COMMANDS = (
    (
        "train",
        cmd_train,
        "train a model from a config",
        (
            CONFIG,
            arg(
                "--nproc",
                type=int,
                default=None,
                help="processes on this machine (relaunches under torchrun; default: NPROC_PER_NODE or 1). "
                "Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT",
            ),
            arg("--no-torchrun", action="store_true", help="never relaunch under torchrun (run as one process)"),
        ),
    ),
    (
        "sweep",
        cmd_sweep,
        "search hyper-parameters with Optuna: each trial a train run, bad ones pruned early, resumable",
        (
            arg("train_config", help="the base train config (YAML/JSON) every trial starts from"),
            arg(
                "sweep_file", help="sweep.yaml: metric, n_trials, sampler, pruner and the params space (docs/sweep.md)"
            ),
            arg("overrides", nargs="*", help="key=value overrides of the train config (e.g. max_steps=50)"),
            arg(
                "--jobs-db",
                default=None,
                metavar="PATH",
                help="the job store its trials are queued in (default: <sweep folder>/tuneforge_jobs.sqlite)",
            ),
        ),
    ),
    (
        "export",
        cmd_export,
        "merge LoRA adapters and export: safetensors folder, or GGUF + Ollama Modelfile",
        (CONFIG,),
    ),
    (
        "eval",
        cmd_eval,
        "benchmark a model on a multiple-choice task (task=...), or predict on eval_dataset",
        (CONFIG,),
    ),
    (
        "preview",
        cmd_preview,
        "show encoded samples: which tokens are trained, which are masked",
        (
            CONFIG,
            arg("-n", "--num", type=int, default=3, help="samples per dataset (default 3)"),
            arg("--color", choices=("auto", "always", "never"), default="auto"),
        ),
    ),
    (
        "chat",
        cmd_chat,
        "chat in the terminal with a model and its adapters",
        (
            CONFIG,
            arg("--query", action="append", help="answer this question and exit (repeatable; each on its own)"),
            arg(
                "--image",
                action="append",
                metavar="PATH",
                help="a picture for the first question (repeatable; a vision-language model and its template)",
            ),
        ),
    ),
    (
        "api",
        cmd_api,
        "serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions)",
        (
            CONFIG,
            arg("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"),
            arg("--port", type=int, default=8000),
            arg("--api-key", help="require `Authorization: Bearer KEY` (default: $TUNEFORGE_API_KEY, else none)"),
            arg("--model-name", help="the model id clients see (default: the model or adapter folder name)"),
            arg("--max-tokens", type=int, default=4096, help="largest max_tokens a request may ask for"),
            arg("--max-pending", type=int, default=64, help="requests queued at once; more get HTTP 503"),
        ),
    ),
    (
        "create-tiny-model",
        cmd_create_tiny_model,
        "build a tiny random model offline (for tests and demos)",
        (
            arg("out", help="output folder"),
            *TINY_MODEL,
        ),
    ),
    (
        "llama-pro",
        cmd_llama_pro,
        "LLaMA Pro block expansion: insert zero-output copies of blocks (same outputs), to train with use_llama_pro",
        (
            arg("model_dir", help="the model folder to expand"),
            arg("out_dir", help="a new folder for the expanded model"),
            arg("--num-expand", type=int, required=True, help="blocks to add (must divide the number of layers)"),
        ),
    ),
    ("webui", cmd_webui, "the Web UI: train, evaluate, chat, export, runs (a browser page)", PAGE),
    ("webchat", cmd_webchat, "a chat-only Web UI page", PAGE),
    (
        "estimate",
        cmd_estimate,
        "predict a training run's peak memory (reads config.json; loads no weights)",
        (CONFIG, arg("--json", action="store_true", help="print JSON")),
    ),
    ("env", cmd_env, "versions, devices and bf16 support", ()),
    (
        "warm",
        cmd_warm,
        "a warm worker: `tuneforge train` in this environment starts without its ~4 s of imports",
        (
            arg("action", choices=("start", "stop", "status")),
            arg("--idle-minutes", type=float, default=30.0, help="stop after this long without a run (default 30)"),
        ),
    ),
    ("version", cmd_version, "print the TuneForge version", ()),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuneforge", description="Fine-tune large language models: data, training, chat."
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, func, help_text, arguments in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        for flags, kwargs in arguments:
            p.add_argument(*flags, **kwargs)
    return parser


def _hold_back_unused_backends(args) -> None:
    """This process runs this one command: keep the optional backends its config does not use out of it."""
    if args.func is cmd_train:  # released once the stage's libraries are in (train/run.py)
        hold_back(WHILE_LIBRARIES_IMPORT)
    if getattr(args, "config", None) is not None:
        hold_back_unused(*split_config(args.config))
    elif args.func is cmd_create_tiny_model:
        hold_back_unused(None)


def main(argv: list[str] | None = None) -> int:
    """`argv` None: the program (`tuneforge ...`, `python -m tuneforge ...`), which owns its process and so keeps
    the optional backends its config does not use out of it. A caller passing `argv` keeps its process as it is."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    configure_output(debug=args.debug)
    try:
        if argv is None:
            _hold_back_unused_backends(args)
        return args.func(args)
    except UserError as exc:
        if args.debug:
            raise
        print(f"tuneforge: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tuneforge: interrupted", file=sys.stderr)
        return 130
