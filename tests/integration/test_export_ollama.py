"""The Ollama Modelfile's Go template renders what the training template encodes, for every shipped template.

Ollama is not installed here, so the test carries a small evaluator for the part of Go's text/template the
Modelfile uses (text, if / else if / end, range, variables, eq, and, string literals)."""

from __future__ import annotations

import copy
import json
import re

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.template import TEMPLATE_NAMES, get_template
from tuneforge.data.template_engine import Token
from tuneforge.export.ollama import go_template, modelfile, stop_words


def _parse(parts, i):
    nodes = []
    while i < len(parts):
        if i % 2 == 0:
            nodes.append(("text", parts[i]))
            i += 1
            continue
        action = parts[i]
        i += 1
        if action == "end" or action.startswith("else"):
            return nodes, i, action
        if action.startswith("if "):
            branches, cond = [], action[3:]
            while True:
                body, i, term = _parse(parts, i)
                branches.append((cond, body))
                if term == "end":
                    break
                cond = term[len("else if ") :] if term.startswith("else if ") else "true"
            nodes.append(("if", branches))
        elif action.startswith("range "):
            body, i, _ = _parse(parts, i)
            nodes.append(("range", action[6:], body))
        else:
            nodes.append(("act", action))
    return nodes, i, None


def _value(expr, root, dot, env):
    if expr.startswith('"'):
        return json.loads(expr)
    if expr == "true" or expr == "false":
        return expr == "true"
    if expr.startswith("$."):
        return root[expr[2:]]
    if expr.startswith("$"):
        return env[expr]
    if expr.startswith("."):
        return dot[expr[1:]]
    raise ValueError(expr)


def _cond(expr, root, dot, env):
    words = re.findall(r'"[^"]*"|\S+', expr)
    if words[0] == "eq":
        return _value(words[1], root, dot, env) == _value(words[2], root, dot, env)
    if words[0] == "and":
        return all(_value(w, root, dot, env) for w in words[1:])
    return bool(_value(words[0], root, dot, env))


def _run(nodes, root, dot, env, out):
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "if":
            for cond, body in node[1]:
                if _cond(cond, root, dot, env):
                    _run(body, root, dot, env, out)
                    break
        elif node[0] == "range":
            for item in _value(node[1], root, dot, env):
                _run(node[2], root, item, env, out)
        elif ":=" in node[1] or " = " in node[1]:
            name, expr = re.split(r"\s*:?=\s*", node[1])
            env[name] = _value(expr, root, dot, env)
        else:
            out.append(str(_value(node[1], root, dot, env)))


def render_go(template: str, system: str, messages: list[dict]) -> str:
    nodes, _, _ = _parse(re.split(r"\{\{\s*(.*?)\s*\}\}", template, flags=re.DOTALL), 0)
    out: list[str] = []
    root = {"System": system, "Messages": messages}
    _run(nodes, root, root, {}, out)
    return "".join(out)


@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES if n != "tokenizer"])
@pytest.mark.parametrize("system", ["Be brief.", ""])
def test_go_template_renders_like_the_training_template(tiny_tokenizer, name, system):
    template = get_template(name, tiny_tokenizer)
    tokens = [p.text for slot in template._slots.values() for p in slot if isinstance(p, Token)]
    if tokens:  # {token: X} elements (ChatGLM3, Yuan) are the model's own special tokens
        tiny_tokenizer = copy.deepcopy(tiny_tokenizer)
        tiny_tokenizer.add_special_tokens({"additional_special_tokens": tokens})
    turns = [("user", "Hi there"), ("assistant", "Hello! {{not a go action}}"), ("user", "2+2?")]
    if name not in ("llama2", "mistral", "gemma", "alpaca", "default", "empty"):
        turns += [("assistant", "I will check."), ("observation", '{"result": 4}')]
    conv = Conversation([Message(r, c) for r, c in turns], system=system)
    want = tiny_tokenizer.decode(template.encode_prompt(tiny_tokenizer, conv), skip_special_tokens=False)
    roles = {"observation": "tool"}
    messages = [{"Role": roles.get(r, r), "Content": c} for r, c in turns]
    got = render_go(go_template(template, tiny_tokenizer), system or template.default_system, messages)
    assert got == want


def test_modelfile_lines(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    template = get_template("llama3", tokenizer)
    template.fix_tokenizer(tokenizer)  # replace_eos: <|eot_id|> becomes EOS, as in training
    text = modelfile(template, tokenizer, system="You are terse.")
    lines = text.splitlines()
    assert lines[0] == "FROM ./model.gguf" and lines[1].startswith('TEMPLATE """')
    assert 'SYSTEM """You are terse."""' in lines
    stops = [json.loads(line.split(" ", 2)[2]) for line in lines if line.startswith("PARAMETER stop ")]
    assert stops == stop_words(template, tokenizer) and "<|eot_id|>" in stops
