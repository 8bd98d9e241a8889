"""Our named templates against the models' own: for each family, the official Jinja chat_template published with the
model (tests/fixtures/chat_templates/*.jinja, where each comes from: its README.md and families.yaml) renders the
prompt for generation (`apply_chat_template(..., tools=..., add_generation_prompt=True)`), and our template of the
family's name gives the very same text (`Template.encode_prompt`, decoded) for a single turn, several turns, a system
prompt, tools, a tool call with its result in the history, and with thinking switched off (enable_thinking=False).

LLaMA-Factory 0.9.5's definitions are the spec for our names; where LF's format is not the official one for a case,
the case is listed in the family's `differs` (families.yaml) with the reason, and is not compared.
"""

from __future__ import annotations

import pytest

from official_templates import (
    CASES,
    FIXTURES,
    family_tokenizer,
    first_difference,
    load_families,
    official_prompt,
    our_prompt,
    our_template,
)

FAMILIES = load_families()
COMPARED = [(f, case) for f in FAMILIES for case in CASES if case not in f.differs]
# the Done-when of issue 16: at least 20 families whose single-turn, multi-turn and system prompts are compared
FULL = {f.template for f in FAMILIES if not {"single", "multi", "system"} & set(f.differs)}


@pytest.fixture(scope="module")
def base_tokenizer_dir(tmp_path_factory):
    from tuneforge.model.tiny import build_tokenizer

    out = tmp_path_factory.mktemp("official-templates") / "tokenizer"
    build_tokenizer(600).save_pretrained(out)
    return out


@pytest.mark.parametrize(("family", "case"), COMPARED, ids=[f"{f.fixture[:-6]}-{f.template}-{c}" for f, c in COMPARED])
def test_named_template_gives_the_official_prompt(base_tokenizer_dir, family, case):
    tok = family_tokenizer(base_tokenizer_dir, family)
    template = our_template(tok, family, case)
    official = official_prompt(tok, family, case)
    assert tok.decode(tok.encode(official, add_special_tokens=False), skip_special_tokens=False) == official
    ours = our_prompt(tok, template, case)
    assert ours == official, first_difference(ours, official)


LISTED = [(f, case) for f in FAMILIES for case in f.differs]


@pytest.mark.parametrize(("family", "case"), LISTED, ids=[f"{f.fixture[:-6]}-{f.template}-{c}" for f, c in LISTED])
def test_listed_differences_are_real(base_tokenizer_dir, family, case):
    """A case left out must really differ (or the official template refuse it): the list cannot hide a case that
    would pass, and a change that makes one match shows up here, to be moved back into the comparison."""
    tok = family_tokenizer(base_tokenizer_dir, family)
    template = our_template(tok, family, case)
    try:
        official = official_prompt(tok, family, case)
    except Exception as e:  # noqa: BLE001 - e.g. Gemma's "System role not supported"
        assert type(e).__name__ == "TemplateError", e
        return
    assert our_prompt(tok, template, case) != official, family.differs[case]


def test_twenty_families_are_compared_on_single_multi_and_system():
    assert len(FULL) >= 20, sorted(FULL)
    assert {"qwen", "qwen3", "qwen3_nothink"} <= {f.template for f, case in COMPARED if case == "tool_calls"}


def test_every_fixture_has_a_family_a_source_and_a_readme_row():
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in FIXTURES.glob("*.jinja"))
    assert files == sorted({f.fixture for f in FAMILIES})
    for family in FAMILIES:
        assert family.source and family.fixture in readme, family.fixture
        assert set(family.differs) <= set(CASES), family.fixture
        assert all(family.differs.values()), family.fixture
