"""The benchmark's inputs: generated models (tiny 7.1M, 100m 107M parameters) and a length-skewed chat dataset."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

# name -> create_tiny_model keywords. The vocabularies are sized like real models' of that size (SmolLM-135M: 49k,
# GPT-2: 50k, Llama 2: 32k), so the embedding and the LM head take the share of memory and compute they take there;
# the tokenizer trained on our corpus fills 8,192 rows, the rest are never looked up but cost what they cost.
MODELS = {
    "tiny": {"layers": 4, "hidden": 256, "heads": 4, "kv_heads": 2, "intermediate": 688, "vocab_size": 8192},  # 7.1M
    "100m": {  # 107M, tied embedding and head (as in GPT-2, SmolLM, Qwen2.5-0.5B)
        "layers": 12,
        "hidden": 768,
        "heads": 12,
        "kv_heads": 4,
        "intermediate": 2304,
        "vocab_size": 32000,
        "tie_embeddings": True,
    },
}


OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}


def build_model(name: str, cache: Path) -> Path:
    from tuneforge.model.tiny import create_tiny_model

    out = cache / f"model-{name}"
    spec = {"arch": "qwen2", "max_position": 4096, **MODELS[name]}
    stamp = out / "bench_model.json"  # what the cached folder was built from: rebuilt when MODELS changes
    if not stamp.is_file() or json.loads(stamp.read_text(encoding="utf-8")) != spec:
        shutil.rmtree(out, ignore_errors=True)
        create_tiny_model(out, **spec)
        stamp.write_text(json.dumps(spec), encoding="utf-8")
    return out


def _words(seed: int) -> list[str]:
    from importlib import resources

    text = (resources.files("tuneforge.model") / "corpus" / "en_everyday.txt").read_text(encoding="utf-8")
    words = text.split()
    random.Random(seed).shuffle(words)
    return words


def skewed_lengths(samples: int, long_share: float, seed: int) -> list[tuple[int, int]]:
    """(prompt words, reply words) per sample: most short (8-40 words), a few long (300-700 words)."""
    rng = random.Random(seed)
    n_long = max(1, round(samples * long_share))
    out = [(rng.randint(4, 20), rng.randint(4, 20)) for _ in range(samples - n_long)]
    out += [(rng.randint(100, 300), rng.randint(200, 400)) for _ in range(n_long)]
    rng.shuffle(out)
    return out


def write_dataset(folder: Path, samples: int, seed: int = 0, long_share: float = 0.08) -> dict:
    """Writes bench_sft.json (OpenAI messages) and bench_dpo.json (sharegpt ranking) + dataset_info.json."""
    folder.mkdir(parents=True, exist_ok=True)
    words = _words(seed)
    rng = random.Random(seed + 1)

    def text(n: int) -> str:
        start = rng.randrange(len(words))
        return " ".join(words[(start + k) % len(words)] for k in range(n))

    sft, dpo = [], []
    for prompt_n, reply_n in skewed_lengths(samples, long_share, seed):
        prompt, reply = text(prompt_n), text(reply_n)
        sft.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]})
        dpo.append(
            {
                "conversations": [{"from": "human", "value": prompt}],
                "chosen": {"from": "gpt", "value": reply},
                "rejected": {"from": "gpt", "value": text(max(4, reply_n // 2))},
            }
        )
    (folder / "bench_sft.json").write_text(json.dumps(sft), encoding="utf-8")
    (folder / "bench_dpo.json").write_text(json.dumps(dpo), encoding="utf-8")
    info = {
        "bench_sft": {
            "file_name": "bench_sft.json",
            "formatting": "openai",
            "columns": {"messages": "messages"},
            # LLaMA-Factory reads openai rows with sharegpt's tags (from / value) unless told (vs_llamafactory.py)
            "tags": OPENAI_TAGS,
        },
        "bench_dpo": {
            "file_name": "bench_dpo.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return {"sft": sft, "dpo": dpo}


def real_tokens(tokenizer, rows: dict, cutoff_len: int) -> dict:
    """Non-padding tokens one epoch trains on (chat template, truncated to cutoff_len): sft, and dpo (chosen +
    rejected sequences)."""

    def count(messages) -> int:
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        return min(len(ids), cutoff_len)

    sft = sum(count(r["messages"]) for r in rows["sft"])
    dpo = 0
    for r in rows["dpo"]:
        prompt = [{"role": "user", "content": r["conversations"][0]["value"]}]
        for side in ("chosen", "rejected"):
            dpo += count([*prompt, {"role": "assistant", "content": r[side]["value"]}])
    return {"sft": sft, "dpo": dpo}
