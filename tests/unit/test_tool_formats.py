"""Every tool format is LLaMA-Factory 0.9.5's, byte for byte: tool prompts, call texts and what is extracted from
model output, compared with what LF's own tool_utils.py produced (tests/fixtures/lf_tool_formats.json, written by
scripts/gen_lf_tool_fixture.py). Plus `harmony` (gpt-oss), which LF lacks, and our errors where LF would crash."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tuneforge.chat.tools import call_marker, split_tool_calls
from tuneforge.data.tool_formats import (
    TOOL_FORMAT_NAMES,
    FunctionCall,
    calls_from_json,
    get_tool_format,
    tools_from_json,
)
from tuneforge.errors import UserError

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "lf_tool_formats.json").read_text(encoding="utf-8"))
LF_FORMATS = list(FIXTURE["formats"])


def _calls(key: str) -> list[FunctionCall]:
    return [FunctionCall(c["name"], json.dumps(c["arguments"], ensure_ascii=False)) for c in FIXTURE["calls"][key]]


def test_every_lf_format_is_registered_and_harmony_is_ours():
    assert [*LF_FORMATS, "harmony"] == TOOL_FORMAT_NAMES
    assert len(LF_FORMATS) == 13
    with pytest.raises(UserError, match="unknown tool format 'hermes'") as e:
        get_tool_format("hermes")
    assert "qwen" in e.value.fix and "harmony" in e.value.fix


@pytest.mark.parametrize("name", LF_FORMATS)
def test_tool_prompt_is_lfs(name):
    fmt = get_tool_format(name, date=FIXTURE["llama3_date"])
    for key, tools in FIXTURE["tool_lists"].items():
        assert fmt.tool_prompt(tools) == FIXTURE["formats"][name]["tool_prompt"][key]["ok"], key
    assert fmt.tool_prompt([]) == ""


@pytest.mark.parametrize("name", LF_FORMATS)
def test_function_text_is_lfs(name):
    fmt = get_tool_format(name)
    for key, expected in FIXTURE["formats"][name]["function_text"].items():
        if "error" in expected:  # LF: "GLM-4 does not support parallel functions." — ours says it as a UserError
            with pytest.raises(UserError, match="parallel"):
                fmt.function_text(_calls(key))
        else:
            assert fmt.function_text(_calls(key)) == expected["ok"], key


@pytest.mark.parametrize("name", LF_FORMATS)
def test_extract_is_lfs_on_calls_text_malformed_and_plain_output(name):
    fmt = get_tool_format(name)
    for key, case in FIXTURE["formats"][name]["extract"].items():
        ours = fmt.extract(case["text"])
        if "error" in case:  # LF crashes (e.g. json.loads("[1, 2]") then 1["name"]); ours gives the text back
            assert ours == case["text"], key
        elif isinstance(case["ok"], list):
            assert isinstance(ours, list) and [list(c) for c in ours] == case["ok"], key
            assert all(isinstance(c, FunctionCall) for c in ours)
        else:
            assert ours == case["ok"], key


@pytest.mark.parametrize("name", [n for n in LF_FORMATS if n != "glm4_moe"])
def test_extract_inverts_function_text(name):
    """LF: the extractor "should be an inverse function of function_formatter" (glm4_moe's is Qwen's JSON one, as in
    LF, so its own XML calls are not found; minimax2's calls need the <minimax:tool_call> wrapper the model writes;
    lfm2 writes strings unescaped, so a string holding a double quote does not come back)."""
    fmt = get_tool_format(name)
    arguments = {"query": "北京天气 ☀", "filters": {"lang": "zh", "tags": ["a", "b"]}, "exact": True, "note": None}
    text = fmt.function_text([FunctionCall("search_docs", json.dumps(arguments, ensure_ascii=False))])
    if name == "minimax2":
        text = "<minimax:tool_call>\n" + text + "\n</minimax:tool_call>"
    got = fmt.extract(text)
    assert [c.name for c in got] == ["search_docs"]
    assert json.loads(got[0].arguments) == arguments


def test_llama3_date_is_a_parameter_and_today_by_default():
    tools = FIXTURE["tool_lists"]["weather"]
    assert "Today Date: 01 Jan 2030\n" in get_tool_format("llama3", date="01 Jan 2030").tool_prompt(tools)
    today = datetime.now().strftime("%d %b %Y")
    assert f"Today Date: {today}\n" in get_tool_format("llama3").tool_prompt(tools)


def test_bad_tools_and_calls_are_one_line_user_errors():
    with pytest.raises(UserError, match="bad tool description"):
        get_tool_format("qwen3_5").tool_prompt([{"description": "no name"}, 3])
    with pytest.raises(UserError, match="bad function call"):
        get_tool_format("qwen").function_text([FunctionCall("f", "{not json")])
    with pytest.raises(UserError, match="not valid JSON"):
        tools_from_json("[{")
    with pytest.raises(UserError, match="list of function descriptions"):
        tools_from_json('[{"description": "x"}]')
    with pytest.raises(UserError, match="needs 'name' and 'arguments'"):
        calls_from_json('{"name": "f"}')
    assert tools_from_json('{"name": "f"}') == [{"name": "f"}]
    assert calls_from_json('[{"name": "f", "arguments": {"a": "é"}}]') == [FunctionCall("f", '{"a": "é"}')]


def test_a_tool_without_parameters_is_described_where_lf_would_crash():
    prompt = get_tool_format("default").tool_prompt([{"name": "now", "description": "The time"}])
    assert "> Tool Name: now\nTool Description: The time\nTool Args:\n\n" in prompt


# ---- harmony (gpt-oss) ----------------------------------------------------------------------------------------
HARMONY_CALL = '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>'


def test_harmony_writes_calls_as_the_harmony_spec_and_reads_both_recipient_placements():
    fmt = get_tool_format("harmony")
    assert fmt.function_text([FunctionCall("get_weather", '{"city": "Paris"}')]) == HARMONY_CALL
    two = fmt.function_text([FunctionCall("a", "{}"), FunctionCall("b", '{"x": 1}')])
    assert two == (
        "<|channel|>commentary to=functions.a <|constrain|>json<|message|>{}<|call|><|start|>assistant"
        '<|channel|>commentary to=functions.b <|constrain|>json<|message|>{"x": 1}<|call|>'
    )
    assert fmt.extract(two) == [FunctionCall("a", "{}"), FunctionCall("b", '{"x": 1}')]
    thought = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant"
    assert fmt.extract(thought + HARMONY_CALL) == [FunctionCall("get_weather", '{"city": "Paris"}')]
    header_form = '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city":"Rome"}'
    assert fmt.extract(header_form) == [FunctionCall("get_weather", '{"city": "Rome"}')]  # <|call|> is a stop token
    assert fmt.extract("<|channel|>commentary to=functions.f <|message|>{oops<|call|>") == (
        "<|channel|>commentary to=functions.f <|message|>{oops<|call|>"
    )
    assert fmt.extract("plain answer") == "plain answer"


def test_harmony_tool_prompt_is_the_developer_message_of_gpt_oss_official_template():
    tools = FIXTURE["tool_lists"]["weather"] + [{"name": "get_time", "description": "The time now"}]
    assert get_tool_format("harmony").tool_prompt(tools) == (
        "<|end|><|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Get the current weather in a city\ntype get_weather = (_: {\n"
        "// The city name\ncity: string,\n"
        '// Temperature unit\nunit?: "celsius" | "fahrenheit",\n'
        "// Forecast days\ndays?: number[],\n"
        "}) => any;\n\n"
        "// The time now\ntype get_time = () => any;\n\n"
        "} // namespace functions"
    )
    nested = get_tool_format("harmony").tool_prompt(FIXTURE["tool_lists"]["search_and_time"])
    # the official template's quirk, kept: a nested object's field types follow a newline and a 16-space indent
    assert "filters: {\nlang: \n                string, year?: \n                number},\nexact?: boolean,\n" in nested


# ---- model output → API tool_calls (chat/tools.py) ----------------------------------------------------------------
PARIS = '{"city": "Paris"}'
FAMILY_OUTPUTS = [  # (family, tool format, what the model writes, text before the call, calls)
    (
        "Qwen3 / Hermes",
        "qwen",
        'On it.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        "On it.",
        [("get_weather", PARIS)],
    ),
    (
        "Qwen3 parallel",
        "qwen",
        '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n'
        '{"name": "b", "arguments": {"x": [1, "é"]}}\n</tool_call>',
        "",
        [("a", "{}"), ("b", '{"x": [1, "é"]}')],
    ),
    (
        "Qwen3.5",
        "qwen3_5",
        "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "<parameter=days>\n[1, 2]\n</parameter>\n</function>\n</tool_call>",
        "Checking.",
        [("get_weather", '{"city": "Paris", "days": [1, 2]}')],
    ),
    ("Llama 3 / 4", "llama3", '{"name": "get_weather", "parameters": {"city": "Paris"}}', "", [("get_weather", PARIS)]),
    (
        "Llama 3 parallel",
        "llama3",
        '[{"name": "a", "parameters": {}}, {"name": "b", "parameters": {"y": null}}]',
        "",
        [("a", "{}"), ("b", '{"y": null}')],
    ),
    ("GLM-4", "glm4", 'get_weather\n{"city": "Paris"}', "", [("get_weather", PARIS)]),
    (
        "Mistral, [TOOL_CALLS] decoded away",
        "mistral",
        '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
        "",
        [("get_weather", PARIS)],
    ),
    (
        "Mistral, [TOOL_CALLS] kept",
        "mistral",
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]',
        "",
        [("get_weather", PARIS)],
    ),
    (
        "DeepSeek V3 (LF's deepseek3 uses default)",
        "default",
        'Let me look.\nAction: get_weather\nAction Input: {"city": "Paris"}',
        "Let me look.",
        [("get_weather", PARIS)],
    ),
    (
        "gpt-oss (harmony)",
        "harmony",
        '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>',
        "",
        [("get_weather", PARIS)],
    ),
    (
        "MiniMax-M1",
        "minimax1",
        'Sure.\n<tool_calls>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_calls>',
        "Sure.",
        [("get_weather", PARIS)],
    ),
    (
        "MiniMax-M2",
        "minimax2",
        '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Paris'
        "</parameter>\n</invoke>\n</minimax:tool_call>",
        "",
        [("get_weather", PARIS)],
    ),
    (
        "Seed-OSS",
        "seed_oss",
        "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Paris</parameter>\n</function>\n</seed:tool_call>",
        "",
        [("get_weather", PARIS)],
    ),
    (
        "Gemma 4",
        "gemma4",
        '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>',
        "",
        [("get_weather", PARIS)],
    ),
    ("LFM2", "lfm2", '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>', "", [("get_weather", PARIS)]),
    (
        "GLM-4.5 (official)",
        "glm4_moe",
        "Let me see.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
        "Let me see.",
        [("get_weather", PARIS)],
    ),
    (
        "GLM-4.7 (official)",
        "glm4_moe",
        "<tool_call>a<arg_key>n</arg_key><arg_value>2</arg_value></tool_call><tool_call>b</tool_call>",
        "",
        [("a", '{"n": 2}'), ("b", "{}")],
    ),
    (
        "GLM-4.5 as LF trains it",
        "glm4_moe",
        "\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n<tool_call>get_time",
        "",
        [("get_weather", PARIS), ("get_time", "{}")],
    ),
    (
        "Ling",
        "ling",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        "",
        [("get_weather", PARIS)],
    ),
]


@pytest.mark.parametrize(
    ("family", "fmt", "output", "before", "calls"), FAMILY_OUTPUTS, ids=[f[0] for f in FAMILY_OUTPUTS]
)
def test_each_familys_call_becomes_api_tool_calls(family, fmt, output, before, calls):
    assert split_tool_calls(output, fmt) == (before, calls)
    marker = call_marker(fmt)  # streaming holds text back from here ("" = the whole reply)
    assert marker == "" or marker in output


MALFORMED_OUTPUTS = [
    ("qwen", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'),
    ("qwen", '<tool_call>\n{"name": "get_weather"}\n</tool_call>'),
    ("qwen", '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call> and some text after'),
    ("llama3", '{"name": "get_weather", "arguments": {"city": "Paris"}}'),  # llama3 calls say "parameters"
    ("llama3", "Sure! {not json"),
    ("glm4", "get_weather\n{city: Paris}"),
    ("mistral", '[TOOL_CALLS] [{"name": "get_weather"}]'),
    ("default", "Action: get_weather\nAction Input: {city"),
    ("harmony", "<|channel|>commentary to=functions.get_weather <|message|>{city<|call|>"),
    ("minimax1", "<tool_calls>\nnot json\n</tool_calls>"),
    ("seed_oss", "<seed:tool_call>\n<function=get_weather>\n"),
    ("lfm2", "<|tool_call_start|>[get_weather(city=Paris)]<|tool_call_end|>"),
    ("gemma4", "<|tool_call>call:get_weather{city:Paris"),
    ("glm4_moe", "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call> then"),
    ("glm4_moe", "<tool_call>get_weather\n<arg_key>city</arg_key>"),
]


@pytest.mark.parametrize(("fmt", "output"), MALFORMED_OUTPUTS)
def test_a_malformed_call_stays_text(fmt, output):
    assert split_tool_calls(output, fmt) is None


@pytest.mark.parametrize("fmt", TOOL_FORMAT_NAMES)
def test_no_output_crashes_any_format(fmt):
    for text in ["", "\n", "plain text", "[1, 2]", "null", '"s"', "{}", "a\n[1]", *(o for _, o in MALFORMED_OUTPUTS)]:
        found = split_tool_calls(text, fmt)
        assert found is None or (isinstance(found[0], str) and all(isinstance(a, str) for _, a in found[1]))
