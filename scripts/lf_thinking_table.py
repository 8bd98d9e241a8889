"""Print what LLaMA-Factory 0.9.5 trains for reasoning data, for docs/thinking.md and tests/unit/test_thinking_lf.py.

Runs LF's own ReasoningTemplate (qwen3) and plain Template (qwen3_nothink) on the rows of
tests/fixtures/thinking/sharegpt_think.jsonl and plain.jsonl, for enable_thinking true / false / null,
preserve_thinking and mask_history, as LF's SupervisedDatasetProcessor calls them. Needs LF's source (see
/tmp/lfimport.py: it puts LF on sys.path and stubs torchaudio). Not run by the test suite.

    .venv/bin/python scripts/lf_thinking_table.py [lfimport.py]  # writes tests/fixtures/thinking/lf_qwen3.jsonl
"""

import copy
import json
import sys
from pathlib import Path

from transformers import AutoTokenizer

from tuneforge.model.tiny import create_tiny_model

ROOT = Path(__file__).resolve().parent.parent
ROLES = {"human": "user", "gpt": "assistant"}


def rows(name: str) -> list[list[dict]]:
    lines = (ROOT / "tests/fixtures/thinking" / name).read_text(encoding="utf-8").splitlines()
    return [[{"role": ROLES[m["from"]], "content": m["value"]} for m in json.loads(x)["conversations"]] for x in lines]


def main() -> None:
    exec(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lfimport.py").read_text(), globals())
    folder = Path("/tmp/lf_thinking_tiny")
    if not (folder / "config.json").exists():
        create_tiny_model(folder, arch="qwen2")
    tok = AutoTokenizer.from_pretrained(folder)
    lines = []
    for name in ("qwen3", "qwen3_nothink"):
        for enable in (True, False, None):
            for preserve in (False, True):
                for mask_history in (False, True):
                    template = copy.deepcopy(TEMPLATES[name])  # noqa: F821 (from lfimport)
                    if name == "qwen3":  # LF sets these on reasoning templates only
                        template.enable_thinking, template.preserve_thinking = enable, preserve
                    discard = mask_history and not template.preserve_thinking
                    for row, messages in enumerate(rows("sharegpt_think.jsonl") + rows("plain.jsonl")):
                        pairs = template.encode_multiturn(tok, messages, None, None, discard)
                        out = []
                        for k, (prompt, response) in enumerate(pairs):
                            trained = not mask_history or k == len(pairs) - 1
                            out.append(
                                {"prompt": tok.decode(prompt), "response": tok.decode(response), "trained": trained}
                            )
                        case = {"template": name, "enable_thinking": enable, "preserve_thinking": preserve}
                        case |= {"mask_history": mask_history, "row": row, "turns": out}
                        lines.append(json.dumps(case, ensure_ascii=False))
    (ROOT / "tests/fixtures/thinking/lf_qwen3.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
