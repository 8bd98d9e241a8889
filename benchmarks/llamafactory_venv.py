"""LLaMA-Factory 0.9.5 in its own venv beside ours: the benchmark peer of benchmarks/vs_llamafactory.py.

    python benchmarks/llamafactory_venv.py [--venv .venv-llamafactory] [--version 0.9.5]

Never a dependency of TuneForge. Idempotent: an existing venv is reused and pip keeps what already satisfies.
torch is pinned to the exact build our venv runs (2.13.0+cpu, a wheel on local disk: PyPI has no `+cpu` build,
so pip cannot swap in the CUDA torch), installed first and held by a constraint file for every later install.
torchvision / torchaudio are left out (PyPI's wheels fail to load their ops beside the CPU torch, and
torchvision can pull the CUDA torch): LF goes in with --no-deps, then its own requirements minus those two
(its caps apply: transformers<=5.6, trl<=0.24, peft 0.18, datasets<=4.0, accelerate<=1.11), plus bitsandbytes
for the qlora row. LF imports torchaudio at the top of data/mm_plugin.py (it uses it only to read audio files):
a stub package stands in for it, raising a clear ImportError on first use. Prints one JSON line: what is
installed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = {"torch", "torchvision", "torchaudio"}  # torch: installed first, pinned; the other two not at all
EXTRAS = ("bitsandbytes",)  # LF's `bitsandbytes` extra: the qlora row
REPORTED = ("llamafactory", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes")
TORCHAUDIO_STUB = '''"""Not torchaudio: a stub so that LLaMA-Factory imports without it (llamafactory_venv.py).

LF imports torchaudio at the top of data/mm_plugin.py and uses it only to read audio. PyPI's torchaudio cannot
load beside the CPU torch; text training never touches it. No dist-info: transformers sees no torchaudio.
"""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError(f"torchaudio.{name}: torchaudio is a stub in this benchmark venv (no audio)")
'''


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


def run_python(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def lf_requirements(python: Path) -> list[str]:
    """LF's own install requirements (its metadata), without extras and without LEFT_OUT."""
    code = "import importlib.metadata as m, json; print(json.dumps(m.requires('llamafactory') or []))"
    reqs = json.loads(run_python(python, code))
    return [r for r in reqs if "extra ==" not in r and requirement_name(r) not in LEFT_OUT]


def site_packages(python: Path) -> Path:
    return Path(run_python(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())


def installed(python: Path) -> dict:
    code = (
        "import importlib.metadata as m, json\n"
        f"names = {list(REPORTED)!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))"
    )
    return json.loads(run_python(python, code))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(ROOT / ".venv-llamafactory"))
    parser.add_argument("--version", default="0.9.5", help="llamafactory release")
    opts = parser.parse_args(argv)
    import torch  # our venv's torch: the build LF's venv gets

    torch_pin = f"torch=={torch.__version__}"
    target = Path(opts.venv).resolve()
    python = target / "bin" / "python"
    if not python.is_file():
        venv.EnvBuilder(with_pip=True).create(target)
    constraints = target / "constraints.txt"
    constraints.write_text(torch_pin + "\n", encoding="utf-8")
    pip(python, torch_pin)
    pip(python, "--no-deps", f"llamafactory=={opts.version}", "-c", str(constraints))
    pip(python, *lf_requirements(python), *EXTRAS, "-c", str(constraints))
    stub = site_packages(python) / "torchaudio"
    stub.mkdir(exist_ok=True)
    (stub / "__init__.py").write_text(TORCHAUDIO_STUB, encoding="utf-8")
    run_python(python, "import llamafactory.train.tuner")  # fails loudly when LF cannot import here
    versions = installed(python)
    if versions["torch"] != torch.__version__:
        raise SystemExit(f"LF's venv has torch {versions['torch']}, ours {torch.__version__}")
    print(json.dumps({"venv": str(target), "cli": str(target / "bin" / "llamafactory-cli"), **versions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
