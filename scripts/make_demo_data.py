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

# fmt: off
CAPITALS = [  # (country en, capital en, country zh, capital zh)
    ("France", "Paris", "法国", "巴黎"), ("Germany", "Berlin", "德国", "柏林"), ("Italy", "Rome", "意大利", "罗马"),
    ("Spain", "Madrid", "西班牙", "马德里"), ("Portugal", "Lisbon", "葡萄牙", "里斯本"),
    ("the United Kingdom", "London", "英国", "伦敦"), ("Ireland", "Dublin", "爱尔兰", "都柏林"),
    ("Greece", "Athens", "希腊", "雅典"), ("Austria", "Vienna", "奥地利", "维也纳"),
    ("Poland", "Warsaw", "波兰", "华沙"), ("Norway", "Oslo", "挪威", "奥斯陆"),
    ("Sweden", "Stockholm", "瑞典", "斯德哥尔摩"),
    ("Finland", "Helsinki", "芬兰", "赫尔辛基"), ("Denmark", "Copenhagen", "丹麦", "哥本哈根"),
    ("Russia", "Moscow", "俄罗斯", "莫斯科"), ("Japan", "Tokyo", "日本", "东京"),
    ("South Korea", "Seoul", "韩国", "首尔"), ("China", "Beijing", "中国", "北京"),
    ("India", "New Delhi", "印度", "新德里"), ("Thailand", "Bangkok", "泰国", "曼谷"),
    ("Vietnam", "Hanoi", "越南", "河内"), ("Egypt", "Cairo", "埃及", "开罗"), ("Kenya", "Nairobi", "肯尼亚", "内罗毕"),
    ("Nigeria", "Abuja", "尼日利亚", "阿布贾"), ("Canada", "Ottawa", "加拿大", "渥太华"),
    ("the United States", "Washington, D.C.", "美国", "华盛顿"), ("Mexico", "Mexico City", "墨西哥", "墨西哥城"),
    ("Brazil", "Brasília", "巴西", "巴西利亚"), ("Argentina", "Buenos Aires", "阿根廷", "布宜诺斯艾利斯"),
    ("Australia", "Canberra", "澳大利亚", "堪培拉"), ("New Zealand", "Wellington", "新西兰", "惠灵顿"),
    ("Turkey", "Ankara", "土耳其", "安卡拉"), ("Peru", "Lima", "秘鲁", "利马"),
    ("Chile", "Santiago", "智利", "圣地亚哥"),
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
    "The cat sat on the warm windowsill", "We will meet at the library after lunch",
    "Reading every day makes you a better writer", "My brother plays the guitar in a small band",
    "The train to the city leaves at seven", "She planted tomatoes and beans in the garden",
    "Good habits are built one day at a time",
]
SENTENCES_ZH = ["今天天气很好", "我们一起去公园散步吧", "读书使人进步", "他每天早上跑步", "春天来了，花都开了",
                "小猫在窗台上睡觉", "明天我们去图书馆"]
UNITS_EN = [("km", "m", 1000), ("kg", "g", 1000), ("L", "mL", 1000), ("m", "cm", 100), ("h", "min", 60),
            ("min", "s", 60), ("cm", "mm", 10)]
UNITS_ZH = [("千米", "米", 1000), ("千克", "克", 1000), ("升", "毫升", 1000), ("米", "厘米", 100), ("小时", "分钟", 60),
            ("分钟", "秒", 60), ("斤", "克", 500), ("英寸", "厘米", 2.54)]
VALUES = [0.5, 1.5, 2, 2.5, 3, 4, 5, 7, 12, 0.25, 3.5, 10]


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
        out.append((f"{n}有{a}{m}{it}，送给朋友{b}{m}，还剩多少{m}？", "",
                    f"{a} − {b} = {a - b}，还剩{a - b}{m}{it}。"))
        a, b = rng.randint(3, 12), rng.randint(2, 9)
        out.append((f"每盒装{a}{m}{it}，{b}盒一共有多少{m}{it}？", "",
                    f"{a} × {b} = {a * b}，{b}盒一共有{a * b}{m}{it}。"))
        a, b = rng.randint(2, 12), rng.randint(2, 8)
        out.append((f"把{a * b}{m}{it}平均分给{b}个小朋友，每人分到几{m}？", "",
                    f"{a * b} ÷ {b} = {a}，每人分到{a}{m}。"))
        p, q, c, k = rng.randint(2, 9), rng.randint(1, 4), rng.randint(2, 5), rng.randint(2, 6)
        out.append((f"一本笔记本{p}元，一支笔{q}元。买{c}本笔记本和{k}支笔一共要多少钱？", "",
                    f"{c} × {p} + {k} × {q} = {c * p} + {k * q} = {c * p + k * q}（元），一共要{c * p + k * q}元。"))
        v, t = rng.choice([40, 60, 80, 90, 120]), rng.randint(2, 6)
        out.append((f"一列火车每小时行驶{v}千米，{t}小时行驶多少千米？", "",
                    f"路程 = 速度 × 时间 = {v} × {t} = {v * t}（千米）。"))
        a, b, c = rng.randint(2, 15), rng.randint(2, 15), rng.randint(1, 50)
        out.append(("计算下面算式的结果。", f"{a} × {b} + {c}", f"{a} × {b} + {c} = {a * b} + {c} = {a * b + c}。"))
    return out


def units_en(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for a, b, f in UNITS_EN:
        for v in rng.sample(VALUES, 4):
            answer = f"{num(v)} {a} = {num(v * f, sep=True)} {b}, because 1 {a} = {num(f, sep=True)} {b}."
            out.append((f"Convert {num(v)} {a} to {b}.", "", answer))
            out.append((f"Convert the following value to {b}.", f"{num(v)} {a}", answer))
    for c in rng.sample(range(-20, 45, 5), 8):
        f = num(c * 9 / 5 + 32)
        out.append((f"Convert {c} °C to Fahrenheit.", "", f"{c} × 9/5 + 32 = {f}, so {c} °C is {f} °F."))
    return out


def units_zh(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for a, b, f in UNITS_ZH:
        for v in rng.sample(VALUES, 4):
            answer = f"{num(v)} {a} = {num(v * f)} {b}，因为 1 {a} = {num(f)} {b}。"
            out.append((f"把 {num(v)} {a}换算成{b}。", "", answer))
            out.append((f"把下面的数值换算成{b}。", f"{num(v)} {a}", answer))
    for c in rng.sample(range(-20, 45, 5), 8):
        f = num(c * 9 / 5 + 32)
        out.append((f"摄氏 {c} 度等于华氏多少度？", "",
                    f"华氏温度 = 摄氏温度 × 9/5 + 32 = {c} × 9/5 + 32 = {f}，即华氏 {f} 度。"))
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
        parity = "even, because it is divisible by 2" if n % 2 == 0 else \
            "odd, because it leaves a remainder of 1 when divided by 2"
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
# fmt: on


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


# ---- hand-written samples -------------------------------------------------------------------------------------

HANDWRITTEN_EN = """
Q: Explain what a noun is.
A: A noun is a word that names a person, place, thing or idea, such as "teacher", "city", "book" or "freedom".

Q: What is the difference between weather and climate?
A: Weather is the state of the atmosphere at a particular place and time, such as today's rain or sunshine.
  Climate is the average pattern of weather in a region over a long period, usually 30 years or more.

Q: Give three tips for staying focused while studying.
A: 1. Put your phone away or turn off notifications.
  | 2. Work in short blocks, such as 25 minutes, followed by a 5-minute break.
  | 3. Set a clear goal for each session so you know when you are done.

Q: Rewrite the sentence in the passive voice.
I: The chef cooked the meal.
A: The meal was cooked by the chef.

Q: Rewrite the sentence in the passive voice.
I: The children painted the fence.
A: The fence was painted by the children.

Q: Correct the grammar in the sentence.
I: She don't like apples.
A: She doesn't like apples.

Q: Correct the grammar in the sentence.
I: There is many books on the table.
A: There are many books on the table.

Q: Correct the spelling mistakes.
I: I recieved the pakage yesterday.
A: I received the package yesterday.

Q: Make the sentence more formal.
I: Hey, can you send me the report ASAP?
A: Could you please send me the report at your earliest convenience?

Q: Classify the animal as a mammal, bird, reptile, amphibian or fish.
I: dolphin
A: A dolphin is a mammal: it breathes air with lungs, is warm-blooded and feeds its young with milk.

Q: Classify the animal as a mammal, bird, reptile, amphibian or fish.
I: penguin
A: A penguin is a bird. It cannot fly, but it has feathers and lays eggs.

Q: Classify the animal as a mammal, bird, reptile, amphibian or fish.
I: frog
A: A frog is an amphibian: it starts life in water as a tadpole and, as an adult, lives both in water and on land.

Q: Classify the sentiment of the review as positive or negative.
I: The battery lasts all day and the screen is gorgeous.
A: Positive.

Q: Classify the sentiment of the review as positive or negative.
I: It stopped working after two days and support never answered.
A: Negative.

Q: What is the main function of the heart?
A: The heart pumps blood through the body, delivering oxygen and nutrients to the tissues and carrying away carbon
  dioxide and other waste.

Q: Explain what gravity is in simple terms.
A: Gravity is the force that pulls objects toward each other. The Earth's gravity pulls everything toward its
  center, which is why things fall to the ground, and it keeps the Moon in orbit around the Earth.

Q: Write a Python function that checks whether a number is even.
A: ```python
  | def is_even(n):
  |     return n % 2 == 0
  | ```

Q: Write a Python function that returns the largest number in a list.
A: ```python
  | def largest(numbers):
  |     if not numbers:
  |         raise ValueError("the list is empty")
  |     return max(numbers)
  | ```

Q: What does the following Python code print?
I: print(len('hello'))
A: It prints 5, because the string 'hello' has five characters.

Q: What does the following Python code print?
I: x = [1, 2, 3]
  | x.append(4)
  | print(x)
A: It prints [1, 2, 3, 4]: append adds 4 to the end of the list.

Q: Explain what an API is.
A: An API (application programming interface) is a set of rules that lets one program use the functions or data
  of another. For example, a weather app uses a weather service's API to request the forecast.

Q: What is the difference between RAM and storage?
A: RAM is fast, temporary memory that holds the programs and data in use; it is cleared when the computer turns
  off. Storage, such as an SSD or a hard drive, keeps files permanently, even without power, but is slower.

Q: Suggest a title for a short story about a lost dog finding its way home.
A: "The Long Way Home"

Q: Write a short thank-you note to a colleague who helped with a project.
A: Hi Sam,
  |
  | Thank you for your help with the project. Your ideas and hard work made a real difference, and I really
  appreciated your support.
  |
  | Best regards

Q: Summarize the paragraph in one sentence.
I: Bees collect nectar from flowers to make honey. While they move from flower to flower, pollen sticks to their
  bodies and is carried to other plants. This helps the plants produce seeds and fruit.
A: Bees make honey from nectar and, while collecting it, carry pollen between flowers, which helps plants make
  seeds and fruit.

Q: Summarize the paragraph in one sentence.
I: The library will close early on Friday for staff training. Books due that day can be returned on Saturday
  without a late fee. Online services will remain available.
A: The library closes early on Friday for training, but books due that day can be returned on Saturday without a
  fee, and online services stay open.

Q: Give two examples of renewable energy sources.
A: Solar power and wind power are two renewable energy sources.

Q: Why do we need to drink water?
A: Water keeps the body working: it helps control body temperature, carries nutrients to cells, removes waste and
  cushions the joints. We lose water every day through sweat, breath and urine, so we need to replace it.

Q: Name the three primary colors of light.
A: The primary colors of light are red, green and blue.

Q: What is the chemical formula of water?
A: The chemical formula of water is H2O: each molecule has two hydrogen atoms bonded to one oxygen atom.

Q: What is the speed of light in a vacuum?
A: About 300,000 kilometers per second; exactly 299,792,458 meters per second.

Q: Who painted the Mona Lisa?
A: The Mona Lisa was painted by Leonardo da Vinci.

Q: In which year did humans first land on the Moon?
A: Humans first landed on the Moon in 1969, during NASA's Apollo 11 mission.

Q: What is the tallest mountain in the world above sea level?
A: Mount Everest, at about 8,849 meters above sea level.

Q: What is the largest ocean on Earth?
A: The Pacific Ocean is the largest ocean on Earth.

Q: How many sides does a hexagon have?
A: A hexagon has six sides.

Q: What is the area of a rectangle that is 6 meters long and 4 meters wide?
A: The area is 6 × 4 = 24 square meters.

Q: Explain the difference between "their", "there" and "they're".
A: "Their" shows possession (their house). "There" refers to a place or introduces a sentence (over there; there
  is a cat). "They're" is short for "they are" (they're coming).

Q: Turn the list into a sentence.
I: milk, eggs, bread
A: I need to buy milk, eggs and bread.

Q: Generate three questions to ask at the end of a job interview.
A: 1. What does a typical day look like in this role?
  | 2. How do you measure success in this position?
  | 3. What are the next steps in the hiring process?

Q: Give a simple definition of machine learning.
A: Machine learning is a way of building computer programs that learn patterns from examples, instead of following
  only rules written by hand.

Q: What is a fine-tuned language model?
A: A fine-tuned language model is a pretrained model that has been trained further on a smaller, task-specific
  dataset, so that it follows instructions or performs a particular task better.

Q: Explain what overfitting means in machine learning.
A: Overfitting happens when a model learns the training data too closely, including its noise, so it performs well
  on the training examples but poorly on new, unseen data.

Q: Translate the sentence into French.
I: Good morning, how are you?
A: Bonjour, comment allez-vous ?

Q: Translate the sentence into Spanish.
I: Thank you very much.
A: Muchas gracias.

Q: Translate the sentence into German.
I: Where is the train station?
A: Wo ist der Bahnhof?

Q: Write a haiku about the ocean.
A: Waves fold into foam
  | the tide breathes in and breathes out
  | salt wind on my face

Q: Describe the color blue to someone who cannot see.
A: Blue feels like cool water on your skin or a calm, deep breath of fresh air. It is the color people link with
  the open sky and the sea: quiet, wide and peaceful.

Q: List four common kitchen tools.
A: A knife, a cutting board, a frying pan and a wooden spoon.

Q: Give one advantage and one disadvantage of working from home.
A: Advantage: there is no commute, which saves time and money. Disadvantage: it can be harder to separate work from
  personal life.

Q: What should you do if you burn your finger while cooking?
A: Hold the burn under cool (not ice-cold) running water for about 10 to 20 minutes, then cover it loosely with a
  clean, non-stick dressing. Seek medical help if the burn is large or deep.

Q: Explain why the Moon has phases.
A: The Moon does not make its own light; we see sunlight reflected from it. As the Moon orbits the Earth, we see
  different portions of its sunlit half, so it seems to change from new moon to full moon and back about every
  29.5 days.

Q: Find the odd one out and explain why.
I: apple, banana, carrot, grape
A: Carrot is the odd one out: it is a vegetable, while the others are fruits.

Q: Find the odd one out and explain why.
I: Mars, Venus, Moon, Jupiter
A: The Moon is the odd one out: it is the Earth's natural satellite, while the others are planets.

Q: Complete the analogy.
I: Hot is to cold as day is to ___.
A: Night. Hot is the opposite of cold, and day is the opposite of night.

Q: Complete the analogy.
I: Bird is to fly as fish is to ___.
A: Swim. A bird moves by flying, and a fish moves by swimming.

Q: Extract the date from the sentence.
I: Please submit the form by March 3, 2025.
A: March 3, 2025

Q: Extract the names of the people in the sentence.
I: Anna met David and Li Wei at the station.
A: Anna, David, Li Wei

Q: Write a SQL query that selects all rows from a table named users.
A: SELECT * FROM users;

Q: Write a SQL query that counts the rows in a table named orders.
A: SELECT COUNT(*) FROM orders;

Q: Explain what a prime number is.
A: A prime number is a whole number greater than 1 whose only divisors are 1 and itself, such as 2, 3, 5, 7 and 11.

Q: What is the difference between a virus and a bacterium?
A: Bacteria are single-celled living organisms that can reproduce on their own; many are harmless or even helpful.
  Viruses are much smaller, are not cells, and can only reproduce inside the cells of a host. Antibiotics work
  against bacteria but not against viruses.

Q: Give me a tip for writing a clear email.
A: Put the main point or request in the first two sentences, and use a subject line that says what the email is
  about.

Q: How can I reduce food waste at home?
A: Plan meals before shopping, buy only what you need, store food properly, turn leftovers into new meals, and
  freeze food you cannot eat in time.

Q: Convert the sentence to reported speech.
I: She said, "I am tired."
A: She said that she was tired.

Q: Write a one-sentence description of a rainy afternoon.
A: Rain tapped steadily on the window while the grey afternoon slipped quietly into evening.

Q: Is the following statement true or false?
I: The Sun is a star.
A: True. The Sun is a star: a huge ball of hot gas that produces light and heat through nuclear fusion.

Q: Is the following statement true or false?
I: Spiders are insects.
A: False. Spiders are arachnids: they have eight legs and two main body parts, while insects have six legs and
  three body parts.

Q: What is the plural of "mouse"?
A: The plural of "mouse" is "mice".

Q: What is the plural of "child"?
A: The plural of "child" is "children".
"""

HANDWRITTEN_ZH = """
Q: 解释什么是名词。
A: 名词是表示人、事物、地点或抽象概念名称的词，例如“老师”“城市”“书”“自由”。

Q: 天气和气候有什么区别？
A: 天气是某个地方在某一时刻的大气状况，比如今天是下雨还是晴天；气候是一个地区多年（通常 30 年以上）天气的平均状况和
  规律。

Q: 给出三条提高学习专注力的建议。
A: 1. 学习时把手机放远，或者关闭消息通知。
  | 2. 采用分段学习，例如专注 25 分钟后休息 5 分钟。
  | 3. 每次学习前定好一个明确的小目标。

Q: 把下面的句子改写成“被”字句。
I: 小明打碎了杯子。
A: 杯子被小明打碎了。

Q: 把下面的句子改写成“被”字句。
I: 妈妈把衣服洗干净了。
A: 衣服被妈妈洗干净了。

Q: 修改句子中的错别字。
I: 他做事非常认贞，从不马乎。
A: 他做事非常认真，从不马虎。

Q: 修改下面的病句。
I: 通过这次活动，使我明白了团结的重要性。
A: 原句缺少主语，可以改为：“通过这次活动，我明白了团结的重要性。”或者“这次活动使我明白了团结的重要性。”

Q: 修改下面的病句。
I: 他的写作水平有了明显的改进。
A: “水平”应该和“提高”搭配，可以改为：“他的写作水平有了明显的提高。”

Q: 把这句话改得更正式一些。
I: 你能不能快点把报告发给我？
A: 请您尽快将报告发送给我，谢谢。

Q: 判断下面的动物属于哺乳动物、鸟类、爬行动物、两栖动物还是鱼类。
I: 鲸
A: 鲸是哺乳动物：它用肺呼吸，是恒温动物，并且用乳汁哺育幼崽。

Q: 判断下面的动物属于哺乳动物、鸟类、爬行动物、两栖动物还是鱼类。
I: 企鹅
A: 企鹅是鸟类。它虽然不会飞，但身上有羽毛，而且产卵繁殖。

Q: 判断下面的动物属于哺乳动物、鸟类、爬行动物、两栖动物还是鱼类。
I: 青蛙
A: 青蛙是两栖动物：幼体蝌蚪生活在水中，成体既能在水中也能在陆地上生活。

Q: 判断这条评论的情感是正面还是负面。
I: 物流很快，质量也很好，下次还会再买。
A: 正面。

Q: 判断这条评论的情感是正面还是负面。
I: 用了两天就坏了，客服也一直不回复。
A: 负面。

Q: 心脏的主要功能是什么？
A: 心脏像一个泵，推动血液在全身循环，把氧气和营养物质输送到各个组织，同时带走二氧化碳和代谢废物。

Q: 用简单的话解释什么是重力。
A: 重力是由于地球的吸引而使物体受到的力。正是因为重力，东西松手后会落到地上，我们也能稳稳地站在地面上。

Q: 用 Python 写一个判断数字是否为偶数的函数。
A: ```python
  | def is_even(n):
  |     return n % 2 == 0
  | ```

Q: 用 Python 写一个函数，返回列表中的最大值。
A: ```python
  | def largest(numbers):
  |     if not numbers:
  |         raise ValueError("列表为空")
  |     return max(numbers)
  | ```

Q: 下面的 Python 代码会输出什么？
I: print(len("你好"))
A: 输出 2，因为字符串“你好”包含两个字符。

Q: 下面的 Python 代码会输出什么？
I: x = [1, 2, 3]
  | x.append(4)
  | print(x)
A: 输出 [1, 2, 3, 4]，因为 append 会把 4 添加到列表末尾。

Q: 什么是 API？
A: API（应用程序编程接口）是一组规则，让一个程序可以调用另一个程序的功能或数据。例如，天气应用通过天气服务的 API 获取
  天气预报。

Q: 内存和硬盘有什么区别？
A: 内存速度快，用来临时存放正在运行的程序和数据，断电后内容会丢失；硬盘（包括固态硬盘）用来长期保存文件，断电后数据依
  然保留，但读写速度比内存慢。

Q: 为一个关于小狗找到回家之路的故事起个标题。
A: 《回家的路》

Q: 写一段话，感谢同事帮忙完成项目。
A: 小王，感谢你在这次项目中的帮助！你的想法和付出让项目顺利完成，我非常感激，也期待以后继续合作。

Q: 用一句话概括下面这段话。
I: 蜜蜂从花朵中采集花蜜来酿造蜂蜜。在花丛间飞来飞去时，花粉会粘在它们身上，被带到其他花上。这帮助植物结出种子和果实。
A: 蜜蜂采蜜酿蜜的同时在花间传播花粉，帮助植物结出种子和果实。

Q: 用一句话概括下面这段话。
I: 本周五图书馆因员工培训提前闭馆。当天到期的图书可以在周六归还，不收取逾期费。线上服务照常开放。
A: 周五图书馆因培训提前闭馆，当天到期的书可在周六免费归还，线上服务不受影响。

Q: 举出两种可再生能源。
A: 太阳能和风能都是可再生能源。

Q: 人为什么需要喝水？
A: 水参与人体几乎所有的生理活动：它帮助调节体温、运输营养物质、排出代谢废物、润滑关节。人体每天都会通过出汗、呼吸和
  排尿流失水分，所以需要及时补充。

Q: 光的三原色是什么？
A: 光的三原色是红、绿、蓝。

Q: 水的化学式是什么？
A: 水的化学式是 H2O，即每个水分子由两个氢原子和一个氧原子构成。

Q: 光在真空中的速度是多少？
A: 约为每秒 30 万千米，精确值为 299792458 米/秒。

Q: 《蒙娜丽莎》是谁画的？
A: 《蒙娜丽莎》是意大利文艺复兴时期的画家列奥纳多·达·芬奇创作的。

Q: 人类第一次登上月球是在哪一年？
A: 1969 年，美国阿波罗 11 号任务的宇航员首次登上月球。

Q: 世界上海拔最高的山峰是哪座？
A: 珠穆朗玛峰，海拔约 8848.86 米。

Q: 中国最长的河流是哪条？
A: 长江，全长 6300 多千米，是中国第一长河。

Q: 六边形有几条边？
A: 六边形有六条边。

Q: 一个长 6 米、宽 4 米的长方形，面积是多少？
A: 面积 = 长 × 宽 = 6 × 4 = 24（平方米）。

Q: “的”“地”“得”怎么区分？
A: “的”用在名词前，修饰名词，如“美丽的花”；“地”用在动词前，修饰动词，如“认真地学习”；“得”用在动词或形容词后，引
  出补语，如“跑得很快”。

Q: 把下面的词语连成一句通顺的话。
I: 图书馆、周末、看书
A: 我周末常去图书馆看书。

Q: 列出面试结束时可以向面试官提的三个问题。
A: 1. 这个岗位的日常工作是怎样的？
  | 2. 公司如何评价这个岗位的工作表现？
  | 3. 接下来的招聘流程是怎样的？

Q: 用简单的话解释什么是机器学习。
A: 机器学习是让计算机从大量例子中自动学习规律，而不是完全依靠人手写规则的一种方法。

Q: 什么是模型微调？
A: 模型微调是在已经预训练好的模型基础上，用规模较小、针对特定任务的数据继续训练，让模型更好地完成该任务或遵循指令。

Q: 什么是过拟合？
A: 过拟合是指模型把训练数据学得过于细致，连其中的噪声也记住了，导致它在训练数据上表现很好，在新数据上表现却很差。

Q: 把下面的句子翻译成英文。
I: 早上好，你今天怎么样？
A: Good morning, how are you today?

Q: 把下面的句子翻译成英文。
I: 非常感谢你的帮助。
A: Thank you very much for your help.

Q: 把下面的句子翻译成中文。
I: Where is the train station?
A: 火车站在哪里？

Q: 写一首关于大海的四行短诗。
A: 海浪轻拍着沙滩，
  | 潮水来了又退去，
  | 海鸥在风中歌唱，
  | 咸咸的风吹过脸庞。

Q: 列出四种常见的厨房用具。
A: 菜刀、砧板、炒锅和锅铲。

Q: 说出在家办公的一个优点和一个缺点。
A: 优点：不用通勤，节省了时间和交通费用。缺点：工作和生活的界限容易变得模糊。

Q: 做饭时不小心烫伤了手指，应该怎么处理？
A: 立即用流动的凉水（不要用冰水）冲洗烫伤处 10 到 20 分钟，然后用干净的纱布轻轻覆盖。不要涂牙膏或酱油。如果烫伤面积大
  或伤得很深，应及时就医。

Q: 为什么月亮会有阴晴圆缺？
A: 月亮本身不发光，我们看到的是它反射的太阳光。月亮绕地球运行时，我们能看到的被照亮部分不断变化，于是就出现了新月、上
  弦月、满月、下弦月等月相，一个周期约 29.5 天。

Q: 找出不同类的一项，并说明理由。
I: 苹果、香蕉、白菜、葡萄
A: 白菜与其他三项不同：白菜是蔬菜，其他三项都是水果。

Q: 找出不同类的一项，并说明理由。
I: 火星、金星、月球、木星
A: 月球与其他三项不同：月球是地球的天然卫星，其他三项都是行星。

Q: 补全类比。
I: 热对冷，就像白天对___。
A: 黑夜。“热”和“冷”意思相反，“白天”和“黑夜”意思也相反。

Q: 从句子中提取日期。
I: 请在 2025 年 3 月 3 日之前提交表格。
A: 2025 年 3 月 3 日

Q: 从句子中提取人名。
I: 小红和李明在车站遇到了张伟。
A: 小红、李明、张伟

Q: 写一条 SQL 语句，查询 users 表中的所有数据。
A: SELECT * FROM users;

Q: 写一条 SQL 语句，统计 orders 表中的行数。
A: SELECT COUNT(*) FROM orders;

Q: 什么是质数？
A: 质数是大于 1 的整数，并且除了 1 和它本身以外没有其他因数，例如 2、3、5、7、11。

Q: 病毒和细菌有什么区别？
A: 细菌是单细胞生物，能够独立繁殖，很多细菌对人体无害甚至有益；病毒比细菌小得多，没有细胞结构，只能在宿主细胞内复制。
  抗生素对细菌有效，对病毒无效。

Q: 怎样写一封清楚的邮件？
A: 在开头一两句话里写明主要目的或请求；主题行要概括邮件内容；正文分段、简洁；最后写清需要对方做什么、在什么时间之前完
  成。

Q: 在家里如何减少食物浪费？
A: 购物前先规划好饭菜，按需购买；正确储存食物；把剩菜做成新的菜肴；吃不完的食物及时冷冻。

Q: 判断下面的说法是否正确。
I: 太阳是一颗恒星。
A: 正确。太阳是一颗恒星，它通过核聚变发出光和热。

Q: 判断下面的说法是否正确。
I: 蜘蛛是昆虫。
A: 错误。蜘蛛属于蛛形纲，有八条腿，身体分为两部分；昆虫有六条腿，身体分为头、胸、腹三部分。

Q: 解释成语“画蛇添足”的意思。
A: “画蛇添足”比喻做了多余的事，不但没有好处，反而坏了事。故事里，有人最先画好了蛇，却又给蛇添上脚，结果输掉了比赛。

Q: 解释成语“守株待兔”的意思。
A: “守株待兔”比喻死守狭隘的经验、不知变通，或者妄想不劳而获。故事讲一个农夫偶然捡到一只撞死在树桩上的兔子，从此放下
  农活守在树桩旁，却再也没有等到兔子。

Q: 解释成语“亡羊补牢”的意思。
A: “亡羊补牢”比喻出了问题以后及时想办法补救，还来得及，可以防止继续受到损失。

Q: 用“虽然……但是……”造句。
A: 虽然今天下着大雨，但是大家还是准时来到了学校。

Q: 用“因为……所以……”造句。
A: 因为他每天坚持锻炼，所以身体越来越好。

Q: 写一句描写雨天下午的句子。
A: 雨点轻轻敲打着窗户，灰蒙蒙的下午在雨声中慢慢走向黄昏。
"""


if __name__ == "__main__":
    main()
