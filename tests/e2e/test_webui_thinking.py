"""A reasoning model in the Web UI, in a real browser: the Chat tab folds the reply's thinking in a <details> above
the answer (its summary in the UI language), unticking "Enable thinking" puts the empty thought in the prompt so
the reply comes without a fold, and the Train tab's Enable thinking field reaches the run's config.yaml. The model
is the tiny one with a LoRA that memorised three replies that think first (tests/conftest.py:
thinking_adapter_dir), so greedy decoding writes a known thought."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_webui import choose, fill, models_flag, open_page, progress, switch_tab, wait_until

from tuneforge.webui import i18n

pytestmark = pytest.mark.browser
QUESTION = "Add 2 and 3."
THOUGHT, ANSWER = "2 plus 3 is 5.", "The sum is 5."  # tests/conftest.py THINK_ROWS

BUBBLES = "#tf-chatbot .message.bot"
LOADING = "#tf-chatbot .message.bot .dots"  # a bubble waiting for its first token
# The last reply bubble: the <details> fold (open or not, its summary, its text) and the text outside it.
LAST_REPLY = """root => {
  const bubbles = root.querySelectorAll('.message.bot');
  const last = bubbles[bubbles.length - 1];
  if (!last) return null;
  const fold = last.querySelector('details');
  const copy = last.cloneNode(true);
  copy.querySelectorAll('details').forEach(d => d.remove());
  return {
    folds: last.querySelectorAll('details').length,
    open: fold ? fold.open : null,
    summary: fold ? fold.querySelector('summary').innerText.trim() : null,
    // textContent: a closed fold does not render its text, so its innerText is empty
    thought: fold ? fold.querySelector('.tf-thinking').textContent.trim() : null,
    answer: copy.innerText.trim(),
    paragraphs: [...copy.querySelectorAll('p')].map(p => p.textContent),  // the answer rendered as Markdown
  };
}"""

# Records the fold's summary and state after every change of the chat: the stream shows it open while it thinks.
WATCH_FOLDS = """() => {
  window.__folds = [];
  const root = document.querySelector('#tf-chatbot');
  new MutationObserver(() => root.querySelectorAll('details').forEach(d => window.__folds.push(
    [d.querySelector('summary').innerText.trim(), d.open ? 'open' : 'closed'])))
    .observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def last_reply(page) -> dict:
    return page.locator("#tf-chatbot").evaluate(LAST_REPLY)


def send(page, query: str) -> dict:
    """Ask in the Chat tab and wait for the whole reply: a new bubble, past its loading dots, no longer changing."""
    bubbles = page.locator(BUBBLES).count()
    page.locator("#tf-query textarea").fill(query)
    page.locator("#tf-submit_btn").click()
    wait_until(lambda: page.locator(BUBBLES).count() > bubbles, 60, "the reply bubble")
    previous = None

    def settled():
        nonlocal previous
        busy = page.locator(f"#tf-chatbot .generating, #tf-submit_btn .pending, {LOADING}").count()
        reply, previous = previous, None if busy else last_reply(page)
        time.sleep(0.5)  # the same reply twice, 0.8 s apart: the stream has ended
        return reply is not None and reply == previous and reply

    return wait_until(settled, 120, "the whole reply")


def test_thinking_folded_in_chat_switched_off_per_message_and_set_for_training(
    page, server_factory, workdir, tiny_model_dir, thinking_adapter_dir
):
    from tuneforge.chat.engine import HuggingFaceEngine
    from tuneforge.config import load_config
    from tuneforge.jobs.store import DB_FILE, JobStore
    from tuneforge.utils import run_folder

    server = server_factory([*models_flag(tiny_model_dir), "--allow-dir", Path(thinking_adapter_dir).parent])
    open_page(page, server)

    # Train tab: the Enable thinking field, on by default; Start with it off writes enable_thinking: false
    page.get_by_text(i18n.label("acc_other", "en"), exact=True).click()
    box = page.locator("#tf-enable_thinking input[type=checkbox]")
    assert i18n.label("enable_thinking", "en") in page.locator("#tf-enable_thinking").inner_text()
    assert box.is_checked()
    fill(page, "model_name_or_path", tiny_model_dir)
    choose(page, "template", "qwen3")
    choose(page, "dataset", "toy")
    fill(page, "extra_args", "max_steps: 1")  # the run only has to exist; it trains during the chat below
    box.uncheck()
    page.locator("#tf-start_btn").click()
    wait_until(lambda: "#1" in page.locator("#tf-status_box textarea").input_value(), 60, "the run to be queued")

    # Chat tab: the thinking LoRA, greedy
    choose(page, "checkpoint_path", str(thinking_adapter_dir))
    switch_tab(page, "Chat")
    fill(page, "max_new_tokens", 32)
    page.locator("#tf-do_sample input[type=checkbox]").uncheck()
    page.locator("#tf-load_model_btn").click()
    wait_until(lambda: "Model loaded" in page.locator("#tf-chat_status textarea").input_value(), 120, "the model")

    assert i18n.label("chat_thinking", "en") in page.locator("#tf-chat_thinking").inner_text()
    page.evaluate(WATCH_FOLDS)
    reply = send(page, QUESTION)
    seen = page.evaluate("window.__folds")
    states = [state for _, state in seen]  # open while it thinks, then closed for good
    assert [i18n.label("chat_thinking_now", "en"), "open"] in seen and "open" not in states[states.index("closed") :]
    assert reply["folds"] == 1 and reply["open"] is False, reply  # closed once the answer came
    assert (reply["summary"], reply["thought"], reply["answer"]) == (i18n.label("chat_thought", "en"), THOUGHT, ANSWER)
    assert reply["paragraphs"] == [ANSWER], reply  # Markdown, as a reply without thinking

    # Thinking off for the next message: the prompt ends with the empty thought, the reply has no fold
    page.locator("#tf-chat_thinking input[type=checkbox]").uncheck()
    quiet = send(page, QUESTION)
    engine = HuggingFaceEngine(
        load_config(
            None,
            {
                "model_name_or_path": str(tiny_model_dir),
                "adapter_name_or_path": str(thinking_adapter_dir),
                "template": "qwen3",
                "do_sample": False,
                "max_new_tokens": 32,
            },
        )
    )
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": QUESTION},
    ]
    quiet_prompt = engine.tokenizer.decode(engine.prompt_ids(history, enable_thinking=False))
    assert quiet_prompt == engine.tokenizer.decode(engine.prompt_ids(history)) + "<think>\n\n</think>\n\n"
    assert engine.chat_parts(history)[0]  # thinking on, this conversation would have had a fold
    expected = engine.chat_parts(history, enable_thinking=False)  # the history: the answer only, without the fold
    assert expected[0] is None and quiet["folds"] == 0, (quiet, expected)
    assert quiet["paragraphs"] == [expected[1]] == [quiet["answer"]], (quiet, expected)

    # In Chinese, thinking on again: the fold's summary follows the UI language
    choose(page, "ui_lang", "简体中文")
    wait_until(lambda: i18n.label("chat_thinking", "zh") in page.locator("#tf-chat_thinking").inner_text(), 30, "zh")
    page.locator("#tf-clear_btn").click()
    page.locator("#tf-chat_thinking input[type=checkbox]").check()
    zh = send(page, QUESTION)
    assert (zh["summary"], zh["thought"], zh["answer"]) == (i18n.label("chat_thought", "zh"), THOUGHT, ANSWER), zh

    # The run: finished, with enable_thinking: false in its config
    switch_tab(page, i18n.label("tab_train", "zh"))
    wait_until(lambda: progress(page)[0] in ("done", "failed"), 240, "the run to finish")
    (job,) = JobStore(workdir / "saves" / DB_FILE).list()
    assert job.status == "done", (Path(job.run_dir) / "train.log").read_text()
    kept = run_folder.read_config(job.run_dir)
    assert kept["enable_thinking"] is False and kept["template"] == "qwen3", kept
