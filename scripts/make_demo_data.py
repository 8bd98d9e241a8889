"""Build data/alpaca_en_demo.json and data/alpaca_zh_demo.json (200 samples each), deterministically.

Every text here was written for TuneForge: about 70 hand-written samples per language (the Q:/I:/A: blocks at the
end of this file) plus generated families whose answers are computed (arithmetic, unit conversion, numbers, words)
or come from small tables we wrote (capitals, antonyms, synonyms). Run: `python scripts/make_demo_data.py`.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
SEED = 20261127
TOTAL = 200


def parse_blocks(text: str, joiner: str) -> list[dict]:
    """Q:/I:/A: blocks separated by blank lines; '  ' continues a field (joined by `joiner`), '  |' starts a line."""
    rows, row, key = [], {}, None
    names = {"Q": "instruction", "I": "input", "A": "output"}
    for line in text.strip("\n").split("\n") + [""]:
        if not line.strip():
            if row:
                rows.append({"instruction": row["instruction"], "input": row.get("input", ""), "output": row["output"]})
            row, key = {}, None
        elif line[:2] in ("Q:", "I:", "A:"):
            key = names[line[0]]
            row[key] = line[3:]
        elif line.startswith("  |"):
            row[key] += "\n" + line[4:]
        elif line.startswith("  "):
            row[key] += joiner + line.strip()
        else:
            raise ValueError(f"bad line: {line!r}")
    return rows


def num(x: float, sep: bool = False) -> str:
    """2500.0 → '2500' (or '2,500'); 17.78 stays 17.78."""
    if abs(x - round(x)) < 1e-9:
        return f"{round(x):,}" if sep else str(round(x))
    return f"{round(x, 4):.4f}".rstrip("0")


def smallest_factor(n: int) -> int:
    return next((p for p in range(2, int(n**0.5) + 1) if n % p == 0), n)


# ---- tables we wrote ------------------------------------------------------------------------------------------

CAPITALS = [  # (country en, capital en, country zh, capital zh)
    ("France", "Paris", "法国", "巴黎"), ("Germany", "Berlin", "德国", "柏林"), ("Italy", "Rome", "意大利", "罗马"),
    ("Spain", "Madrid", "西班牙", "马德里"), ("Portugal", "Lisbon", "葡萄牙", "里斯本"),
    ("the United Kingdom", "London", "英国", "伦敦"), ("Ireland", "Dublin", "爱尔兰", "都柏林"),
    ("Greece", "Athens", "希腊", "雅典"), ("Austria", "Vienna", "奥地利", "维也纳"), ("Poland", "Warsaw", "波兰", "华沙"),
    ("Norway", "Oslo", "挪威", "奥斯陆"), ("Sweden", "Stockholm", "瑞典", "斯德哥尔摩"),
    ("Finland", "Helsinki", "芬兰", "赫尔辛基"), ("Denmark", "Copenhagen", "丹麦", "哥本哈根"),
    ("Russia", "Moscow", "俄罗斯", "莫斯科"), ("Japan", "Tokyo", "日本", "东京"), ("South Korea", "Seoul", "韩国", "首尔"),
    ("China", "Beijing", "中国", "北京"), ("India", "New Delhi", "印度", "新德里"), ("Thailand", "Bangkok", "泰国", "曼谷"),
    ("Vietnam", "Hanoi", "越南", "河内"), ("Egypt", "Cairo", "埃及", "开罗"), ("Kenya", "Nairobi", "肯尼亚", "内罗毕"),
    ("Nigeria", "Abuja", "尼日利亚", "阿布贾"), ("Canada", "Ottawa", "加拿大", "渥太华"),
    ("the United States", "Washington, D.C.", "美国", "华盛顿"), ("Mexico", "Mexico City", "墨西哥", "墨西哥城"),
    ("Brazil", "Brasília", "巴西", "巴西利亚"), ("Argentina", "Buenos Aires", "阿根廷", "布宜诺斯艾利斯"),
    ("Australia", "Canberra", "澳大利亚", "堪培拉"), ("New Zealand", "Wellington", "新西兰", "惠灵顿"),
    ("Turkey", "Ankara", "土耳其", "安卡拉"), ("Peru", "Lima", "秘鲁", "利马"), ("Chile", "Santiago", "智利", "圣地亚哥"),
]
ANTONYMS_EN = (
    "happy sad, hot cold, big small, fast slow, early late, bright dark, strong weak, rich poor, open closed, "
    "ancient modern, arrive depart, accept refuse, increase decrease, generous selfish, difficult easy, "
    "cheap expensive, empty full, loud quiet, polite rude, victory defeat, wide narrow, deep shallow"
)
SYNONYMS_EN = (
    "big large, quick fast, begin start, smart intelligent, tired weary, buy purchase, help assist, answer reply, "
    "choose select, enough sufficient, gift present, finish end, rich wealthy, mistake error, little small"
)
ANTONYMS_ZH = (
    "大 小, 高 矮, 快 慢, 多 少, 长 短, 冷 热, 上 下, 前 后, 黑 白, 真 假, 胖 瘦, 新 旧, 远 近, 早 晚, 买 卖, 哭 笑, "
    "左 右, 美丽 丑陋, 勇敢 胆小, 成功 失败, 安全 危险, 简单 复杂, 干净 肮脏, 开始 结束, 光明 黑暗"
)
SYNONYMS_ZH = (
    "美丽 漂亮, 高兴 快乐, 迅速 快速, 帮助 协助, 温暖 暖和, 著名 有名, 仔细 认真, 宽阔 宽广, 突然 忽然, "
    "安静 宁静, 立刻 马上, 努力 勤奋, 希望 盼望, 优秀 出色, 寻找 寻觅"
)
SENTENCES_EN = [
    "The cat sat on the warm windowsill",
    "We will meet at the library after lunch",
    "Reading every day makes you a better writer",
    "My brother plays the guitar in a small band",
    "The train to the city leaves at seven",
    "She planted tomatoes and beans in the garden",
    "Good habits are built one day at a time",
]
SENTENCES_ZH = ["今天天气很好", "我们一起去公园散步吧", "读书使人进步", "他每天早上跑步", "春天来了，花都开了",
                "小猫在窗台上睡觉", "明天我们去图书馆"]


def pairs(table: str) -> list[list[str]]:
    return [item.split() for item in table.split(", ")]


# ---- generated families (answers computed) ------------------------------------------------------------------


def arithmetic_en(rng: random.Random) -> list[tuple[str, str, str]]:
    names = ["Tom", "Anna", "Lucas", "Mia", "Omar", "Sofia", "Ken", "Priya", "Leo", "Emma"]
    items = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "stamps", "cards"]
    out = []
    for _ in range(12):
        n, it = rng.choice(names), rng.choice(items)
        a, b = rng.randint(5, 60), rng.randint(2, 40)
        out.append((f"{n} has {a} {it} and gets {b} more. How many {it} does {n} have now?", "",
                    f"{n} starts with {a} {it} and gets {b} more, so {n} has {a} + {b} = {a + b} {it}."))
        a, b = rng.randint(20, 90), rng.randint(2, 19)
        out.append((f"{n} had {a} {it} and gave {b} to a friend. How many {it} are left?", "",
                    f"{a} − {b} = {a - b}. {n} has {a - b} {it} left."))
        a, b = rng.randint(3, 12), rng.randint(2, 9)
        out.append((f"A box holds {a} {it}. How many {it} are in {b} boxes?", "",
                    f"{b} boxes × {a} {it} per box = {a * b} {it}."))
        a, b = rng.randint(2, 12), rng.randint(2, 8)
        out.append((f"{n} shares {a * b} {it} equally among {b} friends. How many {it} does each friend get?", "",
                    f"{a * b} ÷ {b} = {a}. Each friend gets {a} {it}."))
        p, q, m, k = rng.randint(2, 9), rng.randint(1, 4), rng.randint(2, 5), rng.randint(2, 6)
        out.append((f"A notebook costs ${p} and a pen costs ${q}. How much do {m} notebooks and {k} pens cost?", "",
                    f"{m} × ${p} + {k} × ${q} = ${m * p} + ${k * q} = ${m * p + k * q}."))
        v, t = rng.choice([40, 60, 80, 90, 120]), rng.randint(2, 6)
        out.append((f"A train travels at {v} km/h for {t} hours. How far does it go?", "",
                    f"Distance = speed × time = {v} km/h × {t} h = {v * t} km."))
        a, b, c = rng.randint(2, 15), rng.randint(2, 15), rng.randint(1, 50)
        out.append(("Calculate the result.", f"{a} × {b} + {c}", f"{a} × {b} + {c} = {a * b} + {c} = {a * b + c}."))
    return out


def arithmetic_zh(rng: random.Random) -> list[tuple[str, str, str]]:
    names = ["小明", "小红", "小刚", "小丽", "李华", "王芳", "张伟", "陈静"]
    items = [("苹果", "个"), ("橘子", "个"), ("铅笔", "支"), ("故事书", "本"), ("贴纸", "张"), ("糖果", "颗")]
    out = []
    for _ in range(12):
        n, (it, m) = rng.choice(names), rng.choice(items)
        a, b = rng.randint(5, 60), rng.randint(2, 40)
        out.append((f"{n}有{a}{m}{it}，又买了{b}{m}。现在一共有多少{m}{it}？", "",
                    f"{a} + {b} = {a + b}，{n}现在一共有{a + b}{m}{it}。"))
        a, b = rng.randint(20, 90), rng.randint(2, 19)
        out.append((f"{n}有{a}{m}{it}，送给朋友{b}{m}，还剩多少{m}？", "", f"{a} − {b} = {a - b}，还剩{a - b}{m}{it}。"))
        a, b = rng.randint(3, 12), rng.randint(2, 9)
        out.append((f"每盒装{a}{m}{it}，{b}盒一共有多少{m}{it}？", "", f"{a} × {b} = {a * b}，{b}盒一共有{a * b}{m}{it}。"))
        a, b = rng.randint(2, 12), rng.randint(2, 8)
        out.append((f"把{a * b}{m}{it}平均分给{b}个小朋友，每人分到几{m}？", "", f"{a * b} ÷ {b} = {a}，每人分到{a}{m}。"))
        p, q, c, k = rng.randint(2, 9), rng.randint(1, 4), rng.randint(2, 5), rng.randint(2, 6)
        out.append((f"一本笔记本{p}元，一支笔{q}元。买{c}本笔记本和{k}支笔一共要多少钱？", "",
                    f"{c} × {p} + {k} × {q} = {c * p} + {k * q} = {c * p + k * q}（元），一共要{c * p + k * q}元。"))
        v, t = rng.choice([40, 60, 80, 90, 120]), rng.randint(2, 6)
        out.append((f"一列火车每小时行驶{v}千米，{t}小时行驶多少千米？", "",
                    f"路程 = 速度 × 时间 = {v} × {t} = {v * t}（千米）。"))
        a, b, c = rng.randint(2, 15), rng.randint(2, 15), rng.randint(1, 50)
        out.append(("计算下面算式的结果。", f"{a} × {b} + {c}", f"{a} × {b} + {c} = {a * b} + {c} = {a * b + c}。"))
    return out


UNITS_EN = [("km", "m", 1000), ("kg", "g", 1000), ("L", "mL", 1000), ("m", "cm", 100), ("h", "min", 60),
            ("min", "s", 60), ("in", "cm", 2.54)]
UNITS_ZH = [("千米", "米", 1000), ("千克", "克", 1000), ("升", "毫升", 1000), ("米", "厘米", 100), ("小时", "分钟", 60),
            ("分钟", "秒", 60), ("斤", "克", 500), ("英寸", "厘米", 2.54)]
VALUES = [0.5, 1.5, 2, 2.5, 3, 4, 5, 7, 12, 0.25, 3.5, 10]


def units_en(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for a, b, f in UNITS_EN:
        for v in rng.sample(VALUES, 4):
            answer = f"{num(v)} {a} = {num(v * f, sep=True)} {b}, because 1 {a} = {num(f, sep=True)} {b}."
            out.append((f"Convert {num(v)} {a} to {b}.", "", answer))
            out.append((f"Convert the following value to {b}.", f"{num(v)} {a}", answer))
    for c in rng.sample(range(-20, 45, 5), 8):
        out.append((f"Convert {c} °C to Fahrenheit.", "", f"{c} × 9/5 + 32 = {num(c * 9 / 5 + 32)}, so {c} °C is "
                    f"{num(c * 9 / 5 + 32)} °F."))
    return out


def units_zh(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for a, b, f in UNITS_ZH:
        for v in rng.sample(VALUES, 4):
            answer = f"{num(v)} {a} = {num(v * f)} {b}，因为 1 {a} = {num(f)} {b}。"
            out.append((f"把 {num(v)} {a}换算成{b}。", "", answer))
            out.append((f"把下面的数值换算成{b}。", f"{num(v)} {a}", answer))
    for c in rng.sample(range(-20, 45, 5), 8):
        out.append((f"摄氏 {c} 度等于华氏多少度？", "", f"华氏温度 = 摄氏温度 × 9/5 + 32 = {c} × 9/5 + 32 = "
                    f"{num(c * 9 / 5 + 32)}，即华氏 {num(c * 9 / 5 + 32)} 度。"))
    return out


def facts_en(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for country, capital, _, _ in CAPITALS:
        out.append((f"What is the capital of {country}?", "", f"The capital of {country} is {capital}."))
        out.append(("Name the capital city of the country.", country, f"{capital} is the capital of {country}."))
    for w, a in pairs(ANTONYMS_EN):
        out.append(("Give an antonym of the word.", w, f"An antonym of \"{w}\" is \"{a}\"."))
        out.append((f"What is the opposite of \"{a}\"?", "", f"The opposite of \"{a}\" is \"{w}\"."))
    for w, s in pairs(SYNONYMS_EN):
        out.append(("Give a synonym for the word.", w, f"A synonym for \"{w}\" is \"{s}\"."))
    return out


def facts_zh(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for _, _, country, capital in CAPITALS:
        out.append((f"{country}的首都是哪里？", "", f"{country}的首都是{capital}。"))
        out.append(("说出下面这个国家的首都。", country, f"{country}的首都是{capital}。"))
    for w, a in pairs(ANTONYMS_ZH):
        out.append(("写出下面词语的反义词。", w, f"“{w}”的反义词是“{a}”。"))
        out.append((f"“{a}”的反义词是什么？", "", f"“{a}”的反义词是“{w}”。"))
    for w, s in pairs(SYNONYMS_ZH):
        out.append(("写出下面词语的近义词。", w, f"“{w}”的近义词是“{s}”。"))
    return out


def numbers_en(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for _ in range(6):
        xs = rng.sample(range(1, 100), rng.randint(4, 7))
        shown = ", ".join(map(str, xs))
        out.append(("Sort the numbers in ascending order.", shown, ", ".join(map(str, sorted(xs)))))
        out.append(("Sort the numbers in descending order.", shown, ", ".join(map(str, sorted(xs, reverse=True)))))
        out.append(("Find the largest number in the list.", shown, f"The largest number is {max(xs)}."))
        out.append(("Find the smallest number in the list.", shown, f"The smallest number is {min(xs)}."))
        ys = rng.sample(range(2, 40, 2), 4)
        out.append(("Calculate the average of the numbers.", ", ".join(map(str, ys)),
                    f"({' + '.join(map(str, ys))}) ÷ 4 = {sum(ys)} ÷ 4 = {num(sum(ys) / 4)}."))
    for n in rng.sample(range(2, 100), 16):
        parity = "even, because it is divisible by 2" if n % 2 == 0 else "odd, because it leaves a remainder of 1 " \
            "when divided by 2"
        out.append((f"Is {n} even or odd?", "", f"{n} is {parity}."))
        p = smallest_factor(n)
        prime = f"Yes. {n} is prime: its only divisors are 1 and {n}." if p == n else \
            f"No. {n} = {p} × {n // p}, so it is not prime."
        out.append((f"Is {n} a prime number?", "", prime))
    for s in SENTENCES_EN:
        out.append(("Count the words in the sentence.", s, f"The sentence has {len(s.split())} words."))
        out.append(("Convert the text to uppercase.", s, s.upper()))
        out.append(("Reverse the order of the words.", s, " ".join(reversed(s.split()))))
    return out


def numbers_zh(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for _ in range(6):
        xs = rng.sample(range(1, 100), rng.randint(4, 7))
        shown = "、".join(map(str, xs))
        out.append(("把下面的数从小到大排列。", shown, "、".join(map(str, sorted(xs)))))
        out.append(("把下面的数从大到小排列。", shown, "、".join(map(str, sorted(xs, reverse=True)))))
        out.append(("找出下面这组数中最大的数。", shown, f"最大的数是 {max(xs)}。"))
        out.append(("找出下面这组数中最小的数。", shown, f"最小的数是 {min(xs)}。"))
        ys = rng.sample(range(2, 40, 2), 4)
        out.append(("求下面这组数的平均数。", "、".join(map(str, ys)),
                    f"({' + '.join(map(str, ys))}) ÷ 4 = {sum(ys)} ÷ 4 = {num(sum(ys) / 4)}。"))
    for n in rng.sample(range(2, 100), 16):
        parity = "偶数，因为它能被 2 整除" if n % 2 == 0 else "奇数，因为它除以 2 余 1"
        out.append((f"{n} 是奇数还是偶数？", "", f"{n} 是{parity}。"))
        p = smallest_factor(n)
        prime = f"是。{n} 只能被 1 和它本身整除，所以是质数。" if p == n else \
            f"不是。{n} = {p} × {n // p}，所以 {n} 不是质数。"
        out.append((f"{n} 是质数吗？", "", prime))
    for s in SENTENCES_ZH:
        count = len(re.findall(r"[\u4e00-\u9fff]", s))
        out.append(("数一数下面这句话有多少个汉字（不算标点）。", s, f"这句话有 {count} 个汉字。"))
    return out


FAMILIES = {  # language → [(family, how many samples to draw)]
    "en": [(arithmetic_en, 40), (units_en, 25), (facts_en, 35), (numbers_en, 30)],
    "zh": [(arithmetic_zh, 40), (units_zh, 25), (facts_zh, 35), (numbers_zh, 30)],
}


def build(lang: str) -> list[dict]:
    rng = random.Random(SEED)
    rows = parse_blocks(HANDWRITTEN_EN if lang == "en" else HANDWRITTEN_ZH, " " if lang == "en" else "")
    seen = {(r["instruction"], r["input"]) for r in rows}
    generated = []
    for family, count in FAMILIES[lang]:
        pool = [t for t in family(rng) if (t[0], t[1]) not in seen]
        pool = list({(t[0], t[1]): t for t in pool}.values())  # one answer per question
        for instruction, inp, output in rng.sample(pool, count):
            generated.append({"instruction": instruction, "input": inp, "output": output})
            seen.add((instruction, inp))
    rng.shuffle(generated)
    rows += generated[: TOTAL - len(rows)]
    rng.shuffle(rows)
    return rows


def main() -> None:
    for lang in ("en", "zh"):
        rows = build(lang)
        assert len(rows) == TOTAL, (lang, len(rows))
        path = DATA / f"alpaca_{lang}_demo.json"
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"{path}: {len(rows)} samples")

