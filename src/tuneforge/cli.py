"""Command line: parse arguments, call one workflow function, turn UserError into one line and exit 2."""

from __future__ import annotations

import argparse
import sys

from tuneforge.errors import UserError

CONFIG_HELP = "a YAML/JSON config file, then key=value overrides (e.g. learning_rate=5e-5 lora_rank=16)"
DEBUG_HELP = "show full tracebacks, our debug lines and other libraries' warnings"


def _split_config(items: list[str]) -> tuple[str | None, list[str]]:
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def _load(args):
    from tuneforge.config import load_config
    from tuneforge.utils.logging import quiet_libraries

    quiet_libraries()
    path, overrides = _split_config(args.config)
    return load_config(path, overrides)


def cmd_train(args) -> int:
    from tuneforge.train.launch import maybe_relaunch
    from tuneforge.train.run import run_training

    cfg = _load(args)  # a bad config fails here, once, before any process starts
    argv = [*args.config, "--debug"] if args.debug else args.config
    code = maybe_relaunch(argv, args.nproc, disabled=args.no_torchrun)
    if code is not None:
        return code
    out = run_training(cfg)
    print(f"Done. Saved to {out}")
    return 0


def cmd_export(args) -> int:
    from tuneforge.export.run import run_export

    out = run_export(_load(args))
    print(f"Done. Exported to {out}")
    return 0


def cmd_eval(args) -> int:
    from tuneforge.evaluate.evaluator import eval_command

    print(eval_command(_load(args)))
    return 0


def cmd_preview(args) -> int:
    from tuneforge.train.preview import preview

    print(preview(_load(args), count=args.num, color=None if args.color == "auto" else args.color == "always"))
    return 0


def cmd_chat(args) -> int:
    from tuneforge.chat.engine import HuggingFaceEngine
    from tuneforge.chat.repl import run_chat

    run_chat(HuggingFaceEngine(_load(args)), queries=args.query)
    return 0


def cmd_api(args) -> int:
    from tuneforge.api.app import ServerSettings
    from tuneforge.api.server import serve

    settings = ServerSettings(api_key=args.api_key, max_tokens=args.max_tokens, max_pending=args.max_pending)
    serve(_load(args), host=args.host, port=args.port, settings=settings, model_name=args.model_name)
    return 0


def cmd_create_tiny_model(args) -> int:
    from tuneforge.model.tiny import create_tiny_model
    from tuneforge.utils.logging import quiet_libraries

    quiet_libraries()
    out = create_tiny_model(
        args.out,
        arch=args.arch,
        layers=args.layers,
        hidden=args.hidden,
        heads=args.heads,
        kv_heads=args.kv_heads,
        intermediate=args.intermediate,
        vocab_size=args.vocab_size,
        seed=args.seed,
    )
    print(f"Tiny {args.arch} model saved to {out}")
    return 0


def cmd_webui(args, chat_only: bool = False) -> int:
    from tuneforge.webui.app import launch

    launch(
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
    import json

    from tuneforge.model.estimate import estimate_memory, format_estimate

    est = estimate_memory(_load(args))
    print(json.dumps(est) if args.json else format_estimate(est))
    return 0


def cmd_env(args) -> int:
    from tuneforge.utils.env_info import format_env

    print(format_env())
    return 0


def cmd_version(args) -> int:
    from tuneforge import __version__

    print(__version__)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuneforge", description="Fine-tune large language models: data, training, chat."
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        return p

    p = command("train", cmd_train, "train a model from a config")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="processes on this machine (relaunches under torchrun; default: NPROC_PER_NODE or 1). "
        "Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT",
    )
    p.add_argument("--no-torchrun", action="store_true", help="never relaunch under torchrun (run as one process)")
    p = command("export", cmd_export, "merge LoRA adapters and export: safetensors folder, or GGUF + Ollama Modelfile")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p = command("eval", cmd_eval, "benchmark a model on a multiple-choice task (task=...), or predict on eval_dataset")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p = command("preview", cmd_preview, "show encoded samples: which tokens are trained, which are masked")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p.add_argument("-n", "--num", type=int, default=3, help="samples per dataset (default 3)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p = command("chat", cmd_chat, "chat in the terminal with a model and its adapters")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p.add_argument("--query", action="append", help="answer this question and exit (repeatable; each on its own)")
    p = command("api", cmd_api, "serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions)")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help="require `Authorization: Bearer KEY` (default: $TUNEFORGE_API_KEY, else none)")
    p.add_argument("--model-name", help="the model id clients see (default: the model or adapter folder name)")
    p.add_argument("--max-tokens", type=int, default=4096, help="largest max_tokens a request may ask for")
    p.add_argument("--max-pending", type=int, default=64, help="requests queued at once; more get HTTP 503")
    p = command("create-tiny-model", cmd_create_tiny_model, "build a tiny random model offline (for tests and demos)")
    p.add_argument("out", help="output folder")
    p.add_argument("--arch", choices=("qwen2", "llama"), default="qwen2")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=256)
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    for name, func, text in (
        ("webui", cmd_webui, "the Web UI: train, evaluate, chat, export, runs (a browser page)"),
        ("webchat", cmd_webchat, "a chat-only Web UI page"),
    ):
        p = command(name, func, text)
        p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
        p.add_argument("--port", type=int, default=7860)
        p.add_argument("--auth", default=None, help="user:password required to open the page")
        p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
        p.add_argument("--saves-dir", default="saves", help="run folders and the job queue (default saves)")
        p.add_argument("--data-dir", default="data", help="dataset folder shown first (default data)")
        p.add_argument(
            "--models-dir",
            action="append",
            default=None,
            metavar="DIR",
            help="folder of local models the page may load (repeatable; default models); hub ids (org/name) work too",
        )
        p.add_argument(
            "--allow-dir",
            action="append",
            default=[],
            metavar="DIR",
            help="another folder the page may read and write (repeatable); paths outside --saves-dir, --data-dir, "
            "--models-dir and these are refused",
        )
        p.add_argument("--lang", default="en", help="page language: en or zh (switchable on the page)")
    p = command("estimate", cmd_estimate, "predict a training run's peak memory (reads config.json; loads no weights)")
    p.add_argument("config", nargs="*", help=CONFIG_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    command("env", cmd_env, "versions, devices and bf16 support")
    command("version", cmd_version, "print the TuneForge version")
    return parser


def _hold_back_unused_backends(args) -> None:
    """This process runs this one command: keep the optional backends its config does not use out of it."""
    from tuneforge.config.backends import hold_back_unused

    if getattr(args, "config", None) is not None:
        hold_back_unused(*_split_config(args.config))
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
    from tuneforge.utils.logging import configure_output

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
