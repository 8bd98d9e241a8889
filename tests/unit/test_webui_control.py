"""UIContext.control: a hand-built widget gets elem_id tf-<key>, its i18n text per `how`, and a registry entry."""

from __future__ import annotations

import pytest

from tuneforge.webui import i18n
from tuneforge.webui.context import UIContext

gr = pytest.importorskip("gradio")


@pytest.fixture
def ui(tmp_path):
    return UIContext(saves_dir=tmp_path / "saves", data_dir=str(tmp_path / "data"), lang="zh", cwd=tmp_path)


def test_control_sets_the_id_and_text_and_registers_it(ui):
    with gr.Blocks():
        button = ui.control("start_btn", gr.Button, how="value", variant="primary", scale=1)
        box = ui.control("status_box", gr.Textbox, interactive=False)
        query = ui.control("query", gr.Textbox, how="field", lines=2)
        title = ui.control("title", gr.Markdown, how="heading")
        subtitle = ui.control("subtitle", gr.Markdown, how="text")
    assert (button.elem_id, button.value, button.variant, button.scale) == ("tf-start_btn", "开始", "primary", 1)
    assert (box.elem_id, box.label, box.interactive) == ("tf-status_box", i18n.label("status_box", "zh"), False)
    assert (query.label, query.info, query.lines) == (i18n.label("query", "zh"), i18n.info("query", "zh"), 2)
    assert title.value == f"## {i18n.label('title', 'zh')}" and subtitle.value == i18n.label("subtitle", "zh")
    assert [ui.elems[k] for k in ("start_btn", "status_box", "query")] == [button, box, query]
    assert [(t.key, t.how) for t in ui.texts] == [
        ("start_btn", "value"),
        ("status_box", "label"),
        ("query", "field"),
        ("title", "heading"),
        ("subtitle", "text"),
    ]
    en = dict(zip([t.key for t in ui.texts], ui.translate("en"), strict=True))
    assert en["start_btn"]["value"] == "Start" and en["title"]["value"] == f"## {i18n.label('title', 'en')}"


def test_control_keeps_what_the_caller_gives(ui):
    with gr.Blocks():
        abort = ui.control("eval_abort_btn", gr.Button, how="value", text_key="abort_btn")
        with ui.control("tab_chat", gr.Tab, id="chat", elem_id="tf-tab-chat") as tab:
            pass
        status = ui.control("chat_status", gr.Textbox, value="ready")
        plain = ui.control("runs_status", gr.Textbox, how="none", show_label=False)
    assert (abort.elem_id, abort.value) == ("tf-eval_abort_btn", i18n.label("abort_btn", "zh"))
    assert ui.texts[0].key == "abort_btn" and ui.elems["eval_abort_btn"] is abort
    assert (tab.elem_id, tab.id, tab.label) == ("tf-tab-chat", "chat", i18n.label("tab_chat", "zh"))
    assert (status.value, status.label) == ("ready", i18n.label("chat_status", "zh"))
    assert plain.elem_id == "tf-runs_status" and ui.elems["runs_status"] is plain  # kept, not translated
    assert "runs_status" not in {t.key for t in ui.texts}


def test_control_refuses_an_unknown_how(ui):
    with gr.Blocks(), pytest.raises(ValueError, match="unknown how"):
        ui.control("start_btn", gr.Button, how="values")
