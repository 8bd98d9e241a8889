"""Which cases LLaMA-Factory's own templates render like the official chat templates kept as test fixtures.

LLaMA-Factory 0.9.5's template definitions are the spec for our names, so a case where LF's rendering differs from the
model's official chat_template is a fact about LF's format, not a bug of ours: tests/fixtures/chat_templates/
families.yaml lists it in the family's `differs` (with the first differing characters this script prints) and
tests/unit/test_official_templates.py compares the other cases.

    .venv/bin/python scripts/compare_official_templates.py [--lf SRC] [--ours] [--readme]

--lf     LLaMA-Factory 0.9.5's source folder (default /tmp/lf/llamafactory-0.9.5/src; not installed in our venv,
         its torchaudio import is stubbed)
--ours   also render our named template and say where it differs from LF's
--readme rewrite tests/fixtures/chat_templates/README.md (sources and the table of identical / differing cases)
Flags: LISTED-BUT-SAME (a `differs` entry LF no longer needs) and UNLISTED (LF differs, the case is compared).
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.machinery
import json
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import official_templates as ot  # noqa: E402


def load_lf(src: str) -> dict:
    class _Stub(types.ModuleType):
        def __getattr__(self, k):
            if k.startswith("__"):
                raise AttributeError(k)
            return _Stub(k)

        def __call__(self, *a, **k):
            return _Stub("x")

    stub = _Stub("torchaudio")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    sys.modules.setdefault("torchaudio", stub)
    sys.path.insert(0, src)
    from llamafactory.data.template import TEMPLATES

    return TEMPLATES


def lf_prompt(templates: dict, tok, name: str, case: str) -> str:
    """LF's prompt for generation: encode_oneturn's prompt ids for the case plus a dummy reply, decoded."""
    system, tools, turns = ot.CASES[case]
    template = copy.deepcopy(templates[name])
    template.enable_thinking = case not in ot.THINKING_OFF
    template.fix_special_tokens(tok)
    messages = [{"role": role, "content": content} for role, content in turns] + [{"role": "assistant", "content": "x"}]
    prompt_ids, _ = template.encode_oneturn(tok, messages, system or None, json.dumps(tools) if tools else None)
    return tok.decode(prompt_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _try(fn) -> str:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - an official template may refuse a case (e.g. no system role)
        return f"<raises {type(e).__name__}: {e}>"


def _ours(base: Path, family, case: str) -> str:
    tok = ot.family_tokenizer(base, family)
    return ot.our_prompt(tok, ot.our_template(tok, family, case), case)


def compare(templates: dict, base: Path, with_ours: bool) -> list[dict]:
    rows = []
    for family in ot.load_families():
        for case in ot.CASES:
            official = _try(functools.partial(_official, base, family, case))
            lf = _try(functools.partial(_lf, templates, base, family, case))
            row = {"fixture": family.fixture, "family": family, "case": case, "same": lf == official}
            row["diff"] = "" if row["same"] else ot.first_difference(lf, official).replace("ours", "LF")
            if with_ours:
                mine = _try(functools.partial(_ours, base, family, case))
                row["ours"] = "same as LF" if mine == lf else ot.first_difference(mine, lf).replace("official", "LF")
            rows.append(row)
    return rows


def _official(base: Path, family, case: str) -> str:
    return ot.official_prompt(ot.family_tokenizer(base, family), family, case)


def _lf(templates: dict, base: Path, family, case: str) -> str:
    return lf_prompt(templates, ot.family_tokenizer(base, family), family.template, case)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # the tokens' pipes would split a Markdown table cell


def readme(rows: list[dict]) -> str:
    families = ot.load_families()
    out = [
        "# Official chat templates",
        "",
        "Each `*.jinja` here is a model's own chat template, as published with the model (its",
        "`tokenizer_config.json` / `chat_template.jinja`), named after the hub id.",
        "`tests/unit/test_official_templates.py` renders the prompt for generation with it",
        "(`apply_chat_template(..., add_generation_prompt=True)`) and with our template of the same family, for six",
        "conversations (`tests/official_templates.py`): **single** (one user turn), **multi** (user, assistant, user),",
        "**system** (multi with a system prompt), **tools** (system + tools + one user turn), **tool_calls** (tools,",
        "then a tool call and its result in the history) and **no_think** (system, with `enable_thinking=False` given",
        "to both). The tokenizer is the tiny test one with the family's special tokens and BOS / EOS; a template that",
        "prints today's date sees 2026-01-15.",
        "",
        "LLaMA-Factory 0.9.5's definitions are the spec for our template names, so where LF's format is not the",
        "official one for a case, the case is not compared: `families.yaml` lists it under the family's `differs` with",
        "the reason. This file is written by `scripts/compare_official_templates.py --readme`, which renders every",
        "case with LF's own code and checks that list.",
        "",
        "The files were copied verbatim; where the source held the template as a string literal (JSON, C++, JS,",
        "Python), its escapes were decoded. Where two sources were found, they were byte-identical unless noted.",
        "",
        "## Sources",
        "",
        "| file | hub id | our template | copied from |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| `{f.fixture}` | {f.hub} | `{f.template}` | {_cell(f.source)} |" for f in families]
    out += ["", "## Identical and differing cases", "", "| file | our template | identical | differs (why) |"]
    out += ["| --- | --- | --- | --- |"]
    for f in families:
        same = [r["case"] for r in rows if r["fixture"] == f.fixture and r["same"]]
        differ = "; ".join(f"**{case}**: {_cell(why)}" for case, why in f.differs.items())
        out.append(f"| `{f.fixture}` | `{f.template}` | {', '.join(same) or '-'} | {differ or '-'} |")
    full = sorted({f.template for f in families if not {"single", "multi", "system"} & set(f.differs)})
    out += [
        "",
        f"Families with single, multi and system identical ({len(full)}): {', '.join(f'`{n}`' for n in full)}.",
        "",
    ]
    return "\n".join(out).replace("\n\n\n", "\n\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lf", default="/tmp/lf/llamafactory-0.9.5/src")
    parser.add_argument("--ours", action="store_true")
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args(argv)
    templates = load_lf(args.lf)
    from tuneforge.model.tiny import build_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        build_tokenizer(600).save_pretrained(tmp)
        rows = compare(templates, Path(tmp), args.ours)
    problems = 0
    for r in rows:
        f, case = r["family"], r["case"]
        listed = case in f.differs
        flag = "LISTED-BUT-SAME " if listed and r["same"] else "UNLISTED " if not listed and not r["same"] else ""
        problems += bool(flag)
        print(f"{flag}{f.template:16} {f.fixture[:-6]:46} {case:10} {'same' if r['same'] else r['diff']}")
        if "ours" in r:
            print(f"    ours: {r['ours']}")
    if args.readme:
        (ot.FIXTURES / "README.md").write_text(readme(rows), encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
