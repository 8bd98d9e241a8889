"""The Chat tab's two views of a conversation: what the chatbot shows (an uploaded picture as a thumbnail with its
message) and the OpenAI-format messages the chat engine gets (the picture as an `image_url` part holding the file's
path, placed before the text as LLaMA-Factory's chat places an image, and as its image data is written:
`<image>What shape is this?`)."""

from __future__ import annotations


def user_turn(query: str, image: str | None) -> tuple[dict, dict]:
    """(the engine's message, the chatbot's message) for what the user sends: the text, and the uploaded picture's
    path when there is one."""
    if not image:
        return {"role": "user", "content": query}, {"role": "user", "content": query}
    parts: list[dict] = [{"type": "image_url", "image_url": {"url": image}}]
    shown: list = [{"path": image}]
    if query:
        parts.append({"type": "text", "text": query})
        shown.append(query)
    return {"role": "user", "content": parts}, {"role": "user", "content": shown}


def engine_messages(history: list[dict]) -> list[dict]:
    """The chatbot's history as the engine's messages: a reply without its thinking fold (the template drops it
    too), a turn with a picture as image_url + text parts, any other turn as plain text."""
    out = []
    for message in history:
        role, content = message["role"], message["content"]
        images = [path for item in _items(content) if (path := _file_path(item))]
        text = "".join(_text(item) for item in _items(content))
        if role == "assistant":
            out.append({"role": role, "content": answer_of(text)})
        elif images:
            parts = [{"type": "image_url", "image_url": {"url": path}} for path in images]
            out.append({"role": role, "content": parts + ([{"type": "text", "text": text}] if text else [])})
        else:
            out.append({"role": role, "content": text})
    return out


def answer_of(content: str) -> str:
    """A bubble's answer, for the next turn's history: the thinking fold left out (the template drops it too)."""
    if content.startswith("<details") and "</details>" in content:
        return content.split("</details>", 1)[1].removeprefix("\n\n")
    return content


def _items(content) -> list:
    return content if isinstance(content, list) else [content]


def _file_path(item) -> str | None:
    """The path of a picture in a chatbot message: {"path": ...} as the tab writes it, or {"type": "file", "file":
    {"path": ...}} as gradio hands the history back."""
    if not isinstance(item, dict):
        return None
    if "path" in item:
        return item["path"]
    file = item.get("file")
    return file.get("path") if item.get("type") == "file" and isinstance(file, dict) else None


def _text(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):  # gradio hands text back as {"type": "text", "text": ...}; a picture has none
        return "" if _file_path(item) else str(item.get("text", ""))
    return str(item)
