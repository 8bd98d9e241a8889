"""Every Web UI language file holds exactly the keys of en.yaml: the same sub-keys (label / info / choices and the
choice values), the same {placeholders} in every string, text in every value, and no key of its own."""

from __future__ import annotations

import string

import pytest

from tuneforge.webui import i18n

LANGS = ["en", "ja", "ko", "ru", "zh"]
SAME_IN_EVERY_LANGUAGE = 0.8  # at most a fifth of the labels may equal the English one ("#", "↻", "Top-p", "PPO")


def placeholders(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def differences(en: dict, other: dict) -> list[str]:
    """What `other` lacks, adds or changes in shape against `en`, one line each ("" when they match)."""
    found = [f"missing key '{k}'" for k in en if k not in other]
    found += [f"extra key '{k}' (not in en.yaml)" for k in other if k not in en]
    for key in (k for k in en if k in other):
        ref, entry = en[key], other[key]
        if not isinstance(entry, dict):
            found.append(f"'{key}' is {entry!r}, not a mapping like {{label: ...}}")
            continue
        if set(entry) != set(ref):
            found.append(f"'{key}' has sub-keys {sorted(entry)}, en.yaml has {sorted(ref)}")
            continue
        for sub, value in ref.items():
            if sub == "choices":
                theirs, ours = ({str(v): name for v, name in d.items()} for d in (entry[sub], value))
                if set(theirs) != set(ours):
                    found.append(f"'{key}.choices' names values {sorted(theirs)}, en.yaml {sorted(ours)}")
                    continue
                pairs = [(f"{key}.choices.{v}", str(ours[v]), theirs[v]) for v in ours]
            else:
                pairs = [(f"{key}.{sub}", str(value), entry[sub])]
            for where, english, text in pairs:
                if not isinstance(text, str) or not text.strip():
                    found.append(f"'{where}' is {text!r}, not a text")
                elif placeholders(text) != placeholders(english):
                    found.append(f"'{where}' has {placeholders(text)}, en.yaml {placeholders(english)}")
    return found


def test_every_language_file_is_listed_with_its_own_name():
    names = i18n.languages()
    assert sorted(names) == LANGS
    assert names == {"en": "English", "ja": "日本語", "ko": "한국어", "ru": "Русский", "zh": "简体中文"}


@pytest.mark.parametrize("lang", [code for code in LANGS if code != "en"])
def test_language_has_every_key_of_en_with_the_same_shape_and_placeholders(lang):
    en, other = i18n.strings("en"), i18n.strings(lang)
    found = differences(en, other)
    assert not found, f"i18n/{lang}.yaml against en.yaml:\n" + "\n".join(found)
    labels = [k for k in en if k != "_meta"]
    translated = [k for k in labels if other[k]["label"] != en[k]["label"]]
    assert len(translated) > SAME_IN_EVERY_LANGUAGE * len(labels), f"i18n/{lang}.yaml looks untranslated"


def test_english_strings_are_texts_with_the_placeholders_the_code_fills():
    en = i18n.strings("en")
    assert differences(en, en) == []
    assert placeholders(en["msg_memory"]["label"]) == ["act", "optim", "params", "total", "trainable", "weights"]
    assert placeholders(en["progress_label"]["label"]) == ["elapsed", "eta", "pct", "step", "total"]


def test_the_check_catches_a_missing_key_a_changed_placeholder_and_an_extra_key():
    en = i18n.strings("en")
    broken = {k: dict(v) for k, v in i18n.strings("ja").items()}
    del broken["col_dir"]
    broken["msg_queued"] = {"label": "実行 #{job} をキューに追加しました：{dir}"}
    broken["model_name"] = {"label": "モデル名"}  # its info is gone
    broken["finetuning_type"] = {**broken["finetuning_type"], "choices": {"full": "full", "lora": "lora"}}
    broken["col_extra"] = {"label": "余分"}
    found = differences(en, broken)
    assert "missing key 'col_dir'" in found
    assert "extra key 'col_extra' (not in en.yaml)" in found
    assert "'msg_queued.label' has ['dir', 'job'], en.yaml ['dir', 'id']" in found
    assert any(line.startswith("'model_name' has sub-keys") for line in found)
    assert any(line.startswith("'finetuning_type.choices' names values") for line in found)
    assert len(found) == 5, found
