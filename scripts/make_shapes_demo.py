"""Build data/shapes_demo.json, data/shapes_demo_eval.json and their pictures (data/shapes_demo/*.png).

Small 64x64 pictures of one coloured shape (circle / square / triangle) or one coloured seven-segment digit
(1-4), with one-word questions and answers in English and Chinese: a task a tiny vision-language model learns
on a CPU. Rows use LLaMA-Factory's multimodal sharegpt format (as its data/mllm_demo.json): "messages" whose
user turn holds an "<image>" placeholder, and "images" with paths relative to data/.
The eval file's pictures are drawn at other places and sizes than any training picture.

Shapes are painted from numpy masks (no font, no Pillow drawing), so the pixels are the same everywhere; `--check`
compares the JSON files byte for byte and the pictures pixel for pixel (PNG bytes may differ between zlib builds).
Run: `python scripts/make_shapes_demo.py` (`--check`: compare with data/, write nothing; `--out DIR`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent.parent / "data"
SEED = 20261206
SIZE = 64
FOLDER = "shapes_demo"
FILES = {"train": "shapes_demo.json", "eval": "shapes_demo_eval.json", "dpo": "shapes_demo_dpo.json"}
VARIANTS = {"train": (6, 3), "eval": (1, 1)}  # pictures per (colour, shape) and per (colour, digit)

COLOURS = {  # name: (RGB, Chinese)
    "red": ((220, 40, 40), "红色"),
    "green": ((40, 170, 60), "绿色"),
    "blue": ((40, 80, 220), "蓝色"),
    "yellow": ((230, 200, 30), "黄色"),
}
SHAPES = {"circle": "圆形", "square": "正方形", "triangle": "三角形"}
DIGITS = ("1", "2", "3", "4")
BACKGROUNDS = ((255, 255, 255), (236, 236, 236))
QUESTIONS = {  # (kind, asked): (English, Chinese)
    ("shape", "colour"): ("What colour is the shape?", "图中形状是什么颜色？"),
    ("shape", "name"): ("What shape is this?", "图中是什么形状？"),
    ("digit", "colour"): ("What colour is the digit?", "图中数字是什么颜色？"),
    ("digit", "name"): ("Which digit is drawn?", "图中画的是哪个数字？"),
}
# Seven segments: a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle.
SEGMENTS = {"1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc"}


def _grid():
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return xs + 0.5, ys + 0.5  # pixel centres


def shape_mask(shape: str, cx: int, cy: int, r: int) -> np.ndarray:
    """Pixels inside a circle / square / upward triangle of half-size r centred at (cx, cy)."""
    x, y = _grid()
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if shape == "square":
        return (abs(x - cx) <= r) & (abs(y - cy) <= r)
    top, bottom = cy - r, cy + r  # apex at the top, base at the bottom, as wide as it is tall
    half_width = (y - top) / (2 * r) * r
    return (y >= top) & (y <= bottom) & (abs(x - cx) <= half_width)


def digit_mask(digit: str, cx: int, cy: int, r: int) -> np.ndarray:
    """A seven-segment digit r pixels tall on either side of (cx, cy), half as wide, strokes r/3 thick."""
    x, y = _grid()
    w, t = r // 2, max(3, r // 3)
    left, right, top, mid, bottom = cx - w, cx + w, cy - r, cy, cy + r
    boxes = {  # segment: (x0, x1, y0, y1)
        "a": (left, right, top, top + t),
        "g": (left, right, mid - t / 2, mid + t / 2),
        "d": (left, right, bottom - t, bottom),
        "f": (left, left + t, top, mid),
        "b": (right - t, right, top, mid),
        "e": (left, left + t, mid, bottom),
        "c": (right - t, right, mid, bottom),
    }
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for seg in SEGMENTS[digit]:
        x0, x1, y0, y1 = boxes[seg]
        mask |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return mask


def paint(mask: np.ndarray, colour: tuple, background: tuple) -> Image.Image:
    pixels = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    pixels[...] = background
    pixels[mask] = colour
    return Image.fromarray(pixels, "RGB")


def _placements(rng: random.Random, count: int, taken: set) -> list[tuple[int, int, int, int]]:
    """`count` (cx, cy, r, background) never drawn before (kept in `taken`): eval pictures differ from train."""
    out = []
    while len(out) < count:
        r = rng.randint(14, 22)
        place = (rng.randint(r + 2, SIZE - r - 2), rng.randint(r + 2, SIZE - r - 2), r, rng.randrange(2))
        if place not in taken:
            taken.add(place)
            out.append(place)
    return out


def _rows(image: str, kind: str, answers: dict) -> list[dict]:
    """Two questions (colour, name), each in English and Chinese, as one-turn rows."""
    rows = []
    for asked in ("colour", "name"):
        for lang in (0, 1):
            messages = [
                {"content": "<image>" + QUESTIONS[(kind, asked)][lang], "role": "user"},
                {"content": answers[asked][lang], "role": "assistant"},
            ]
            rows.append({"messages": messages, "images": [image]})
    return rows


def build() -> tuple[dict[str, list[dict]], dict[str, Image.Image]]:
    """({split: rows}, {relative path: picture}); deterministic."""
    rng = random.Random(SEED)
    taken: set = set()
    rows: dict[str, list[dict]] = {}
    pictures: dict[str, Image.Image] = {}
    for split, (per_shape, per_digit) in VARIANTS.items():
        items = [("shape", s, c) for s in SHAPES for c in COLOURS for _ in range(per_shape)]
        items += [("digit", d, c) for d in DIGITS for c in COLOURS for _ in range(per_digit)]
        split_rows = []
        for index, ((kind, name, colour), (cx, cy, r, bg)) in enumerate(
            zip(items, _placements(rng, len(items), taken), strict=True)
        ):
            mask = shape_mask(name, cx, cy, r) if kind == "shape" else digit_mask(name, cx, cy, r)
            path = f"{FOLDER}/{split}_{index:03d}.png"
            pictures[path] = paint(mask, COLOURS[colour][0], BACKGROUNDS[bg])
            name_zh = SHAPES[name] if kind == "shape" else name
            answers = {"colour": (colour, COLOURS[colour][1]), "name": (name, name_zh)}
            split_rows += _rows(path, kind, answers)
        rng.shuffle(split_rows)
        rows[split] = split_rows
    rows["dpo"] = preference_rows(rows["train"], rng)
    return rows, pictures


def preference_rows(rows: list[dict], rng: random.Random) -> list[dict]:
    """The training pictures' questions as pairs (stage dpo): the right answer chosen, another answer to the same
    question rejected."""
    answers: dict[str, set] = {}
    for row in rows:
        answers.setdefault(row["messages"][0]["content"], set()).add(row["messages"][1]["content"])
    pairs = []
    for row in rows:
        question, answer = row["messages"][0], row["messages"][1]
        wrong = rng.choice(sorted(answers[question["content"]] - {answer["content"]}))
        rejected = {"content": wrong, "role": "assistant"}
        pairs.append({"messages": [question], "chosen": answer, "rejected": rejected, "images": row["images"]})
    return pairs


def _json(rows: list[dict]) -> bytes:
    return (json.dumps(rows, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def differences(out: Path) -> list[str]:
    """What in `out` differs from what build() makes (empty: up to date)."""
    rows, pictures = build()
    problems = [name for split, name in FILES.items() if _read(out / name) != _json(rows[split])]
    on_disk = {f"{FOLDER}/{p.name}" for p in (out / FOLDER).glob("*")} if (out / FOLDER).is_dir() else set()
    problems += sorted(on_disk - set(pictures))
    for path, picture in pictures.items():
        if path not in on_disk:
            problems.append(path)
            continue
        with Image.open(out / path) as saved:
            if saved.mode != "RGB" or saved.size != picture.size or saved.tobytes() != picture.tobytes():
                problems.append(path)
    return problems


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def write(out: Path) -> None:
    rows, pictures = build()
    (out / FOLDER).mkdir(parents=True, exist_ok=True)
    for stale in (out / FOLDER).glob("*.png"):
        if f"{FOLDER}/{stale.name}" not in pictures:
            stale.unlink()
    for path, picture in pictures.items():
        picture.save(out / path, format="PNG", optimize=True)
    for split, name in FILES.items():
        (out / name).write_bytes(_json(rows[split]))
    counts = f"{len(rows['train'])} train rows ({len(rows['dpo'])} as pairs), {len(rows['eval'])} eval rows"
    print(f"{out}: {counts}, {len(pictures)} pictures")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATA, help="folder to write to (default: data/)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.out)
        if not problems:
            print(f"{args.out}: shapes demo is up to date")
            return 0
        print(f"{args.out}: differs from what scripts/make_shapes_demo.py builds ({', '.join(problems[:5])}); rerun it")
        return 1
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
