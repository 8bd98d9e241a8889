# ruff: noqa: E501 - the Markdown tables are one line per row
"""Write docs/templates.md from src/tuneforge/data/templates.yaml (tests/unit/test_lf_templates.py checks it is
current): `.venv/bin/python scripts/gen_template_docs.py`."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tuneforge.data.template import TEMPLATE_NAMES, template_info  # noqa: E402

KIND_TEXT = {
    "plain": "",
    "reasoning": "thinking",
    "glm47_reasoning": "thinking (empty: `</think>` only)",
    "llama2": "system in 1st user turn",
}

HEAD = """# Templates

`template:` names how a conversation becomes the model's text. TuneForge accepts every template name of
LLaMA-Factory 0.9.5 and renders what LLaMA-Factory renders, element for element (checked against LF's own code by
`tests/unit/test_lf_templates.py`), plus `tokenizer`: the model's own Jinja `chat_template`. The definitions are
data, in [`src/tuneforge/data/templates.yaml`](../src/tuneforge/data/templates.yaml). This page is generated from
it (`scripts/gen_template_docs.py`).

Multimodal templates (those with a plugin below) render their text part; their image / video / audio placeholders
stay text for now.

## Thinking and tools

Templates of kind *thinking* follow LLaMA-Factory's rules for reasoning data (`enable_thinking` true / false / null,
`preserve_thinking`, the empty think block): [thinking.md](thinking.md) says what is trained and what is masked in
each case. Plain-kind templates (every `*_nothink` name) train the text as it is.

`tools` in the data go into the system prompt and `function` turns are written in the template's tool format
([tools.md](tools.md)). `tool_format:` overrides it; as in LF the calls are then written in a plain `{{content}}` + EOS
reply slot. A function turn's content may start with a thought (thought words) or hold its call inside the
template's tool-call words with text around it: both are kept as LF keeps them.

## LF names or the model's own template?

A named template renders what LLaMA-Factory renders, which is not always the model's official format: the table in
[tests/fixtures/chat_templates/README.md](../tests/fixtures/chat_templates/README.md) lists, for 50 official chat
templates, where LF's definition differs (a default system prompt, a space, the date Llama 3.1 writes, where the
tools go, ...). `template: tokenizer` renders exactly the model's own `chat_template` (from its tokenizer) and trains
multi-turn, thinking and tool data with exact masks: the text trained on is `apply_chat_template(messages)` of the
official template, each trained span is one reply as that rendering writes it plus its end-of-reply text (e.g.
`2 + 2 = 4.<|im_end|>\\n`), and the prompt for generation is `apply_chat_template(..., add_generation_prompt=True)`.
Templates that rewrite the history (Qwen3 drops earlier replies' thinking) are handled: [thinking.md](thinking.md).
`tests/unit/test_tokenizer_template_official.py` proves it on all 50 official templates of that folder:

- **chat, thinking and tools** (17): Qwen2.5, Qwen3, Qwen3-Instruct-2507, Qwen3-VL, Qwen3.5-4B, Qwen3.5-2B, Qwen3.6,
  Llama 3.1, Llama 3.2, Llama 4, DeepSeek-R1 (thinking: see below), GLM-4.5, GLM-4.7, Mistral-Small-3.2, gpt-oss,
  Seed-OSS, LFM2.
- **chat and thinking; no tool calls**: the official template writes no tool calls (Qwen2-VL, Llama 3, DeepSeek-V2,
  deepseek-coder, DeepSeek-V3-0324, R1-Distill-Qwen, ChatGLM3, GLM-4-9B-chat, Phi-3-mini, Phi-3.5-mini, Phi-3-small,
  phi-4, Phi-4-mini, InternLM2, Granite 3.0, Granite 3.3, Yi, Yi-1.5, Ling, OpenCoder, SOLAR, OpenChat-3.5,
  OpenHermes-2.5, SmolLM2, EXAONE-3.5) or refuses tool turns (Llama 2, Gemma 3, Command R+, Aya Expanse); Gemma 4
  writes the tool result and the answer after it inside one model turn, which cannot be split into prompt and reply.
  Data with tool calls then stops with a one-line error naming a fix: use the family's named template.
- **limits of the official format**: Gemma 1 / Gemma 2 / Mixtral refuse a system prompt (and tool turns); DeepSeek-R1
  and R1-Distill-Qwen drop the thinking of every reply, the last too, so reasoning data trains without it; ChatGLM3,
  GLM-4, GLM-4.5, GLM-4.7, Ling and SOLAR write nothing after a reply (the reply is trained without an end text; the
  model stops at the next turn's header); Phi-3 / Phi-3.5 / Phi-3-small / Phi-4-mini write an EOS after the last
  reply only, which is left out (every reply is trained up to its own `<|end|>`).

Tool calls are passed to the template as OpenAI `tool_calls` with ids `call00001`, ... (Mistral wants 9-character
ids), arguments as an object or as JSON text, whichever the template writes (DeepSeek concatenates JSON text).

## Every template

| name | models | kind | tool format | multimodal plugin |
|---|---|---|---|---|
"""

KEYS = """
## Adding a template

Add an entry to `src/tuneforge/data/templates.yaml`; every key is optional:

| key | meaning | default |
|---|---|---|
| `extends` | start from another template's keys | |
| `models` | the models it is for (documentation) | |
| `kind` | `plain`, `reasoning` (thinking rules above), `glm47_reasoning` (empty thought = closing word only), `llama2` (the system text opens the first user turn) | `plain` |
| `prefix` | before everything (first turn only) | `""` |
| `system` | the system prompt (+ the tools' text) | `"{{content}}"` |
| `user` | a user turn, ending where the reply begins; `{{idx}}` is the turn number | `"{{content}}"` |
| `assistant` | a reply | `"{{content}}{{eos_token}}"` (`"{{content}}"` with `efficient_eos`) |
| `observation` | a tool result | the `user` slot |
| `function` | a reply that calls tools | the `assistant` slot |
| `tools` | a slot for the tools' raw JSON instead of the tool format's prompt | |
| `tool_format` | how tools are described and calls written ([tools.md](tools.md)) | `default` |
| `default_system` | the system prompt when a sample has none | `""` |
| `stop_words` | tokens that end generation; with `replace_eos` the first becomes the tokenizer's EOS | `[]` |
| `replace_eos` | see `stop_words` | `false` |
| `efficient_eos` | the EOS is not in the reply slot: one EOS ends the sample, and the first prompt token after a reply is trained to be EOS | `false` |
| `thought_words` | the opening and closing words of a thought | `["<think>\\n", "\\n</think>\\n\\n"]` |
| `tool_call_words` | the words around a call inside a function turn's text | `["<tool_call>", "</tool_call>"]` |
| `enable_thinking` | the template's default for `enable_thinking` | `true` |
| `replace_jinja_template` | LF writes this template's Jinja into the tokenizer even when it has one | `false` |
| `mm_plugin` | the multimodal plugin and its tokens (`name`, `image_token`, ...) | |

A slot is a string or a list of elements; each element is tokenized on its own, as LF does, so where one element ends
matters for the ids. An element is text with `{{content}}` (and `{{idx}}` in the user slot), `{{bos_token}}` /
`{{eos_token}}` (the tokenizer's id, left out when it has none) or `{token: "<|user|>"}` (that token's id, one id).
A string is split at `{{bos_token}}` / `{{eos_token}}`: `"{{content}}{{eos_token}}\\n"` is the three elements
`["{{content}}", "{{eos_token}}", "\\n"]`. Example:

```yaml
my_chat:
  models: "My-Model-Chat"
  extends: chatml
  default_system: "You are My-Model."
  user: [{token: "<|user|>"}, "\\n{{content}}", {token: "<|assistant|>"}]
```
"""


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render() -> str:
    rows = []
    for name in TEMPLATE_NAMES:
        if name == "tokenizer":
            rows.append("| `tokenizer` | any model with a chat_template: its own Jinja | (its own) | default | |")
            continue
        info = template_info(name)
        plugin = info.get("mm_plugin") or {}
        rows.append(
            f"| `{name}` | {_cell(info.get('models', ''))} | {KIND_TEXT[info.get('kind', 'plain')]} | "
            f"{info.get('tool_format', 'default')} | {plugin.get('name', '')} |"
        )
    return HEAD + "\n".join(rows) + "\n" + KEYS


if __name__ == "__main__":
    (ROOT / "docs" / "templates.md").write_text(render(), encoding="utf-8")
    print("wrote docs/templates.md")
