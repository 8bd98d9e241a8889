"""The Web UI's model families (webui/model_families.yaml): the families of issue 16, each with the template
LLaMA-Factory 0.9.5 gives it (tests/fixtures/lf_model_templates.json, written by scripts/gen_lf_model_templates.py
from LF's extras/constants.py), and a template name we know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneforge.webui import families

LF = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "lf_model_templates.json").read_text("utf-8"))
NOT_IN_LF = {"Baichuan2-7B-Chat": "LF 0.9.5 lists no Baichuan model; our baichuan2 template predates issue 16"}
# issue 16's families -> a hub id of each that the list must offer, with LF's template for it
ISSUE_FAMILIES = {
    "Qwen3": ("Qwen/Qwen3-8B", "qwen3"),
    "Qwen3 Instruct-2507": ("Qwen/Qwen3-4B-Instruct-2507", "qwen3_nothink"),
    "Qwen3 Thinking-2507": ("Qwen/Qwen3-4B-Thinking-2507", "qwen3"),
    "Qwen3.5": ("Qwen/Qwen3.5-9B", "qwen3_5"),
    "Qwen2.5": ("Qwen/Qwen2.5-7B-Instruct", "qwen"),
    "Llama 3.x": ("meta-llama/Llama-3.3-70B-Instruct", "llama3"),
    "Llama 4": ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "llama4"),
    "Gemma 3": ("google/gemma-3-4b-it", "gemma3"),
    "Gemma 4": ("google/gemma-4-31B-it", "gemma4"),
    "DeepSeek V3": ("deepseek-ai/DeepSeek-V3", "deepseek3"),
    "DeepSeek R1": ("deepseek-ai/DeepSeek-R1", "deepseekr1"),
    "DeepSeek R1 distill": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "deepseekr1"),
    "GLM-4": ("zai-org/glm-4-9b-chat", "glm4"),
    "GLM-4.5": ("zai-org/GLM-4.5", "glm4_moe"),
    "GLM-4.7": ("zai-org/GLM-4.7-Flash", "glm4_7"),
    "Mistral Small 3.x": ("mistralai/Mistral-Small-3.2-24B-Instruct-2506", "mistral_small"),
    "Ministral": ("mistralai/Ministral-8B-Instruct-2410", "ministral"),
    "Ministral 3": ("mistralai/Ministral-3-8B-Instruct-2512", "ministral3"),
    "Phi-4": ("microsoft/phi-4", "phi4"),
    "Phi-4-mini": ("microsoft/Phi-4-mini-instruct", "phi4_mini"),
    "gpt-oss": ("openai/gpt-oss-20b", "gpt_oss"),
    "InternLM 3": ("internlm/internlm3-8b-instruct", "intern2"),
    "InternLM 2.5": ("internlm/internlm2_5-7b-chat", "intern2"),
    "ERNIE 4.5": ("baidu/ERNIE-4.5-21B-A3B-PT", "ernie_nothink"),
    "ERNIE 4.5 Thinking": ("baidu/ERNIE-4.5-21B-A3B-Thinking", "ernie"),
    "Hunyuan": ("tencent/Hunyuan-7B-Instruct", "hunyuan"),
    "Seed-OSS": ("ByteDance-Seed/Seed-OSS-36B-Instruct", "seed_oss"),
    "MiniMax M1": ("MiniMaxAI/MiniMax-M1-80k-hf", "minimax1"),
    "MiniMax M2": ("MiniMaxAI/MiniMax-M2", "minimax2"),
    "MiMo": ("XiaomiMiMo/MiMo-7B-RL", "mimo"),
    "Yi": ("01-ai/Yi-1.5-9B-Chat", "yi"),
    "Granite": ("ibm-granite/granite-3.3-8b-instruct", "granite3"),
    "SmolLM": ("HuggingFaceTB/SmolLM2-1.7B-Instruct", "smollm2"),
    "OLMo": ("ssec-uw/OLMo-7B-Instruct-hf", "olmo"),
    "Falcon-H1": ("tiiuae/Falcon-H1-7B-Instruct", "falcon_h1"),
    "EXAONE": ("LGAI-EXAONE/EXAONE-3.0-7.8B-Instruct", "exaone"),
    "LFM2": ("LiquidAI/LFM2.5-1.2B-Instruct", "lfm2"),
    "Moonlight": ("moonshotai/Moonlight-16B-A3B-Instruct", "moonlight"),
    "Kimi": ("moonshotai/Kimi-Dev-72B", "qwen"),
}


def test_the_lf_fixture_is_lf_0_9_5s_model_list():
    assert len(LF) == 628
    assert LF["Qwen/Qwen3-4B-Instruct-2507"] == ["qwen3_nothink", True]
    assert LF["Qwen/Qwen2.5-7B"] == ["qwen", False]  # a base model: LF's Web UI fills "default"


@pytest.mark.parametrize("name", list(families.families()))
def test_each_family_has_lfs_template_for_its_hub_id(name):
    spec = families.families()[name]
    if spec["path"] not in LF:
        assert name in NOT_IN_LF, f"{spec['path']} is not in LF 0.9.5's model list: use LF's hub id"
        return
    template, lf_webui_picks_it = LF[spec["path"]]
    if template is None:  # LF's group names no template (OLMo): ours must still be a known name
        return
    # LF's Web UI fills "default" for a base model; it also does so for a few chat models its name rule misses
    # (GLM-4.7-Flash, Phi-4-mini-instruct): the group's template is right for those
    assert spec["template"] == template or (not lf_webui_picks_it and spec["template"] == "default"), (
        f"{name}: LF's template is {template}"
    )


@pytest.mark.parametrize("family", list(ISSUE_FAMILIES))
def test_issue_16s_families_are_offered(family):
    hub_id, template = ISSUE_FAMILIES[family]
    offered = {spec["path"]: spec["template"] for spec in families.families().values()}
    assert offered.get(hub_id) == template, family


def test_every_family_template_is_a_known_template_name():
    """Needs the engine's templates.yaml with all of LF 0.9.5's names (issue 16)."""
    from tuneforge.data.template import TEMPLATE_NAMES

    unknown = sorted({spec["template"] for spec in families.families().values()} - set(TEMPLATE_NAMES))
    assert unknown == []


def test_the_dropdown_lists_custom_first_then_families_grouped_by_family():
    names = families.family_names()
    assert names[0] == families.CUSTOM and len(names) == len(set(names)) == len(families.families()) + 1
    assert names.index("Qwen3.5-9B") < names.index("Qwen3-8B") < names.index("Qwen2.5-7B-Instruct")
    assert families.guess_family("models/Qwen3-4B-Instruct-2507") == "Qwen3-4B-Instruct-2507"
    assert families.guess_family("/data/Meta-Llama-3.1-8B-Instruct/") == "Llama-3.1-8B-Instruct"
