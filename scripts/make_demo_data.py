"""Build data/alpaca_en_demo.json and data/alpaca_zh_demo.json (200 samples each), deterministically.

Every text was written for TuneForge. The words live in scripts/demo_data/alpaca_{en,zh}.yaml: about 70 hand-written
samples per language, plus the tables and templates of four generated families whose answers are computed here
(arithmetic, unit conversion, facts from our tables, numbers and words). This script holds the numbers and the logic,
the same for both languages. Run: `python scripts/make_demo_data.py` (`--check`: compare with data/, write nothing).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
SEED = 20261127
TOTAL = 200
VALUES = [0.5, 1.5, 2, 2.5, 3, 4, 5, 7, 12, 0.25, 3.5, 10]  # what the unit conversions convert

Sample = dict[str, str]


def sample(fields: dict) -> Sample:
    """A sample in the dataset's key order; a missing input is empty."""
    return {"instruction": fields["instruction"], "input": fields.get("input", ""), "output": fields["output"]}


def fill(template: dict, values: dict) -> Sample:
    """A template (a sample whose strings hold {names}) with the names filled in."""
    return sample({key: text.format(**values) for key, text in template.items()})


def num(x: float, sep: bool = False) -> str:
    """2500.0 → '2500' (or '2,500'); 17.78 stays 17.78."""
    if abs(x - round(x)) < 1e-9:
        return f"{round(x):,}" if sep else str(round(x))
    return f"{round(x, 4):.4f}".rstrip("0")


def smallest_factor(n: int) -> int:
    return next((p for p in range(2, int(n**0.5) + 1) if n % p == 0), n)


# ---- generated families: the numbers each template is filled with -------------------------------------------


def word_problem_numbers(rng: random.Random) -> Iterator[tuple[str, dict]]:
    """One round of word problems: (template name, its numbers), drawn in this order."""
    a, b = rng.randint(5, 60), rng.randint(2, 40)
    yield "add", {"a": a, "b": b, "sum": a + b}
    a, b = rng.randint(20, 90), rng.randint(2, 19)
    yield "subtract", {"a": a, "b": b, "diff": a - b}
    a, b = rng.randint(3, 12), rng.randint(2, 9)
    yield "multiply", {"a": a, "b": b, "product": a * b}
    a, b = rng.randint(2, 12), rng.randint(2, 8)
    yield "divide", {"a": a, "b": b, "total": a * b}
    p, q, m, k = rng.randint(2, 9), rng.randint(1, 4), rng.randint(2, 5), rng.randint(2, 6)
    yield "shopping", {"p": p, "q": q, "m": m, "k": k, "mp": m * p, "kq": k * q, "cost": m * p + k * q}
    v, t = rng.choice([40, 60, 80, 90, 120]), rng.randint(2, 6)
    yield "distance", {"v": v, "t": t, "d": v * t}
    a, b, c = rng.randint(2, 15), rng.randint(2, 15), rng.randint(1, 50)
    yield "expression", {"a": a, "b": b, "c": c, "ab": a * b, "value": a * b + c}


def arithmetic(rng: random.Random, words: dict) -> list[Sample]:
    out = []
    for _ in range(12):
        who = {"n": rng.choice(words["names"]), **rng.choice(words["items"])}
        for name, numbers in word_problem_numbers(rng):
            out.append(fill(words["templates"][name], {**who, **numbers}))
    return out


def units(rng: random.Random, words: dict) -> list[Sample]:
    out, sep = [], words["thousands_separator"]
    for a, b, per in words["table"]:
        for v in rng.sample(VALUES, 4):
            values = {"v": num(v), "a": a, "b": b, "r": num(v * per, sep=sep), "per": num(per, sep=sep)}
            out += [fill(template, values) for template in words["templates"]]
    for c in rng.sample(range(-20, 45, 5), 8):
        out += [fill(template, {"c": c, "f": num(c * 9 / 5 + 32)}) for template in words["temperature"]]
    return out


def facts(rng: random.Random, tables: list[dict]) -> list[Sample]:
    out = []
    for table in tables:
        for row in table["rows"]:
            out += [fill(template, dict(zip(table["columns"], row, strict=True))) for template in table["templates"]]
    return out


def numbers(rng: random.Random, words: dict) -> list[Sample]:
    out, join, integers = [], words["separator"].join, words["integers"]
    for _ in range(6):
        xs = rng.sample(range(1, 100), rng.randint(4, 7))
        values = {
            "shown": join(map(str, xs)),
            "ascending": join(map(str, sorted(xs))),
            "largest": max(xs),
            "descending": join(map(str, sorted(xs, reverse=True))),
            "smallest": min(xs),
        }
        out += [fill(template, values) for template in words["lists"]]
        ys = rng.sample(range(2, 40, 2), 4)
        values = {
            "shown": join(map(str, ys)),
            "terms": " + ".join(map(str, ys)),
            "total": sum(ys),
            "mean": num(sum(ys) / 4),
        }
        out += [fill(template, values) for template in words["average"]]
    for n in rng.sample(range(2, 100), 16):
        p = smallest_factor(n)
        values = {"n": n, "p": p, "q": n // p}
        out.append(fill(integers["even" if n % 2 == 0 else "odd"], values))
        out.append(fill(integers["prime" if p == n else "composite"], values))
    for s in words["sentences"]:
        values = {
            "s": s,
            "words": len(s.split()),
            "upper": s.upper(),
            "reversed": " ".join(reversed(s.split())),
            "hanzi": len(re.findall(r"[\u4e00-\u9fff]", s)),
        }
        out += [fill(template, values) for template in words["sentence_templates"]]
    return out


Family = Callable[[random.Random, Any], list[Sample]]
FAMILIES: list[tuple[Family, int]] = [(arithmetic, 40), (units, 25), (facts, 35), (numbers, 30)]  # how many of each


def build(words: dict) -> list[Sample]:
    """The hand-written samples, then generated ones (new questions only) up to TOTAL, shuffled."""
    rng = random.Random(SEED)
    rows = [sample(fields) for fields in words["handwritten"]]
    seen = {(r["instruction"], r["input"]) for r in rows}
    generated = []
    for family, count in FAMILIES:
        pool = [r for r in family(rng, words[family.__name__]) if (r["instruction"], r["input"]) not in seen]
        pool = list({(r["instruction"], r["input"]): r for r in pool}.values())  # one answer per question
        for row in rng.sample(pool, count):
            generated.append(row)
            seen.add((row["instruction"], row["input"]))
    rng.shuffle(generated)
    rows += generated[: TOTAL - len(rows)]
    rng.shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATA, help="folder to write to (default: data/)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for lang in ("en", "zh"):
        rows = build(yaml.safe_load((HERE / "demo_data" / f"alpaca_{lang}.yaml").read_text(encoding="utf-8")))
        assert len(rows) == TOTAL, (lang, len(rows))
        path, text = args.out / f"alpaca_{lang}_demo.json", json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
        if args.check:
            stale += [] if path.is_file() and path.read_bytes() == text.encode("utf-8") else [path]
            continue
        path.write_text(text, encoding="utf-8")
        print(f"{path}: {len(rows)} samples")
    for path in stale:
        print(f"{path}: differs from what scripts/make_demo_data.py builds; run it and commit the result")
    if args.check and not stale:
        print(f"{args.out}: alpaca_en_demo.json and alpaca_zh_demo.json are up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
