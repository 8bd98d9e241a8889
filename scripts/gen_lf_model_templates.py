"""Write tests/fixtures/lf_model_templates.json from LLaMA-Factory 0.9.5's model list (src/llamafactory/extras/
constants.py): hub id -> [the template of its register_model_group, whether LF's Web UI picks that template]
(DEFAULT_TEMPLATE: names with -Chat / -Distill / -Instruct / -Thinking, or multimodal groups; for the others, base
models, LF's Web UI fills "default"). The constants are read as source (ast), nothing of LF is imported.

    python scripts/gen_lf_model_templates.py [path/to/llamafactory-0.9.5]
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "lf_model_templates.json"
CHAT_SUFFIXES = ("-Chat", "-Distill", "-Instruct", "-Thinking")  # LF's register_model_group rule


def model_groups(constants: Path):
    for node in ast.parse(constants.read_text(encoding="utf-8")).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "register_model_group"):
            continue
        kw = {k.arg: k.value for k in call.keywords}
        template = ast.literal_eval(kw["template"]) if "template" in kw else None
        multimodal = ast.literal_eval(kw["multimodal"]) if "multimodal" in kw else False
        models = {}
        for name, sources in zip(kw["models"].keys, kw["models"].values, strict=True):
            hubs = {k.attr: ast.literal_eval(v) for k, v in zip(sources.keys, sources.values, strict=True)}
            if "DEFAULT" in hubs:
                models[ast.literal_eval(name)] = hubs["DEFAULT"]
        yield template, multimodal, models


def main(lf_root: Path) -> None:
    out: dict[str, dict] = {}
    for template, multimodal, models in model_groups(lf_root / "src" / "llamafactory" / "extras" / "constants.py"):
        for name, hub_id in models.items():
            picked = template is not None and (any(s in name for s in CHAT_SUFFIXES) or multimodal)
            out[hub_id] = [template, picked]  # a later group registering the same id wins, as in LF's dicts
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(out.items())]
    OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"{len(out)} hub ids -> {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lf/llamafactory-0.9.5"))
