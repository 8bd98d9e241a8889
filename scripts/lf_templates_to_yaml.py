"""Write src/tuneforge/data/templates.yaml from LLaMA-Factory 0.9.5's registered templates (the mechanical part).

Run once with LF importable (/tmp/lfimport.py stubs what LF needs): .venv/bin/python scripts/lf_templates_to_yaml.py
Each LF template becomes the keys that differ from the defaults, or `extends:` an earlier one when that is shorter;
templates are grouped by family with a comment, and the script checks that every template read back from the YAML
has LF's elements. Our own templates that LF lacks (OURS) are kept. Edit the YAML by hand afterwards as data.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
_lf: dict = {}
exec(Path("/tmp/lfimport.py").read_text(), _lf)  # noqa: S102 - puts LF on sys.path, defines TEMPLATES
TEMPLATES = _lf["TEMPLATES"]

import llamafactory.extras.constants as lf_constants  # noqa: E402
from llamafactory.data.formatter import StringFormatter  # noqa: E402
from llamafactory.data.mm_plugin import PLUGINS  # noqa: E402

from tuneforge.data.template import _definitions, template_info  # noqa: E402
from tuneforge.data.template_engine import DEFAULT_THOUGHT_WORDS, DEFAULT_TOOL_CALL_WORDS, Template  # noqa: E402

FAMILIES = [
    (
        "Generic formats (no one model family)",
        ["default", "empty", "alpaca", "fewshot", "chatml", "chatml_de", "vicuna"],
    ),
    (
        "Qwen (Alibaba): Qwen2 / 2.5, Qwen3 thinking and instruct, Qwen3.5 / 3.6, audio / omni / VL",
        [
            "qwen",
            "qwen3",
            "qwen3_nothink",
            "qwen3_5",
            "qwen3_5_nothink",
            "qwen3_6",
            "qwen2_audio",
            "qwen2_omni",
            "qwen3_omni",
            "qwen3_omni_nothink",
            "qwen2_vl",
            "qwen3_vl",
            "qwen3_vl_nothink",
        ],
    ),
    (
        "Llama (Meta): Llama 2, Llama 3.x, Llama 4, Llama 3.2 Vision",
        ["llama2", "llama2_zh", "llama3", "llama4", "mllama"],
    ),
    (
        "Mistral AI: Mistral / Mixtral, Ministral, Mistral Small, Pixtral",
        ["mistral", "ministral", "mistral_small", "ministral3", "pixtral"],
    ),
    (
        "Gemma (Google): Gemma 1-4, PaliGemma",
        ["gemma", "gemma2", "gemma3", "gemma3n", "gemma4", "gemma4n", "paligemma", "paligemma_chat"],
    ),
    ("DeepSeek: LLM / Coder, V2.5 / V3, R1", ["deepseek", "deepseekcoder", "deepseek3", "deepseekr1"]),
    (
        "GLM (Zhipu / Z.ai): ChatGLM3, GLM-4, GLM-Z1, GLM-4.5 / 4.6 / 4.7, GLM-4.xV",
        ["chatglm3", "glm4", "glmz1", "glm4_moe", "glm4_7", "aeva", "glm4v", "glm4_5v", "glm_ocr"],
    ),
    ("Phi (Microsoft): Phi-3, Phi-4", ["phi", "phi_small", "phi4", "phi4_mini"]),
    ("gpt-oss (OpenAI), Harmony format", ["gpt_oss"]),
    ("InternLM (Shanghai AI Lab): InternLM2 / 3, InternVL, Intern-S1", ["intern2", "intern_vl", "intern_s1"]),
    ("ERNIE 4.5 (Baidu)", ["ernie", "ernie_nothink", "ernie_vl"]),
    ("Hunyuan (Tencent)", ["hunyuan", "hunyuan_small", "hy3"]),
    ("Seed (ByteDance)", ["seed_coder", "seed_oss"]),
    ("MiniMax", ["minimax1", "minimax2"]),
    ("MiMo (Xiaomi)", ["mimo", "mimo_v2", "mimo_vl"]),
    ("Moonshot: Moonlight, Kimi-VL", ["moonlight", "kimi_vl"]),
    ("Granite (IBM)", ["granite3", "granite3_vision", "granite4"]),
    (
        "LLaVA and friends (the chat format of their language model)",
        [
            "llava",
            "llava_next",
            "llava_next_llama3",
            "llava_next_mistral",
            "llava_next_qwen",
            "llava_next_yi",
            "llava_next_video",
            "llava_next_video_mistral",
            "llava_next_video_yi",
            "video_llava",
        ],
    ),
    ("Yi (01.AI)", ["yi", "yi_vl"]),
    ("MiniCPM (OpenBMB)", ["cpm4", "minicpm_v", "minicpm_v_4_6", "minicpm_o"]),
    ("Ling / Bailing (inclusionAI)", ["bailing", "bailing_v2"]),
    ("LFM (Liquid AI)", ["lfm2", "lfm2_vl"]),
    ("Falcon (TII)", ["falcon", "falcon_h1"]),
    (
        "Other families",
        [
            "baichuan2",
            "breeze",
            "cohere",
            "dbrx",
            "dots_ocr",
            "exaone",
            "index",
            "keye_vl",
            "olmo",
            "openchat",
            "openchat-3.6",
            "opencoder",
            "sailor",
            "smollm",
            "smollm2",
            "solar",
            "starchat",
            "telechat2",
            "xuanyuan",
            "youtu",
            "youtu_vl",
            "yuan",
            "zephyr",
        ],
    ),
]
# Models for templates LF's model list does not name.
MODELS = {
    "default": "any base model (LF's default format)",
    "empty": "no format: the texts as they are",
    "alpaca": "Alpaca-style instruction data",
    "fewshot": "few-shot prompts (the turns separated by blank lines)",
    "chatml": "ChatML models (e.g. OpenHermes, Dolphin)",
    "chatml_de": "German ChatML models",
    "bailing": "Ling / Bailing Lite, Plus",
    "bailing_v2": "Ling 2.0 mini / flash",
    "glm4_7": "GLM-4.7",
    "granite4": "Granite 4.0",
    "hy3": "Hunyuan 3 (HY3)",
    "mimo_v2": "MiMo-V2-Flash",
    "olmo": "OLMo 2",
    "paligemma_chat": "PaliGemma (chat fine-tunes)",
    "phi4_mini": "Phi-4-mini",
    "qwen3_5_nothink": "Qwen3.5 with thinking off",
    "qwen3_6": "Qwen3.6",
    "sailor": "Sailor",
    "starchat": "StarChat",
    "baichuan2": "Baichuan 2 Chat (TuneForge's own)",
}
# A comment above an entry, where LF's definition holds a surprise.
NOTES = {
    "phi_small": "LF's prefix is {'<|endoftext|>'}, a set naming neither BOS nor EOS, which LF encodes as nothing",
    "phi4_mini": "the tools go in raw (LF's StringFormatter as format_tools); calls are written in the default format",
    "qwen3_nothink": "LF 0.9.5's example configs use this one",
    "baichuan2": "TuneForge's own (not in LF 0.9.5)",
}
OURS = {"baichuan2": {"user": "<reserved_106>{{content}}<reserved_107>", "efficient_eos": True}}
KIND = {"Template": "plain", "ReasoningTemplate": "reasoning", "Llama2Template": "llama2"}
KIND["Glm47ReasoningTemplate"] = "glm47_reasoning"
SLOT_KEYS = ("prefix", "system", "user", "assistant", "observation", "function", "tools")


def _element(e):
    if isinstance(e, set):  # LF encodes a set naming neither as nothing (phi_small's {"<|endoftext|>"} prefix)
        return "{{bos_token}}" if "bos_token" in e else "{{eos_token}}" if "eos_token" in e else ""
    return {"token": e["token"]} if isinstance(e, dict) else e


def slot_yaml(elements: list):
    """LF elements → a compact string when joining loses no boundary, else a list."""
    elements = [e for e in elements if e != "" and _element(e) != ""]
    strings_adjacent = any(
        isinstance(a, str) and isinstance(b, str) for a, b in zip(elements, elements[1:], strict=False)
    )
    if not strings_adjacent and not any(isinstance(e, dict) for e in elements):
        return "".join(_element(e) for e in elements)
    return [_element(e) for e in elements]


def _short_models(name: str) -> str:
    if name in MODELS:
        return MODELS[name]
    found = [m for m, t in lf_constants.DEFAULT_TEMPLATE.items() if t == name]
    size = r"-(\d+x)?\d+(\.\d+)?[BMK](-A\d+(\.\d+)?B)?(?=-|$)|-E\d+B"
    quant = r"-(GPTQ-)?Int[48]|-AWQ|-\d+bits?|-GPTQ|-FP8"
    short = list(dict.fromkeys(re.sub(quant, "", re.sub(size, "", m.split("/")[-1])) for m in found))
    return ", ".join(short[:5]) + (", ..." if len(short) > 5 else "")


def lf_spec(name: str) -> dict:
    """One LF template as our keys, every key present."""
    t = TEMPLATES[name]
    plugin = None
    if type(t.mm_plugin).__name__ != "BasePlugin":
        plugin_name = {v: k for k, v in PLUGINS.items()}[type(t.mm_plugin)]
        args = {k: v for k, v in vars(t.mm_plugin).items() if v is not None and k != "expand_mm_tokens"}
        plugin = {"name": plugin_name, **args}
    tools_slot = slot_yaml(t.format_tools.slots) if isinstance(t.format_tools, StringFormatter) else None
    return {
        "kind": KIND[type(t).__name__],
        **{k: slot_yaml(getattr(t, f"format_{k}").slots) for k in SLOT_KEYS[:-1]},
        "tools": tools_slot,
        "tool_format": t.format_function.tool_format,
        "default_system": t.default_system,
        "stop_words": list(t.stop_words),
        "thought_words": list(t.thought_words),
        "tool_call_words": list(t.tool_call_words),
        "efficient_eos": t.efficient_eos,
        "replace_eos": t.replace_eos,
        "replace_jinja_template": t.replace_jinja_template,
        "enable_thinking": t.enable_thinking,
        "mm_plugin": plugin,
    }


DEFAULTS = {
    "kind": "plain",
    "prefix": "",
    "system": "{{content}}",
    "user": "{{content}}",
    "tools": None,
    "tool_format": "default",
    "default_system": "",
    "stop_words": [],
    "thought_words": list(DEFAULT_THOUGHT_WORDS),
    "tool_call_words": list(DEFAULT_TOOL_CALL_WORDS),
    "efficient_eos": False,
    "replace_eos": False,
    "replace_jinja_template": False,
    "enable_thinking": True,
    "mm_plugin": None,
}


def resolved(spec: dict) -> dict | None:
    """What our Template makes of a spec (the defaults filled in), as comparable data."""
    try:
        t = Template(name="x", **{k: v for k, v in spec.items() if k != "models"})
    except ValueError:  # an impossible mix while trying keys out
        return None
    return {k: t._slots[k] for k in SLOT_KEYS} | {k: getattr(t, k) for k in DEFAULTS if k not in SLOT_KEYS}


def minimal(full: dict, base: dict | None) -> dict:
    """The fewest keys that, over `base` (or the defaults), resolve like `full`."""
    want = resolved(full)
    start = dict(base or {})
    missing = object()
    spec = {k: v for k, v in full.items() if start.get(k, DEFAULTS.get(k, missing)) != v}
    for k in list(spec):  # drop keys the resolution gives anyway (observation = user, function = assistant, ...)
        trial = {kk: vv for kk, vv in spec.items() if kk != k}
        if resolved({**start, **trial}) == want:
            spec = trial
    assert resolved({**start, **spec}) == want
    return spec


def _scalar(v) -> str:
    """A YAML scalar: strings double-quoted with JSON escapes (valid YAML) unless plainly safe."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str) and re.fullmatch(r"[A-Za-z][\w.-]*", v) and v not in ("true", "false", "null", "yes", "no"):
        return v
    return json.dumps(v, ensure_ascii=False)


def _value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_scalar(x)}" for k, x in v.items()) + "}"
    return _scalar(v)


def main() -> None:
    names = [n for _, group in FAMILIES for n in group]
    missing = set(TEMPLATES) - set(names)
    assert not missing, missing
    full = {n: lf_spec(n) for n in TEMPLATES}
    for name, spec in OURS.items():  # every key present, as for LF's
        t = Template(name=name, **spec)
        full[name] = DEFAULTS | {k: getattr(t, k) for k in SLOT_KEYS} | spec
    out = [
        "# Prompt templates as data, read by tuneforge/data/template.py: every LLaMA-Factory 0.9.5 template,",
        "# token for token (tests/unit/test_lf_templates.py), plus our own. Written first by",
        "# scripts/lf_templates_to_yaml.py; edit it as data. docs/templates.md lists them and explains the keys.",
        "#",
        "# A slot is a string or a list of elements; each element is tokenized on its own (as LF does):",
        "#   text with {{content}} (the message) and {{idx}} (the turn number, user slot only)",
        "#   {{bos_token}} / {{eos_token}}   the tokenizer's BOS / EOS id (left out when it has none)",
        "#   {token: X}                      X's id, one id (convert_tokens_to_ids)",
        "# A string is split at {{bos_token}} / {{eos_token}} into elements: 'a{{content}}{{eos_token}}' is",
        "# ['a{{content}}', '{{eos_token}}'].",
        "",
    ]
    defs: dict[str, dict] = {}
    for comment, group in FAMILIES:
        out.append(f"# ---- {comment} " + "-" * max(3, 110 - len(comment)))
        for name in group:
            spec = full[name]
            best, best_spec = None, minimal(spec, None)
            for other in defs:
                trial = minimal(spec, defs[other])
                if len(trial) < len(best_spec) and len(trial) <= 3:
                    best, best_spec = other, trial
            defs[name] = {**(defs[best] if best else {}), **best_spec}
            body = {"models": _short_models(name)}
            body |= {"extends": best} if best else {}
            body |= best_spec
            out += [f"# {NOTES[name]}"] if name in NOTES else []
            out.append(f"{_scalar(name)}:")
            out += [f"  {k}: {_value(v)}" for k, v in body.items()]
        out.append("")
    path = ROOT / "src/tuneforge/data/templates.yaml"
    path.write_text("\n".join(out), encoding="utf-8")
    _definitions.cache_clear()
    assert all(resolved(template_info(n)) == resolved(full[n]) for n in defs), "the YAML does not read back"
    print(f"wrote {path} ({len(defs)} templates)")


if __name__ == "__main__":
    main()
