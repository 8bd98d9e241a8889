"""Build data/math_demo.json: arithmetic word problems in English and Chinese with integer answers, for GRPO.

The questions are the word-problem templates of our alpaca demo data (scripts/demo_data/alpaca_{en,zh}.yaml,
`arithmetic`), filled with numbers drawn by make_demo_data.py's `word_problem_numbers`; each row keeps the worked
solution (`output`, for a warm-up SFT) and the bare integer answer (`answer`, for the accuracy reward). Deterministic.
Run: `python scripts/make_math_demo.py` (`--check`: compare with data/, write nothing).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_demo_data import DATA, fill, word_problem_numbers  # noqa: E402  (a script beside this one)

SEED = 20261206
PER_LANGUAGE = 150
FILE = "math_demo.json"
ANSWER_OF = {  # which of a template's numbers is its answer
    "add": "sum",
    "subtract": "diff",
    "multiply": "product",
    "divide": "a",
    "shopping": "cost",
    "distance": "d",
    "expression": "value",
}


def problems(words: dict, rng: random.Random) -> list[dict]:
    """PER_LANGUAGE problems with different questions, in the order drawn."""
    rows, seen = [], set()
    while len(rows) < PER_LANGUAGE:
        who = {"n": rng.choice(words["names"]), **rng.choice(words["items"])}
        for name, numbers in word_problem_numbers(rng):
            row = fill(words["templates"][name], {**who, **numbers})
            key = (row["instruction"], row["input"])
            if key in seen or len(rows) == PER_LANGUAGE:
                continue
            seen.add(key)
            rows.append({**row, "answer": str(numbers[ANSWER_OF[name]])})
    return rows


def build() -> list[dict]:
    rng = random.Random(SEED)
    rows = []
    for lang in ("en", "zh"):
        words = yaml.safe_load((HERE / "demo_data" / f"alpaca_{lang}.yaml").read_text(encoding="utf-8"))
        rows += problems(words["arithmetic"], rng)
    rng.shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATA, help="folder to write to (default: data/)")
    parser.add_argument("--check", action="store_true", help="compare with the file in --out; write nothing")
    args = parser.parse_args(argv)
    path, text = args.out / FILE, json.dumps(build(), ensure_ascii=False, indent=2) + "\n"
    if args.check:
        if path.is_file() and path.read_bytes() == text.encode("utf-8"):
            print(f"{path} is up to date")
            return 0
        print(f"{path}: differs from what scripts/make_math_demo.py builds; run it and commit the result")
        return 1
    path.write_text(text, encoding="utf-8")
    print(f"{path}: {2 * PER_LANGUAGE} problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
