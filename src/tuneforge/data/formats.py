"""Turn rows of alpaca / sharegpt / openai datasets into `Conversation`s; load a registered dataset.

A bad row is an error naming its file:line, never silently dropped.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

from tuneforge.data.conversation import ASSISTANT, FUNCTION, OBSERVATION, USER, Conversation, Message
from tuneforge.data.media import media_root, parts_text, read_media
from tuneforge.data.readers import read_rows
from tuneforge.data.registry import DatasetAttr
from tuneforge.errors import UserError

FIX_COLUMNS = "set columns in dataset_info.json"
FIX_TAGS = "set tags in dataset_info.json"
SAMPLE_SEED = 42  # num_samples draws a fixed random subset, so runs are repeatable


REASONING_KEYS = ("reasoning_content", "reasoning")
FIX_THINK = "give a reply's thinking once: in 'reasoning_content' or as a <think> block in the content"
FIX_TOOL_CALLS = 'write tool_calls as [{"type": "function", "function": {"name": ..., "arguments": {...}}}]'


def _get(row: dict, column: str, attr: DatasetAttr, source: str):
    if column not in row:
        keys = ", ".join(list(row)[:8])
        raise UserError(
            f"column '{column}' missing in dataset '{attr.name}' (formatting {attr.formatting}); the row has: {keys}",
            where=source,
            fix=FIX_COLUMNS,
        )
    return row[column]


def _text(value, what: str, source: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise UserError(f"{what} must be a string, got {type(value).__name__}", where=source, fix="fix the row")
    if not allow_empty and not value.strip():
        raise UserError(f"{what} is empty", where=source, fix="fill it in or remove the row")
    return value


def _optional(row: dict, column: str | None) -> str:
    """An optional text column (system, tools): missing or null → ''; a list/dict (tools) → its JSON."""
    value = row.get(column) if column else None
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _kto_tag(row: dict, attr: DatasetAttr, source: str) -> bool | None:
    if not attr.kto_tag:
        return None
    value = _get(row, attr.kto_tag, attr, source)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise UserError(f"kto_tag must be true or false, got {value!r}", where=source, fix="fix the row")
    return value


def _alpaca(row: dict, attr: DatasetAttr, source: str) -> Conversation:
    messages = []
    history = row.get(attr.history) if attr.history else None
    if history is not None and not isinstance(history, list):
        raise UserError("history must be a list of [prompt, response] pairs", where=source, fix="fix the row")
    for i, pair in enumerate(history or []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise UserError(f"history item {i} must be [prompt, response]", where=source, fix="fix the row")
        messages.append(Message(USER, _text(pair[0], f"history item {i} prompt", source)))
        messages.append(Message(ASSISTANT, _text(pair[1], f"history item {i} response", source)))

    if not attr.prompt and not attr.query:
        raise UserError(f"dataset '{attr.name}' has no prompt column", where=attr.where, fix=FIX_COLUMNS)
    parts = []
    if attr.prompt:
        parts.append(_get(row, attr.prompt, attr, source))
    if attr.query:
        parts.append(row.get(attr.query))
    parts = [_text(p, "the prompt", source, allow_empty=True) for p in parts if p is not None]
    messages.append(Message(USER, _text("\n".join(p for p in parts if p), "the prompt", source)))

    conv = Conversation(messages, system=_optional(row, attr.system), tools=_optional(row, attr.tools))
    if attr.ranking:
        chosen = _get(row, attr.chosen or "chosen", attr, source)
        rejected = _get(row, attr.rejected or "rejected", attr, source)
        messages.append(Message(ASSISTANT, _text(chosen, "the chosen response", source)))
        conv.rejected = Message(ASSISTANT, _text(rejected, "the rejected response", source))
    elif attr.response:
        messages.append(Message(ASSISTANT, _text(_get(row, attr.response, attr, source), "the response", source)))
    conv.kto_tag = _kto_tag(row, attr, source)
    return conv


def _content(message: dict, attr: DatasetAttr, source: str, openai: bool) -> str:
    value = message.get(attr.content_tag)
    if openai and isinstance(value, list):  # content parts: text, image_url / video_url → <image> / <video>
        value = parts_text(value, source)
    if openai and message.get("tool_calls"):
        calls = []
        for call in _tool_calls(message["tool_calls"], source):
            fn = call.get("function", call)
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise UserError("a tool call needs a function with a 'name'", where=source, fix=FIX_TOOL_CALLS)
            args = fn.get("arguments", {})
            if isinstance(args, str):
                try:
                    args = json.loads(args) if args.strip() else {}
                except json.JSONDecodeError as exc:
                    raise UserError(f"tool call arguments are not JSON: {exc.msg}", where=source) from exc
            calls.append({"name": fn.get("name"), "arguments": args})
        return json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
    return _text(value, f"message '{attr.content_tag}'", source)


def _tool_calls(value, source: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(call, dict) for call in value):
        raise UserError("tool_calls must be a list of objects", where=source, fix=FIX_TOOL_CALLS)
    return value


def _message(message, attr: DatasetAttr, source: str, openai: bool) -> Message:
    """One raw message → Message with our role names (system messages are handled by the caller)."""
    if not isinstance(message, dict) or attr.role_tag not in message:
        raise UserError(
            f"each message must be an object with '{attr.role_tag}' and '{attr.content_tag}'",
            where=source,
            fix=FIX_TAGS,
        )
    tag = message[attr.role_tag]
    roles = {attr.user_tag: USER, attr.assistant_tag: ASSISTANT, attr.observation_tag: OBSERVATION}
    roles[attr.function_tag] = FUNCTION
    if not isinstance(tag, str) or tag not in roles:
        known = ", ".join(repr(t) for t in roles)
        raise UserError(f"unknown role {tag!r} (known: {known})", where=source, fix=FIX_TAGS)
    role = roles[tag]
    if openai and role == ASSISTANT and message.get("tool_calls"):
        role = FUNCTION
    content = _content(message, attr, source, openai)
    return Message(role, content, _reasoning(message, role, content, source))


def _reasoning(message: dict, role: str, content: str, source: str) -> str | None:
    """A reply's thinking given apart from its content: `reasoning_content` (DeepSeek / OpenAI-compatible
    servers) or `reasoning` (vLLM's newer name). Empty or missing → None. A `<think>` block in the content is
    left where it is (LLaMA-Factory's rule); giving the thinking both ways is an error."""
    given = {k: message[k] for k in REASONING_KEYS if message.get(k) is not None}
    if not given:
        return None
    for key, value in given.items():
        if not isinstance(value, str):
            raise UserError(f"'{key}' must be a string, got {type(value).__name__}", where=source, fix="fix the row")
    if len(set(given.values())) > 1:
        raise UserError(
            "the message has both 'reasoning_content' and 'reasoning', and they differ", where=source, fix=FIX_THINK
        )
    key, value = next(iter(given.items()))
    if role not in (ASSISTANT, FUNCTION):
        raise UserError(f"'{key}' is only read on assistant messages, found on a {role} message", where=source)
    if not value.strip():
        return None
    if "<think>" in content or "</think>" in content:
        raise UserError(
            f"the reply gives its thinking twice: in '{key}' and as a <think> block in its content",
            where=source,
            fix=FIX_THINK,
        )
    return value


def _check_order(messages: list[Message], source: str) -> None:
    prompt_roles, response_roles = (USER, OBSERVATION), (ASSISTANT, FUNCTION)
    for i, m in enumerate(messages):
        want = prompt_roles if i % 2 == 0 else response_roles
        if m.role not in want:
            raise UserError(
                f"turn {i + 1} is '{m.role}' but should be {' or '.join(want)}: turns must alternate "
                "user/observation and assistant/function, starting with the user",
                where=source,
                fix="fix the order of the turns (a system turn may only come first)",
            )


def _sharegpt(row: dict, attr: DatasetAttr, source: str) -> Conversation:
    openai = attr.formatting == "openai"
    raw = _get(row, attr.messages, attr, source)
    if not isinstance(raw, list) or not raw:
        raise UserError(f"'{attr.messages}' must be a non-empty list of messages", where=source, fix=FIX_COLUMNS)
    system = _optional(row, attr.system)
    if isinstance(raw[0], dict) and raw[0].get(attr.role_tag) == attr.system_tag:
        system, raw = _text(raw[0].get(attr.content_tag), "the system message", source, allow_empty=True), raw[1:]
    messages: list[Message] = []
    for m in raw:
        if isinstance(m, dict) and m.get(attr.role_tag) == attr.system_tag:
            raise UserError("a system turn may only come first", where=source, fix="move it to the start")
        msg = _message(m, attr, source, openai)
        if openai and msg.role == OBSERVATION and messages and messages[-1].role == OBSERVATION:
            messages[-1].content += "\n" + msg.content  # parallel tool results form one observation turn
        else:
            messages.append(msg)
    if not messages:
        raise UserError(
            "the conversation has no user or assistant turns", where=source, fix="add turns or remove the row"
        )
    _check_order(messages, source)

    conv = Conversation(messages, system=system, tools=_optional(row, attr.tools))
    if attr.ranking:
        if len(messages) % 2 == 0:
            raise UserError(
                "a ranking conversation must end with a user turn (the answers are in chosen/rejected)", where=source
            )
        chosen = _message(_get(row, attr.chosen or "chosen", attr, source), attr, source, openai)
        conv.rejected = _message(_get(row, attr.rejected or "rejected", attr, source), attr, source, openai)
        for m in (chosen, conv.rejected):
            if m.role not in (ASSISTANT, FUNCTION):
                raise UserError(f"chosen/rejected must be assistant messages, got '{m.role}'", where=source)
        messages.append(chosen)
    elif len(messages) % 2 == 1:
        raise UserError(
            "the conversation ends with a user turn; the last turn must be the assistant's",
            where=source,
            fix="add the response or remove the last turn",
        )
    conv.kto_tag = _kto_tag(row, attr, source)
    return conv


def to_conversation(row: dict, attr: DatasetAttr, source: str, media_dir: str | Path = "") -> Conversation:
    """One row of a dataset → Conversation (its `source` set), following `attr`'s formatting, columns, tags; its
    images / videos resolved against `media_dir` (data/media.py)."""
    conv = _alpaca(row, attr, source) if attr.formatting == "alpaca" else _sharegpt(row, attr, source)
    conv.source = source
    if attr.images or attr.videos or attr.formatting == "openai":
        read_media(conv, row, attr, str(media_dir))
    if attr.answer:
        conv.extra["answer"] = _answer(row, attr, source)
    return conv


def _answer(row: dict, attr: DatasetAttr, source: str) -> str | None:
    """The reference answer as text (a number in the file is fine: 42 → '42'); null stays None (no answer)."""
    value = _get(row, attr.answer, attr, source)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(
            f"the answer column '{attr.answer}' must hold text or a number, got {type(value).__name__}",
            where=source,
            fix="write the reference answer as a string",
        )
    return str(value)


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _sample(items: list, n: int) -> list:
    """LLaMA-Factory's num_samples: a random subset when n is smaller; all items plus random repeats when larger."""
    rng = random.Random(SAMPLE_SEED)
    order = list(range(len(items)))
    rng.shuffle(order)
    repeats = [rng.randrange(len(items)) for _ in range(max(0, n - len(items)))] if items else []
    return [items[i] for i in order[:n]] + [copy.deepcopy(items[i]) for i in repeats]


def load_conversations(attr: DatasetAttr, dataset_dir: str | Path, data_args=None) -> list[Conversation]:
    """Read, convert and sample one registered dataset. `{{name}}`/`{{author}}` become the identity settings."""
    if not attr.file_name:
        raise UserError(f"dataset '{attr.name}' has no local file_name", where=attr.where, fix="set file_name")
    path = Path(dataset_dir) / attr.file_name
    if attr.split != "train" and not (path / "dataset_dict.json").is_file():
        raise UserError(
            f"dataset '{attr.name}': split '{attr.split}' applies only to a saved DatasetDict folder",
            where=attr.where,
            fix="remove split, or point file_name at the split's own file",
        )
    rows = read_rows(path, split=attr.split)
    # A configured optional column that no row has is a typo (LLaMA-Factory fails on it too). A sharegpt system
    # column is only read when the first turn is not a system turn, so it is not checked.
    checked = (attr.tools, attr.history) + ((attr.system,) if attr.formatting == "alpaca" else ())
    for column in checked:
        if column and not any(column in row for row, _ in rows):
            raise UserError(
                f"column '{column}' missing in dataset '{attr.name}' (formatting {attr.formatting}): no row has it",
                where=str(path),
                fix=FIX_COLUMNS,
            )
    values = {
        "name": getattr(data_args, "identity_name", None) or "TuneForge",
        "author": getattr(data_args, "identity_author", None) or "the TuneForge team",
    }
    convs = []
    root = media_root(data_args, dataset_dir)
    for row, source in rows:
        conv = to_conversation(row, attr, source, root)
        for m in conv.messages + ([conv.rejected] if conv.rejected else []):
            m.content = _fill(m.content, values)
        conv.system = _fill(conv.system, values)
        convs.append(conv)

    if attr.num_samples is not None:
        convs = _sample(convs, attr.num_samples)
    max_samples = getattr(data_args, "max_samples", None)
    if max_samples is not None:
        convs = convs[:max_samples]
    if not convs:
        raise UserError(f"dataset '{attr.name}' is empty", where=str(path), fix="add samples")
    return convs
