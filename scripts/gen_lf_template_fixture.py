"""Write tests/fixtures/lf_templates.json: what LLaMA-Factory 0.9.5's REAL template code encodes, for every template.

Run with LF importable (/tmp/lfimport.py stubs what it needs): .venv/bin/python scripts/gen_lf_template_fixture.py

Element strings are stored once in a table ("strings"); the encodings hold their indices. A fake tokenizer keeps every
element visible: encode(text) → [text], convert_tokens_to_ids(X) → "<id:X>",
BOS / EOS → "<BOS>" / "<EOS>". tests/unit/test_lf_templates.py runs ours with the same tokenizer over the same
conversations (lf_template_cases.py) and compares exactly. The llama3 tool prompt's date is fixed (LF uses today's).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
_lf: dict = {}
exec(Path("/tmp/lfimport.py").read_text(), _lf)  # noqa: S102 - puts LF on sys.path, defines TEMPLATES
TEMPLATES = _lf["TEMPLATES"]

import llamafactory.data.tool_utils as lf_tool_utils  # noqa: E402
from llamafactory.data.formatter import FunctionFormatter, ToolFormatter  # noqa: E402
from llamafactory.data.template import ReasoningTemplate  # noqa: E402

from lf_template_cases import CASES, FIXED_DATE, MODES, FakeTokenizer, tool_format_override  # noqa: E402


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.strptime(FIXED_DATE, "%d %b %Y")


lf_tool_utils.datetime = _FixedDatetime


def _configured(name: str, mode: dict, tool_format: str | None):
    """LF's get_template_and_fix_tokenizer, minus the tokenizer fixes."""
    template = copy.deepcopy(TEMPLATES[name])
    if tool_format is not None:
        slots = ["{{content}}"] if template.efficient_eos else ["{{content}}", {"eos_token"}]
        template.format_function = FunctionFormatter(slots=slots, tool_format=tool_format)
        template.format_tools = ToolFormatter(tool_format=tool_format)
    if isinstance(template, ReasoningTemplate):
        template.enable_thinking = mode["enable_thinking"]
        template.preserve_thinking = mode["preserve_thinking"]
    return template


def _run(template, case: dict, mode: dict) -> dict:
    tok = FakeTokenizer()
    messages, system, tools = case["messages"], case.get("system"), case.get("tools")
    out = {}
    for what in ("multiturn", "oneturn", "prompt"):
        try:
            if what == "multiturn":
                discard = mode["mask_history"] and not template.preserve_thinking
                out[what] = template.encode_multiturn(tok, copy.deepcopy(messages), system, tools, discard)
            elif what == "oneturn":
                out[what] = template.encode_oneturn(tok, copy.deepcopy(messages), system, tools)
            else:  # LF's chat engine: the prompt turns plus an empty reply
                paired = copy.deepcopy(messages[:-1]) + [{"role": "assistant", "content": ""}]
                out[what] = template.encode_oneturn(tok, paired, system, tools)[0]
        except Exception as e:  # noqa: BLE001 - recorded: ours must fail too
            out[what] = {"error": type(e).__name__}
    return out


def main() -> None:
    fixture: dict = {"date": FIXED_DATE, "templates": {}}
    for name, lf_template in TEMPLATES.items():
        reasoning = isinstance(lf_template, ReasoningTemplate)
        entry = {}
        for case_name, make_case in CASES.items():
            case = make_case(lf_template.thought_words, lf_template.tool_call_words)
            tool_format = tool_format_override(lf_template.format_tools.tool_format) if case.get("override") else None
            for mode_name, mode in MODES.items():
                if mode_name != "default" and not reasoning:
                    continue  # LF applies the thinking options to reasoning templates only: ours must equal default
                template = _configured(name, mode, tool_format)
                entry[f"{case_name}/{mode_name}"] = _run(template, case, mode)
        fixture["templates"][name] = entry
    strings: dict[str, int] = {}

    def packed(value):  # every element string once, in a table: the tool prompts repeat in many cases
        if isinstance(value, str):
            return strings.setdefault(value, len(strings))
        if isinstance(value, (list, tuple)):
            return [packed(v) for v in value]
        return value if not isinstance(value, dict) or "error" in value else {k: packed(v) for k, v in value.items()}

    fixture["templates"] = packed(fixture["templates"])
    fixture["strings"] = list(strings)
    path = ROOT / "tests/fixtures/lf_templates.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {path}: {len(fixture['templates'])} templates, {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
