"""What every tab shares: the job store and scheduler, the component registry, the field factory, translation."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneforge.errors import UserError
from tuneforge.jobs.scheduler import Scheduler
from tuneforge.jobs.store import DB_FILE, JobStore
from tuneforge.webui import form, i18n
from tuneforge.webui.paths import PathPolicy


@dataclass
class Translatable:
    key: str  # i18n key
    component: Any
    # "field" (label + info), "label", "title" (a chart's), "value" (buttons, markdown), "heading" ("## " + text),
    # "text", "choices"
    how: str
    values: list | None = None  # a dropdown's values, for translated choice names


@dataclass
class UIContext:
    saves_dir: Path
    data_dir: str
    lang: str = "en"
    cwd: Path = field(default_factory=Path.cwd)
    elems: dict[str, Any] = field(default_factory=dict)
    texts: list[Translatable] = field(default_factory=list)
    engine: Any = None  # the chat engine, one per server
    engine_path: str | None = None
    policy: PathPolicy | None = None  # the folders the page may touch; default: saves (write) + data, models (read)
    _named: set[str] = field(default_factory=set, init=False, repr=False)  # folder names handed out (fresh_dir)
    _naming: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self):
        self.saves_dir = Path(self.saves_dir)
        if self.policy is None:
            self.policy = PathPolicy.build(self.saves_dir, self.data_dir, base=self.cwd)
        self.store = JobStore(self.saves_dir / DB_FILE)
        self.scheduler = Scheduler(self.store)

    # ---- components -------------------------------------------------------------------------------------------
    def field(self, key: str, text_key: str | None = None, name: str | None = None, **kw):
        """The component for a config key: its widget, default, choices, label and help from the i18n files.
        `name`: the registry name when another tab already shows this key (default: the key)."""
        import gradio as gr  # gradio: only the Web UI loads it

        text_key = text_key or key
        name = name or key
        lang = self.lang
        k = form.kind(key)
        value = kw.pop("value", form.to_widget(key, form.default(key)))
        common = {"label": i18n.label(text_key, lang), "info": i18n.info(text_key, lang), "elem_id": f"tf-{name}"}
        values = None
        if key in form.LIST_KEYS:
            comp = gr.Dropdown(choices=[], value=value, multiselect=True, allow_custom_value=True, **common, **kw)
        elif key == form.REWARD_KEY:  # the built-ins to tick; user functions go in the box beside it (REWARD_FILE)
            comp = gr.Dropdown(choices=list(form.BUILTIN_REWARDS), value=value, multiselect=True, **common, **kw)
        elif k == "choice":
            values = [form.to_widget(key, c) for c in form.schema()[key]["choices"]]
            comp = gr.Dropdown(choices=i18n.choices(text_key, values, lang), value=value, **common, **kw)
        elif k == "bool":
            comp = gr.Checkbox(value=bool(value), **common, **kw)
        elif k in ("int", "float"):
            comp = gr.Number(value=value, precision=0 if k == "int" else None, **common, **kw)
        else:
            comp = gr.Textbox(value=value, **common, **kw)
        self.register(name, comp, text_key, "choices" if values else "field", values)
        return comp

    def control(self, key: str, make, how: str = "label", text_key: str | None = None, **kw):
        """A widget that is not a config field: `make(**kw)` (a gradio class) with elem_id `tf-<key>` (unless given)
        and its text from i18n under `text_key` (default: key), registered under `key` so the text follows the
        language switch. how: "label" (label=), "field" (label= and info=), "value" / "text" (value=: a button, a
        markdown), "heading" (value="## <text>"), "title" (title=: a chart's own title, drawn inside it), "none" (no
        text, not translated; only kept under `key`)."""
        kw.setdefault("elem_id", f"tf-{key}")
        text_key = text_key or key
        if how in ("label", "field"):
            kw.setdefault("label", self.t(text_key))
            if how == "field":
                kw.setdefault("info", i18n.info(text_key, self.lang))
        elif how in ("value", "text"):
            kw.setdefault("value", self.t(text_key))
        elif how == "heading":
            kw.setdefault("value", f"## {self.t(text_key)}")
        elif how == "title":
            kw.setdefault("title", self.t(text_key))
        elif how != "none":
            raise ValueError(f"control '{key}': unknown how '{how}'")
        return self.register(key, make(**kw), text_key, how)

    def register(self, key: str, comp, text_key: str | None = None, how: str = "field", values=None):
        """Keep the component under `key`; unless how == "none", its texts follow the language switch."""
        self.elems[key] = comp
        if how != "none":
            self.texts.append(Translatable(text_key or key, comp, how, values))
        return comp

    def t(self, key: str, lang: str | None = None) -> str:
        return i18n.label(key, lang or self.lang)

    def translate(self, lang: str) -> list:
        """gr.update()s that put every registered text in `lang` (order of self.texts)."""
        import gradio as gr

        updates = []
        for item in self.texts:
            label, info = i18n.label(item.key, lang), i18n.info(item.key, lang)
            if item.how == "value":
                updates.append(gr.update(value=label))
            elif item.how == "heading":
                updates.append(gr.update(value=f"## {label}"))
            elif item.how == "text":
                updates.append(gr.update(value=label))
            elif item.how == "label":
                updates.append(gr.update(label=label))
            elif item.how == "title":
                updates.append(gr.update(title=label))
            elif item.how == "choices":
                updates.append(gr.update(label=label, info=info, choices=i18n.choices(item.key, item.values, lang)))
            else:
                updates.append(gr.update(label=label, info=info) if info else gr.update(label=label))
        return updates

    def datasets(self, dataset_dir: str | None, stage: str) -> tuple[list[str], str]:
        """(the stage's dataset names in dataset_dir, "") or ([], why) when the page may not read that folder."""
        try:
            folder = self.policy.confine_read(dataset_dir or self.data_dir, "dataset_dir")
        except UserError as exc:
            return [], f"⚠ {exc.one_line()}"
        return form.datasets_for_stage(str(folder), stage or "sft"), ""

    def job_dir(self, kind: str) -> Path:
        """Where an eval / export job keeps its config and log (its results go where the config says)."""
        return Path(self.fresh_dir(self.saves_dir / ".jobs" / time.strftime(f"{kind}_%Y-%m-%d-%H-%M-%S")))

    def new_output_dir(self, model_path: str | None, method: str, stage: str = "sft") -> str:
        model = Path(str(model_path or "model").rstrip("/")).name or "model"
        return self.fresh_dir(self.saves_dir / model / method / time.strftime(f"{stage}_%Y-%m-%d-%H-%M-%S"))

    def fresh_dir(self, path: Path) -> str:
        """`path`, or `path-2`, `path-3`...: a name no other session of this server got and no folder has. Names go
        by the second, and several people may press Start (or Preview command) in the same second."""
        with self._naming:
            name, n = str(path), 1
            while name in self._named or (self.cwd / name).exists():
                n += 1
                name = f"{path}-{n}"
            self._named.add(name)
        return name
